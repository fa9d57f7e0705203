#!/usr/bin/env bash
# test_fastcgi_conns.sh -- no connection owns a worker: the --listen daemon with 2 workers
# against 200 idle, 200 one-byte and 200 slow-trickle connections keeps answering normal
# requests; each hostile connection is closed at its read deadline (or evicted at the cap);
# pipelined keep-conn requests are all answered in order; a second request id gets
# FCGI_CANT_MPX_CONN; FCGI_GET_VALUES says FCGI_MPXS_CONNS=0; what no web server would send
# (bad version, unknown record types, the FILTER role, 200 KiB of parameters, parameters or a
# body that never end, a record cut short, connections closed mid-record) has a defined
# outcome and never stalls the others; nor does a client that pipelines without reading its
# answers. The same for one process of the pool form (the listening socket on fd 0, as a web
# server spawns it). The client is tests/integration/lib/fcgi_probe.py.
# FIGURE lines: the slowest normal request during each attack, and when the deadlines hit.
set -euo pipefail
NAME=test_fastcgi_conns
source "$(dirname "$0")/lib/lib.sh"
need python3

PROBE="python3 $ROOT/tests/integration/lib/fcgi_probe.py"
READ_MS=2000
IDLE_MS=3000
BOUND_MS=5000 # the slowest a normal request may be while attacked (generous: a loaded machine)

d=$T/F; mkdir -p "$d"
write_conf "$d/bad.conf" bad 5/m "fastcgi: { read_timeout_ms = 0; };"
rc=0; "$RL_FILTER" -t -c "$d/bad.conf" 2>"$d/bad.err" || rc=$?
check "fastcgi.read_timeout_ms = 0 is refused ($rc: $(cat "$d/bad.err" | head -n 1))" \
    grep -q "read_timeout_ms" "$d/bad.err"
write_conf "$d/bad2.conf" bad2 5/m "fastcgi: { max_connections = 70000; };"
rc=0; "$RL_FILTER" -t -c "$d/bad2.conf" 2>"$d/bad2.err" || rc=$?
check "fastcgi.max_connections = 70000 is refused ($rc)" test "$rc" = 1
write_conf "$d/bad3.conf" bad3 5/m "fastcgi: { idle_ms = 5; };"
rc=0; "$RL_FILTER" -t -c "$d/bad3.conf" 2>"$d/bad3.err" || rc=$?
check "an unknown fastcgi key is refused ($rc)" test "$rc" = 1

cat > "$d/rl.conf" <<CONF
shm: { name = "/rltest-$RUN_ID-fc"; capacity = 1000; };
fastcgi: { read_timeout_ms = $READ_MS; idle_timeout_ms = $IDLE_MS; };
rules = ( { name = "p"; path_prefix = "/p"; limit = "3/m"; } );
CONF
CONFS+=("$d/rl.conf")
PORT=$(pick_port)
start_daemon "127.0.0.1:$PORT" "$d/rl.conf" 2 "$d/filter.log"
A=127.0.0.1:$PORT

val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# The probe ran beside an attack: every normal request answered 200, none slower than BOUND.
probe_ok() { # file, what
    local ok failed worst
    ok=$(val probe_ok "$1"); failed=$(val probe_failed "$1"); worst=$(val probe_worst_ms "$1")
    check "$2: normal requests answered (${ok:-?} ok, ${failed:-?} failed: $(val probe_errors "$1"); slowest ${worst:-?} ms)" \
        test "${failed:-1}" = 0 -a "${ok:-0}" -ge 3 -a "${worst:-99999}" -le "$BOUND_MS"
}

# ---- 200 idle + 200 one-byte + 200 trickling connections, held 6 s ----
$PROBE "$A" flood 200 6000 >"$d/flood.out" 2>&1 || true
probe_ok "$d/flood.out" "600 hostile connections"
for g in idle onebyte trickle; do
    check "$g connections all closed by the server ($(val ${g}_alive "$d/flood.out") left, last at $(val ${g}_closed_max_ms "$d/flood.out") ms)" \
        test "$(val ${g}_alive "$d/flood.out")" = 0
done
FLOOD_WORST=$(val probe_worst_ms "$d/flood.out")
FLOOD_CLOSE=$(val idle_closed_max_ms "$d/flood.out")/$(val onebyte_closed_max_ms "$d/flood.out")/$(val trickle_closed_max_ms "$d/flood.out")

# ---- keep-conn: pipelined, multiplexed, values ----
$PROBE "$A" pipeline 5 >"$d/pipe.out" 2>&1 || true
check "5 pipelined keep-conn requests answered in order ($(val ids "$d/pipe.out"))" \
    test "$(val ids "$d/pipe.out")" = "1,2,3,4,5"
check "... each decided in order: 3/m -> $(val codes "$d/pipe.out")" \
    test "$(val codes "$d/pipe.out")" = "200,200,200,429,429"
check "... and the connection serves the next one ($(val after "$d/pipe.out"))" \
    test "$(val after "$d/pipe.out")" = "9:200"
$PROBE "$A" mpx >"$d/mpx.out" 2>&1 || true
check "a second request id -> FCGI_CANT_MPX_CONN, the first answered ($(val answers "$d/mpx.out"))" \
    test "$(val answers "$d/mpx.out")" = "2:None:1,1:200:0"
$PROBE "$A" mpx-body >"$d/mpxb.out" 2>&1 || true
check "... also while the first one's body is read: $(val answers "$d/mpxb.out"), its answer whole ($(val body_ok "$d/mpxb.out"))" \
    test "$(val answers "$d/mpxb.out")" = "2:None:1,1:200:0" -a "$(val body_ok "$d/mpxb.out")" = 1
$PROBE "$A" values >"$d/values.out" 2>&1 || true
check "FCGI_GET_VALUES: FCGI_MPXS_CONNS=$(val mpxs "$d/values.out"), FCGI_MAX_CONNS=$(val max_conns "$d/values.out"), unknown names left out" \
    test "$(val mpxs "$d/values.out")" = 0 -a "$(val max_conns "$d/values.out")" = 256 -a "$(val foo "$d/values.out")" = absent

# ---- what no web server sends ----
$PROBE "$A" unknown >"$d/unknown.out" 2>&1 || true
check "an unknown management record -> FCGI_UNKNOWN_TYPE($(val unknown_of "$d/unknown.out")), then the request is answered ($(val then "$d/unknown.out"))" \
    test "$(val reply_type "$d/unknown.out")" = 11 -a "$(val unknown_of "$d/unknown.out")" = 99 -a "$(val then "$d/unknown.out")" = 200
$PROBE "$A" filterrole >"$d/role.out" 2>&1 || true
check "the FILTER role -> FCGI_UNKNOWN_ROLE and the connection closed ($(val answer "$d/role.out"))" \
    test "$(val answer "$d/role.out")" = "1:None:3" -a "$(val closed_ms "$d/role.out")" != -1
$PROBE "$A" bigparams >"$d/big.out" 2>&1 || true
check "200 KiB of parameters -> 400 ($(val answer "$d/big.out"))" test "$(val answer "$d/big.out")" = "1:400:0"
$PROBE "$A" cut >"$d/cut.out" 2>&1 || true
check "connections closed mid-header and mid-record, then a request -> $(val after "$d/cut.out")" \
    test "$(val after "$d/cut.out")" = 200

$PROBE "$A" badversion >"$d/badv.out" 2>&1 || true
probe_ok "$d/badv.out" "bad version"
# "At once": well before the read deadline, which is what a connection not refused would wait
# for (the margin is generous for a loaded machine).
check "a record of version 2 -> connection closed at once ($(val closed_ms "$d/badv.out") ms, read_timeout_ms $READ_MS)" \
    test "$(val closed_ms "$d/badv.out")" -ge 0 -a "$(val closed_ms "$d/badv.out")" -lt $((READ_MS - 100))
within_read() { [ "$1" -ge $((READ_MS - 100)) ] && [ "$1" -le $((READ_MS + BOUND_MS)) ]; }
$PROBE "$A" endless-params >"$d/ep.out" 2>&1 || true
probe_ok "$d/ep.out" "parameters that never end"
check "parameters that never end -> closed at the read deadline ($(val closed_ms "$d/ep.out") ms, read_timeout_ms $READ_MS)" \
    within_read "$(val closed_ms "$d/ep.out")"
$PROBE "$A" endless-stdin >"$d/es.out" 2>&1 || true
probe_ok "$d/es.out" "a body that never ends"
check "a body that never ends -> answered ($(val answered "$d/es.out")), closed at the read deadline ($(val closed_ms "$d/es.out") ms)" \
    test "$(val answered "$d/es.out")" = "200:0" -a "$(val closed_ms "$d/es.out")" -ge $((READ_MS - 100))
$PROBE "$A" short-record >"$d/sr.out" 2>&1 || true
probe_ok "$d/sr.out" "a record cut short"
check "a record announcing 65535 bytes with 10 sent -> closed at the read deadline ($(val closed_ms "$d/sr.out") ms)" \
    within_read "$(val closed_ms "$d/sr.out")"
$PROBE "$A" noread >"$d/noread.out" 2>&1 || true
probe_ok "$d/noread.out" "a client that never reads"
# Measured from the client's last accepted byte, which the socket buffers let come after the
# server's last write: at most the read deadline, never unbounded.
nr=$(val stalled_closed_ms "$d/noread.out")
check "keep-conn requests pipelined without reading an answer -> closed ${nr:-?} ms after the client's last accepted byte ($(val sent "$d/noread.out") bytes)" \
    test "${nr:--1}" -ge 0 -a "${nr:--1}" -le $((READ_MS + BOUND_MS))
$PROBE "$A" admin-trickle >"$d/at.out" 2>&1 || true
probe_ok "$d/at.out" "an admin test body trickling in"
at=$(val answered_ms "$d/at.out")
# A small body is read by the server loop, not by the answer: the process stays free for
# others (the probe above) and the connection is closed at the request's read deadline.
check "an admin test body trickling in -> closed unanswered ($(val answered "$d/at.out")) after ${at:-?} ms (read_timeout_ms $READ_MS)" \
    test "$(val answered "$d/at.out")" = "-" -a "${at:-0}" -ge $((READ_MS - 100)) -a "${at:-99999}" -le $((READ_MS + BOUND_MS))
$PROBE "$A" kept-idle >"$d/idle.out" 2>&1 || true
ki=$(val closed_ms "$d/idle.out")
check "a kept connection left idle -> closed at the idle deadline (${ki:-?} ms, idle_timeout_ms $IDLE_MS)" \
    test "${ki:--1}" -ge $((IDLE_MS - 100)) -a "${ki:--1}" -le $((IDLE_MS + BOUND_MS))

kill "$DPID"
rc=0; wait_gone "$DPID" 10 || rc=1
check "SIGTERM stops the daemon with connections open" test "$rc" = 0
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
# ---- the pool form: one process with the listening socket on fd 0, as a web server spawns it ----
PORT2=$(pick_port)
python3 -c 'import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
os.dup2(s.fileno(), 0)
s.close()
os.execv(sys.argv[2], sys.argv[2:])' "$PORT2" "$RL_FILTER" -c "$d/rl.conf" 2>>"$d/pool.log" &
POOL=$!
PIDS+=("$POOL")
wait_port "$PORT2" 5 || fail "the pool process is not listening on $PORT2"
$PROBE "127.0.0.1:$PORT2" flood 100 4000 >"$d/pool.out" 2>&1 || true
probe_ok "$d/pool.out" "one pool process (fd 0) against 300 hostile connections"
check "... all of them closed by the process ($(val idle_alive "$d/pool.out")/$(val onebyte_alive "$d/pool.out")/$(val trickle_alive "$d/pool.out") left)" \
    test "$(val idle_alive "$d/pool.out")$(val onebyte_alive "$d/pool.out")$(val trickle_alive "$d/pool.out")" = 000
# The process answers an admin body for up to read_timeout_ms; a request that came on time on
# another connection meanwhile waits unread, and must then be answered, not closed as late.
$PROBE "127.0.0.1:$PORT2" busy-sibling >"$d/busy.out" 2>&1 || true
check "a request on time while the only process was busy -> answered ($(val sibling "$d/busy.out") after $(val sibling_ms "$d/busy.out") ms)" \
    test "$(val sibling "$d/busy.out")" = 200
kill "$POOL"
rc=0; wait_gone "$POOL" 10 || rc=1
check "SIGTERM stops the pool process" test "$rc" = 0
check "no sanitizer report (pool)" no_sanitizer_report "$d/pool.log"

echo "FIGURE: fastcgi-pool: one process on fd 0, 100 idle + 100 one-byte + 100 trickling connections: $(val probe_ok "$d/pool.out") normal requests answered, slowest $(val probe_worst_ms "$d/pool.out") ms; last closed at $(val idle_closed_max_ms "$d/pool.out")/$(val onebyte_closed_max_ms "$d/pool.out")/$(val trickle_closed_max_ms "$d/pool.out") ms"
echo "FIGURE: fastcgi-noread: a client pipelining without reading: closed $(val stalled_closed_ms "$d/noread.out") ms after its last accepted byte (read_timeout_ms $READ_MS); slowest normal request meanwhile $(val probe_worst_ms "$d/noread.out") ms"
echo "FIGURE: fastcgi-flood: 200 idle + 200 one-byte + 200 trickling connections on 2 workers: $(val probe_ok "$d/flood.out") normal requests answered, slowest ${FLOOD_WORST} ms; last closed at ${FLOOD_CLOSE} ms (idle/one-byte/trickle; read_timeout_ms $READ_MS, max_connections 256 per worker)"
echo "FIGURE: fastcgi-hostile: slowest normal request during bad version / endless params / endless body / short record: $(val probe_worst_ms "$d/badv.out")/$(val probe_worst_ms "$d/ep.out")/$(val probe_worst_ms "$d/es.out")/$(val probe_worst_ms "$d/sr.out") ms; closed after $(val closed_ms "$d/badv.out")/$(val closed_ms "$d/ep.out")/$(val closed_ms "$d/es.out")/$(val closed_ms "$d/sr.out") ms; kept idle closed after ${ki} ms (idle_timeout_ms $IDLE_MS)"
finish
