# shm_owner.sh -- the pool's user and the segments' owners, for the tests of shm.user/group/mode
#
# Source after lib.sh. The pool's user is `nobody` (group `nogroup`, both in Debian's
# base-passwd), reached with setpriv; switching to it needs root, so without root the test says
# SKIP and exits 0. Defines:
#   AS_NOBODY, as_nobody CMD...    run CMD as nobody:nogroup with no supplementary groups
#   owner NAME, inode NAME         "USER:GROUP MODE" / the inode of /dev/shm/NAME, or "missing"
#   rc_of CMD...                   CMD's exit status; its stdout in $T/out, stderr in $T/err
#   remaining                      the last "remaining" of $T/out
#   conf FILE NAME CAPACITY EXTRA  a configuration: shm NAME of CAPACITY keys plus the shm keys
#                                  EXTRA, one rule "own" of 5/h on every path; readable by all
#   decide CONF [CLIENT]           --decide for /x from CLIENT (192.0.2.7), as this user
#   nobody_decide CONF [CLIENT]    the same as nobody
#   shm_daemon CONF LOG [nobody]   the prefork daemon, one worker, on a free port, as root (or
#                                  as nobody): sets PORT and DPID (the daemon's own pid: setpriv
#                                  execs it), stopped at exit; fails the test if it does not
#                                  listen within 10 s
#   root_made CONF LOG             shm_daemon as root on CONF, then stopped: the segment it made
#   pool_req [CLIENT]              one FastCGI request for /x to $PORT: prints its status
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: switching to the unprivileged user needs root"
    exit 0
fi
need setpriv cgi-fcgi stat
id nobody >/dev/null && getent group nogroup >/dev/null ||
    { echo "FAIL: no user nobody or group nogroup"; exit 1; }

AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
as_nobody() { "${AS_NOBODY[@]}" "$@"; }
owner() { stat -c '%U:%G %a' "/dev/shm$1" 2>/dev/null || echo missing; }
inode() { stat -c '%i' "/dev/shm$1" 2>/dev/null || echo missing; }
rc_of() { local rc=0; "$@" >"$T/out" 2>"$T/err" || rc=$?; echo "$rc"; }
remaining() { sed -n 's/.*"remaining":\([0-9]*\).*/\1/p' "$T/out" | tail -n 1; }
conf() { # file, shm name, capacity, extra shm keys
    printf 'shm: { name = "%s"; capacity = %d; %s };\nrules = ( { name = "own"; path_prefix = "/"; limit = "5/h"; } );\n' \
        "$2" "$3" "$4" >"$1"
    chmod 644 "$1"
    CONFS+=("$1")
}
decide() { "$RL_FILTER" --decide -c "$1" --client "${2:-192.0.2.7}" --path /x; }
nobody_decide() { as_nobody "$RL_FILTER" --decide -c "$1" --client "${2:-192.0.2.7}" --path /x; }
shm_daemon() {
    PORT=$(pick_port)
    # Not through as_nobody: $! must be the daemon itself, not a subshell running a function.
    if [ "${3:-}" = nobody ]; then
        "${AS_NOBODY[@]}" "$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$1" 2>>"$2" &
    else
        "$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$1" 2>>"$2" &
    fi
    DPID=$!
    PIDS+=("$DPID")
    wait_port "$PORT" 10 || fail "the daemon as ${3:-root} is not listening: $(tail -n 3 "$2")"
}
root_made() { # conf, log: a root daemon makes (or replaces) the segment, then stops
    shm_daemon "$1" "$2"
    stop_pid "$DPID"
}
pool_req() {
    env -i REQUEST_METHOD=GET REQUEST_URI=/x "REMOTE_ADDR=${1:-192.0.2.7}" timeout 10 \
        cgi-fcgi -bind -connect "127.0.0.1:$PORT" | tr -d '\r' | sed -n 's/^Status: \([0-9]*\).*/\1/p' || true
}
