#!/usr/bin/env bash
# test_shm_owner.sh -- who owns the shared-memory segments, and that nothing run as root locks
# an unprivileged pool out. The pool's user is `nobody` (group `nogroup`, both in Debian's
# base-passwd), reached with setpriv; the test runs as root (it says SKIP otherwise).
#   shm.user/group/mode: applied to the table and its "-stats" at creation (stat /dev/shm),
#     by a root --decide and by a root daemon alike; the pool as nobody (prefork daemon, real
#     FastCGI requests through cgi-fcgi) and --decide as nobody then share the same counts.
#   no shm.user: --decide as root refuses to create either segment (exit 3, says shm.user),
#     creates nothing; once the pool's user made them, root attaches and changes no owner.
#   a pool that meets a segment another user owns says who owns it and what to do (exit 3).
#   a process that may not give the segment to shm.user fails and leaves nothing behind.
#   -t refuses an unknown shm.user with FILE:LINE, and creates no segment.
set -euo pipefail
NAME=test_shm_owner
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/shm_owner.sh"

# ---- shm.user, shm.group, shm.mode: root creates, the pool's user owns ----------------------
A=/rltest-$RUN_ID-own
conf "$T/a.conf" "$A" 100 'user = "nobody"; group = "nogroup"; mode = "0660";'
check "-t as root: valid (exit $(rc_of "$RL_FILTER" -t -c "$T/a.conf"))" test "$(rc_of "$RL_FILTER" -t -c "$T/a.conf")" = 0
check "-t creates no segment" test "$(owner "$A")" = missing
rc=$(rc_of decide "$T/a.conf")
check "--decide as root first: exit $rc" test "$rc" = 0
check "the table is nobody:nogroup 660 ($(owner "$A"))" test "$(owner "$A")" = "nobody:nogroup 660"
check "its statistics too ($(owner "$A-stats"))" test "$(owner "$A-stats")" = "nobody:nogroup 660"
rc=$(rc_of nobody_decide "$T/a.conf")
check "then --decide as nobody: exit $rc ($(head -c 300 "$T/err"))" test "$rc" = 0
check "... on the same counts (remaining $(remaining), want 3)" test "$(remaining)" = 3

# The pool as nobody: the prefork daemon and real FastCGI requests.
shm_daemon "$T/a.conf" "$T/pool.log" nobody
PPID_=$DPID
codes=""
for i in 1 2 3 4; do codes+="$(pool_req) "; done
check "the pool as nobody decides on the same table: 200 200 200 429 ($codes)" test "$codes" = "200 200 200 429 "
check "the pool's user is nobody" test "$(ps -o user= -p "$PPID_" | tr -d ' ')" = nobody
workers=$(pgrep -P "$PPID_" || true)
check "the pool has its worker" test -n "$workers"
stop_pid "$PPID_"
gone=1
for w in $workers; do wait_gone "$w" 5 || gone=0; done
check "the pool and its worker stopped" test "$gone" = 1

# --shm-remove as root, then the daemon as root: it too gives the segments to shm.user.
rc=$(rc_of "$RL_FILTER" --shm-remove -c "$T/a.conf")
check "--shm-remove as root: exit $rc, nothing left" test "$rc:$(owner "$A"):$(owner "$A-stats")" = "0:missing:missing"
shm_daemon "$T/a.conf" "$T/root.log"
RPID=$DPID
check "the daemon as root made them nobody:nogroup 660 ($(owner "$A"), $(owner "$A-stats"))" \
    test "$(owner "$A") $(owner "$A-stats")" = "nobody:nogroup 660 nobody:nogroup 660"
rc=$(rc_of nobody_decide "$T/a.conf")
check "--decide as nobody beside the root daemon: exit $rc" test "$rc" = 0
stop_pid "$RPID"

# ---- no shm.user: a root --decide creates nothing the pool could not open -------------------
B=/rltest-$RUN_ID-def
conf "$T/b.conf" "$B" 100 ""
rc=$(rc_of decide "$T/b.conf")
check "--decide as root, no segment, no shm.user: exit $rc, want 3" test "$rc" = 3
check "... it says to set shm.user" grep -q 'set shm.user' "$T/err"
check "... and creates nothing" test "$(owner "$B"):$(owner "$B-stats")" = "missing:missing"
rc=$(rc_of nobody_decide "$T/b.conf")
check "the pool's user creates them: exit $rc" test "$rc" = 0
check "owned by nobody, mode 600 ($(owner "$B"), $(owner "$B-stats"))" \
    test "$(owner "$B") $(owner "$B-stats")" = "nobody:nogroup 600 nobody:nogroup 600"
rc=$(rc_of decide "$T/b.conf")
check "then --decide as root attaches: exit $rc, remaining $(remaining)" test "$rc:$(remaining)" = 0:3
check "... and changes no owner ($(owner "$B"), $(owner "$B-stats"))" \
    test "$(owner "$B") $(owner "$B-stats")" = "nobody:nogroup 600 nobody:nogroup 600"
rc=$(rc_of nobody_decide "$T/b.conf")
check "the pool's user still decides: exit $rc, remaining $(remaining)" test "$rc:$(remaining)" = 0:2
rm -f "/dev/shm$B-stats"
rc=$(rc_of decide "$T/b.conf")
check "--decide as root with the statistics missing: exit $rc, nothing created" \
    test "$rc:$(owner "$B-stats")" = 3:missing

# ---- a segment another user owns: a clear error, not a bare EACCES ------------------------
C=/rltest-$RUN_ID-root
conf "$T/c.conf" "$C" 100 ""
root_made "$T/c.conf" "$T/rootc.log"
check "a root pool without shm.user keeps today's owner ($(owner "$C"))" test "$(owner "$C")" = "root:root 600"
rc=$(rc_of nobody_decide "$T/c.conf")
check "nobody on root's segment: exit $rc, want 3" test "$rc" = 3
check "... the error names the owner and shm.user ($(head -c 400 "$T/err"))" \
    grep -q 'Permission denied (it belongs to uid 0, gid 0, mode 0600; this process runs as uid [0-9]*, gid [0-9]*): .*set shm.user' "$T/err"

# ---- a process that may not give the segment away fails and leaves nothing -----------------
D=/rltest-$RUN_ID-www
conf "$T/d.conf" "$D" 100 'user = "www-data";'
rc=$(rc_of nobody_decide "$T/d.conf")
check "nobody creating a segment for www-data: exit $rc, want 3" test "$rc" = 3
check "... says it cannot give it away ($(head -c 300 "$T/err"))" \
    grep -q "cannot give it to uid $(id -u www-data), gid $(id -g www-data) (shm.user, shm.group): Operation not permitted" "$T/err"
check "... and leaves nothing ($(owner "$D"))" test "$(owner "$D")" = missing

# ---- -t: an unknown user is refused with FILE:LINE ------------------------------------------
printf 'rules = ( { name = "a"; limit = "1/s"; } );\nshm: {\n  user = "rl-no-such-user-%s";\n};\n' "$RUN_ID" >"$T/e.conf"
rc=$(rc_of "$RL_FILTER" -t -c "$T/e.conf")
check "-t with an unknown shm.user: exit $rc, want 1" test "$rc" = 1
check "... FILE:LINE: shm.user: unknown user ($(head -n 1 "$T/err"))" \
    grep -q "^ratelimit-filter: $T/e.conf:3: shm.user: unknown user \"rl-no-such-user-$RUN_ID\"" "$T/err"

for f in "$T"/*.log; do check "no sanitizer report in $(basename "$f")" no_sanitizer_report "$f"; done
finish
