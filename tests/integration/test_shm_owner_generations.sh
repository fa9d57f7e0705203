#!/usr/bin/env bash
# test_shm_owner_generations.sh -- who owns a new generation of the table, and that replacing
# one never locks the pool out. The pool's user is `nobody` (group `nogroup`), reached with
# setpriv; the test runs as root (it says SKIP otherwise). Each case changes shm.capacity,
# which needs a new generation (section 5 of MANUAL.md):
#   shm.user set: root replaces the pool's table; the new generation is nobody:nogroup 0660
#     (a new inode, no private name left), the spent client stays spent for root's --decide
#     and for the pool as nobody after its SIGHUP, and a new client is admitted and charged
#     on the new generation.
#   no shm.user: a root --decide that would need a new generation exits 3 and changes nothing;
#     a root daemon replaces it keeping the pool's owner (nobody:nogroup 0600), and the pool's
#     user goes on with the carried counts.
#   a user that does not own the table (root's, shared with its group) cannot replace it in the
#     sticky /dev/shm: exit 3 with the owner and what to do, -t as that user says the same,
#     the table and /dev/shm are left as they were; with the old capacity it attaches.
set -euo pipefail
NAME=test_shm_owner_generations
source "$(dirname "$0")/lib/lib.sh"
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
leftovers() { find /dev/shm -maxdepth 1 -name "${1#/}.new-*" | wc -l; }
rc_of() { local rc=0; "$@" >"$T/out" 2>"$T/err" || rc=$?; echo "$rc"; }
remaining() { sed -n 's/.*"remaining":\([0-9]*\).*/\1/p' "$T/out" | tail -n 1; }
conf() { # file, shm name, capacity, extra shm keys
    printf 'shm: { name = "%s"; capacity = %d; %s };\nrules = ( { name = "own"; path_prefix = "/"; limit = "5/h"; } );\n' \
        "$2" "$3" "$4" >"$1"
    chmod 644 "$1"
    CONFS+=("$1")
}
decide() { # conf, client
    "$RL_FILTER" --decide -c "$1" --client "$2" --path /x
}

# ---- shm.user set: root's new generation belongs to the pool's user ------------------------
A=/rltest-$RUN_ID-gown
OWN='user = "nobody"; group = "nogroup"; mode = "0660";'
conf "$T/a.conf" "$A" 100 "$OWN"
PORT=$(pick_port)
# Not through a function: $! must be the daemon itself (setpriv execs it), not a subshell.
"${AS_NOBODY[@]}" "$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$T/a.conf" 2>>"$T/pool.log" &
POOL=$!
PIDS+=("$POOL")
wait_port "$PORT" 10 || fail "the pool as nobody is not listening: $(tail -n 3 "$T/pool.log")"
req() { # client: the pool's status for /x
    env -i REQUEST_METHOD=GET REQUEST_URI=/x "REMOTE_ADDR=$1" timeout 10 \
        cgi-fcgi -bind -connect "127.0.0.1:$PORT" | tr -d '\r' | sed -n 's/^Status: \([0-9]*\).*/\1/p' || true
}
codes=""
for i in 1 2 3 4 5 6; do codes+="$(req 192.0.2.7) "; done
check "the pool as nobody spends the client: 200 x5 then 429 ($codes)" \
    test "$codes" = "200 200 200 200 200 429 "
check "generation 1 is nobody:nogroup 660 ($(owner "$A"))" test "$(owner "$A")" = "nobody:nogroup 660"
ino1=$(inode "$A")

conf "$T/a.conf" "$A" 200 "$OWN"
rc=$(rc_of "$RL_FILTER" -t -c "$T/a.conf")
check "-t as root: exit $rc, a new generation owned by nobody:nogroup 0660 ($(grep -o 'replaces it.*' "$T/err" | head -c 300))" \
    grep -q "replaces it by generation 2 .*(owned by uid $(id -u nobody), gid $(getent group nogroup | cut -d: -f3), mode 0660)" "$T/err"
rc=$(rc_of decide "$T/a.conf" 192.0.2.7)
check "root --decide with another capacity: exit $rc, the spent client stays spent ($(head -c 200 "$T/out"))" \
    grep -q '"allowed":false' "$T/out"
check "... on a new generation (inode $ino1 -> $(inode "$A"))" test "$(inode "$A")" != "$ino1"
check "... given to shm.user: nobody:nogroup 660 ($(owner "$A"))" test "$(owner "$A")" = "nobody:nogroup 660"
check "... no private name left ($(leftovers "$A"))" test "$(leftovers "$A")" = 0

n=$(grep -c 'now in force' "$T/pool.log" || true)
kill -HUP "$POOL"
for ((i = 0; i < 200; i++)); do # 10 s for its worker
    [ "$(grep -c 'now in force' "$T/pool.log" || true)" -ge $((n + 1)) ] && break
    sleep 0.05
done
check "the pool as nobody reloaded ($(grep -c 'now in force' "$T/pool.log" || true) reloads logged)" \
    test "$(grep -c 'now in force' "$T/pool.log" || true)" -ge $((n + 1))
code=$(req 192.0.2.7)
check "... the spent client stays spent on root's generation ($code)" test "$code" = 429
code=$(req 192.0.2.8)
check "... a new client is admitted ($code)" test "$code" = 200
rc=$(rc_of as_nobody "$RL_FILTER" --decide -c "$T/a.conf" --client 192.0.2.8 --path /x)
check "... and charged on the new generation (--decide as nobody: exit $rc, remaining $(remaining), want 3)" \
    test "$rc:$(remaining)" = 0:3
check "... which is still nobody:nogroup 660 ($(owner "$A"))" test "$(owner "$A")" = "nobody:nogroup 660"
stop_pid "$POOL"

# ---- no shm.user: root --decide makes no generation; a root daemon keeps the owner --------
B=/rltest-$RUN_ID-gdef
conf "$T/b.conf" "$B" 100 ""
for i in 1 2; do rc=$(rc_of as_nobody "$RL_FILTER" --decide -c "$T/b.conf" --client 192.0.2.7 --path /x); done
check "the pool's user made the table and spent 2: exit $rc, remaining $(remaining)" test "$rc:$(remaining)" = 0:3
check "... nobody:nogroup 600 ($(owner "$B"))" test "$(owner "$B")" = "nobody:nogroup 600"
ino1=$(inode "$B")
conf "$T/b.conf" "$B" 200 ""
rc=$(rc_of decide "$T/b.conf" 192.0.2.7)
check "root --decide needing a new generation without shm.user: exit $rc, want 3" test "$rc" = 3
check "... it says so ($(head -c 400 "$T/err"))" grep -q 'creates no segment, and no new generation either: set shm.user' "$T/err"
check "... and changed nothing ($(owner "$B"), inode $(inode "$B"), $(leftovers "$B") private)" \
    test "$(owner "$B"):$(inode "$B"):$(leftovers "$B")" = "nobody:nogroup 600:$ino1:0"
PORT=$(pick_port)
"$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$T/b.conf" 2>>"$T/root.log" &
RPID=$!
PIDS+=("$RPID")
wait_port "$PORT" 10 || fail "the daemon as root is not listening: $(tail -n 3 "$T/root.log")"
stop_pid "$RPID"
check "the root daemon made generation 2 ($(grep -o 'generation 2 replaced[^:]*' "$T/root.log" | head -n 1))" \
    grep -q 'generation 2 replaced generation 1' "$T/root.log"
check "... keeping the pool's owner: nobody:nogroup 600 ($(owner "$B"), inode $(inode "$B"))" \
    test "$(owner "$B")" = "nobody:nogroup 600" -a "$(inode "$B")" != "$ino1"
rc=$(rc_of as_nobody "$RL_FILTER" --decide -c "$T/b.conf" --client 192.0.2.7 --path /x)
check "the pool's user goes on with the carried count: exit $rc, remaining $(remaining), want 2" \
    test "$rc:$(remaining)" = 0:2

# ---- not the owner: a clear error, nothing touched ------------------------------------------
C=/rltest-$RUN_ID-groot
conf "$T/c.conf" "$C" 100 'group = "nogroup";'
PORT=$(pick_port)
"$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$T/c.conf" 2>>"$T/rootc.log" &
RPID=$!
PIDS+=("$RPID")
wait_port "$PORT" 10 || fail "the daemon as root is not listening: $(tail -n 3 "$T/rootc.log")"
stop_pid "$RPID"
check "root made it root:nogroup 660 ($(owner "$C"))" test "$(owner "$C")" = "root:nogroup 660"
ino1=$(inode "$C")
rc=$(rc_of as_nobody "$RL_FILTER" --decide -c "$T/c.conf" --client 192.0.2.7 --path /x)
check "nobody attaches with the same capacity: exit $rc" test "$rc" = 0
conf "$T/c2.conf" "$C" 200 'group = "nogroup";'
WANT="cannot replace it by a new generation: it belongs to uid 0 (gid $(getent group nogroup | cut -d: -f3), mode 0660) and this process runs as uid $(id -u nobody); in the sticky /dev/shm only its owner or root may replace it"
rc=$(rc_of as_nobody "$RL_FILTER" --decide -c "$T/c2.conf" --client 192.0.2.7 --path /x)
check "nobody needing a new generation of root's table: exit $rc, want 3" test "$rc" = 3
check "... says who owns it and what to do ($(head -c 400 "$T/err"))" grep -qF "$WANT" "$T/err"
rc=$(rc_of as_nobody "$RL_FILTER" -t -c "$T/c2.conf")
check "-t as nobody: exit $rc, want 3, the same words ($(head -c 300 "$T/err"))" \
    test "$rc" = 3 -a "$(grep -cF "$WANT" "$T/err")" -ge 1
check "... and nothing changed ($(owner "$C"), inode $(inode "$C"), $(leftovers "$C") private)" \
    test "$(owner "$C"):$(inode "$C"):$(leftovers "$C")" = "root:nogroup 660:$ino1:0"
rc=$(rc_of "$RL_FILTER" -t -c "$T/c2.conf")
check "-t as root: exit $rc, root may replace it, keeping root:nogroup 0660" \
    grep -q "replaces it by generation 2 .*(owned by uid 0, gid $(getent group nogroup | cut -d: -f3), mode 0660)" "$T/err"

for f in "$T"/*.log; do check "no sanitizer report in $(basename "$f")" no_sanitizer_report "$f"; done
finish
