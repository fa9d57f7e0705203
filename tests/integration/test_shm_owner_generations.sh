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
source "$(dirname "$0")/lib/shm_owner.sh"
leftovers() { find /dev/shm -maxdepth 1 -name "${1#/}.new-*" | wc -l; }

# ---- shm.user set: root's new generation belongs to the pool's user ------------------------
A=/rltest-$RUN_ID-gown
OWN='user = "nobody"; group = "nogroup"; mode = "0660";'
conf "$T/a.conf" "$A" 100 "$OWN"
shm_daemon "$T/a.conf" "$T/pool.log" nobody
POOL=$DPID
codes=""
for i in 1 2 3 4 5 6; do codes+="$(pool_req 192.0.2.7) "; done
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
code=$(pool_req 192.0.2.7)
check "... the spent client stays spent on root's generation ($code)" test "$code" = 429
code=$(pool_req 192.0.2.8)
check "... a new client is admitted ($code)" test "$code" = 200
rc=$(rc_of nobody_decide "$T/a.conf" 192.0.2.8)
check "... and charged on the new generation (--decide as nobody: exit $rc, remaining $(remaining), want 3)" \
    test "$rc:$(remaining)" = 0:3
check "... which is still nobody:nogroup 660 ($(owner "$A"))" test "$(owner "$A")" = "nobody:nogroup 660"
stop_pid "$POOL"

# ---- no shm.user: root --decide makes no generation; a root daemon keeps the owner --------
B=/rltest-$RUN_ID-gdef
conf "$T/b.conf" "$B" 100 ""
for i in 1 2; do rc=$(rc_of nobody_decide "$T/b.conf"); done
check "the pool's user made the table and spent 2: exit $rc, remaining $(remaining)" test "$rc:$(remaining)" = 0:3
check "... nobody:nogroup 600 ($(owner "$B"))" test "$(owner "$B")" = "nobody:nogroup 600"
ino1=$(inode "$B")
conf "$T/b.conf" "$B" 200 ""
rc=$(rc_of decide "$T/b.conf" 192.0.2.7)
check "root --decide needing a new generation without shm.user: exit $rc, want 3" test "$rc" = 3
check "... it says so ($(head -c 400 "$T/err"))" grep -q 'creates no segment, and no new generation either: set shm.user' "$T/err"
check "... and changed nothing ($(owner "$B"), inode $(inode "$B"), $(leftovers "$B") private)" \
    test "$(owner "$B"):$(inode "$B"):$(leftovers "$B")" = "nobody:nogroup 600:$ino1:0"
root_made "$T/b.conf" "$T/root.log"
check "the root daemon made generation 2 ($(grep -o 'generation 2 replaced[^:]*' "$T/root.log" | head -n 1))" \
    grep -q 'generation 2 replaced generation 1' "$T/root.log"
check "... keeping the pool's owner: nobody:nogroup 600 ($(owner "$B"), inode $(inode "$B"))" \
    test "$(owner "$B")" = "nobody:nogroup 600" -a "$(inode "$B")" != "$ino1"
rc=$(rc_of nobody_decide "$T/b.conf")
check "the pool's user goes on with the carried count: exit $rc, remaining $(remaining), want 2" \
    test "$rc:$(remaining)" = 0:2

# ---- not the owner: a clear error, nothing touched ------------------------------------------
C=/rltest-$RUN_ID-groot
conf "$T/c.conf" "$C" 100 'group = "nogroup";'
root_made "$T/c.conf" "$T/rootc.log"
check "root made it root:nogroup 660 ($(owner "$C"))" test "$(owner "$C")" = "root:nogroup 660"
ino1=$(inode "$C")
rc=$(rc_of nobody_decide "$T/c.conf")
check "nobody attaches with the same capacity: exit $rc" test "$rc" = 0
conf "$T/c2.conf" "$C" 200 'group = "nogroup";'
WANT="cannot replace it by a new generation: it belongs to uid 0 (gid $(getent group nogroup | cut -d: -f3), mode 0660) and this process runs as uid $(id -u nobody); in the sticky /dev/shm only its owner or root may replace it"
rc=$(rc_of nobody_decide "$T/c2.conf")
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
