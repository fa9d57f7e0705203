# faults.sh -- what the fault and hostile-input tests share (source after lib.sh)
#
#   now_ms                        wall-clock milliseconds
#   start_redis [ARGS...]         redis-server on $RPORT (picked once), pid in $RPID
#   rcli ARGS...                  redis-cli on $RPORT, bounded to 5 s
#   start_pool DIR MODE CONF [N]  a lighttpd on a free port serving DIR/www, spawning the
#                                 filter (bin-path, MODE authorizer|responder, N procs, 2 by
#                                 default) with CONF; its port in $LPORT, its pid in $LPID,
#                                 the filter's stderr in DIR/filter.log; $LIGHTTPD_EXTRA
#                                 (lines) is appended to its configuration, $FCGI_EXTRA
#                                 (entries, each ending in a comma) to the filter's block
#   redis_pool NAME FILES REDIS RULES
#                                 an authorizer pool (start_pool) in $D=$T/pool on $T/rl.conf:
#                                 shm /rltest-$RUN_ID-NAME, Redis with prefix $PREFIX, the
#                                 redis keys REDIS and the rules RULES (lines); a file named
#                                 after each of FILES (words) in its www; a configuration -t
#                                 refuses ends the test
#   user_req PATH USER            one request as X-User USER: prints the status
#   user_count PATH USER N        how many of N such requests were admitted (200)
#   filter_pids DIR               pids of the filter processes lighttpd spawned for DIR
#   burst_json FILE FIELD         a number from rl-burst's --json output ("other", "p99", ...)
#   seg_bytes NAME                the size of shared-memory segment NAME (/dev/shm)
# A SIGSTOPped Redis must be continued before the cleanup's SIGTERM can work; a Redis already
# killed and reaped makes that kill fail, which under set -e must not end the trap before the
# cleanup.

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }

RPORT=""
RPID=""
start_redis() {
    [ -n "$RPORT" ] || RPORT=$(pick_port)
    redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$T" \
        --logfile "$T/redis.log" "$@" >/dev/null 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    wait_port "$RPORT" 5 || { fail "redis-server not listening on $RPORT in 5 s"; finish; }
}
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
trap '[ -z "$RPID" ] || kill -CONT "$RPID" 2>/dev/null || true; lib_cleanup' EXIT

start_pool() { # dir mode conf [procs]
    local d=$1 mode=$2 conf=$3 procs=${4:-2}
    mkdir -p "$d/www"
    LPORT=$(pick_port)
    cat > "$d/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $LPORT
server.document-root = "$d/www"
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/error.log"
server.breakagelog = "$d/filter.log"
server.modules += ( "mod_fastcgi" )
server.stream-request-body = 1
server.stream-response-body = 1
fastcgi.server = ( "/" => ((
    "bin-path" => "$RL_FILTER -c $conf",${FCGI_EXTRA:+
    $FCGI_EXTRA}
    "socket" => "$d/rl.sock",
    "mode" => "$mode",
    "check-local" => "disable",
    "max-procs" => $procs
)))
${LIGHTTPD_EXTRA:-}
CONF
    touch "$d/filter.log"
    lighttpd -D -f "$d/lighttpd.conf" 2>>"$d/lighttpd.stderr" &
    LPID=$!
    PIDS+=("$LPID")
    wait_port "$LPORT" 5 || { fail "lighttpd not listening on $LPORT in 5 s"; finish; }
}

redis_pool() { # shm name suffix, files, redis keys, rules
    local f
    PREFIX="rltest:$RUN_ID:"
    D="$T/pool"
    mkdir -p "$D/www"
    for f in $2; do echo "$f" > "$D/www/$f"; done
    cat > "$T/rl.conf" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-$1"; capacity = 1000; };
redis: { enabled = true; prefix = "$PREFIX"; connect_timeout_ms = 500; command_timeout_ms = 1000;
         $3 };
rules = (
$4
);
CONF
    CONFS+=("$T/rl.conf")
    conf_ok "$T/rl.conf"
    start_pool "$D" authorizer "$T/rl.conf"
}
user_req() { hcurl -o /dev/null -H "X-User: $2" "http://127.0.0.1:$LPORT$1"; }
user_count() { # path user n
    local n=0 i
    for ((i = 0; i < $3; i++)); do [ "$(user_req "$1" "$2")" = 200 ] && n=$((n + 1)); done
    echo "$n"
}

# A scripted HTTP backend (lib/NAME.py PORT LOG) on a free port: BP, its log BLOG.
start_scripted_backend() { # name
    BP=$(pick_port)
    BLOG=$T/backend.log
    touch "$BLOG"
    python3 "$ROOT/tests/integration/lib/$1.py" "$BP" "$BLOG" 2>"$T/backend.err" &
    PIDS+=("$!")
    wait_port "$BP" 5 || fail "the scripted backend is not listening"
}

filter_pids() { # dir: the filter processes lighttpd spawned with DIR's configuration
    pgrep -f -- "^$RL_FILTER -c $1/" || true
}

burst_json() { # file field: the first number after "FIELD": ("?" when there is none)
    local v
    v=$(grep -o "\"$2\": [0-9.]*" "$1" 2>/dev/null | head -n 1 | sed 's/.*: //' || true)
    echo "${v:-?}"
}

seg_bytes() { # name (with its leading /)
    stat -c %s "/dev/shm${1}" 2>/dev/null || echo 0
}

rss_kb() { # pids...: summed resident set size
    local p s=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        s=$((s + ${v:-0}))
    done
    echo "$s"
}
