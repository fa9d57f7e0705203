#!/usr/bin/env bash
# test_fastcgi_reuse.sh -- one filter process (--workers 1) keeps its last closed FastCGI
# connection, buffers included, for the next one: a connection that ended mid-header,
# mid-params, with its params open, mid-body, after FCGI_ABORT_REQUEST or after a whole
# keep-conn request leaves nothing to the next (a rule keyed by X-Key, refusing a missing key
# with 401: the first connection's X-Key must not be seen by the second); the decision's
# parameters found in one pass (the first of duplicates, as libfcgi's FCGX_GetParam; prefixes,
# other cases, empty names and 3000 other parameters); a problem+json refusal for a path of
# quotes, backslashes and non-ASCII bytes parses as JSON, the path
# escaped and cut. The client is
# tests/integration/lib/fcgi_reuse.py.
set -euo pipefail
NAME=test_fastcgi_reuse
source "$(dirname "$0")/lib/lib.sh"
need python3

C="python3 $ROOT/tests/integration/lib/fcgi_reuse.py"
d=$T/R; mkdir -p "$d"
cat > "$d/rl.conf" <<CONF
shm: { name = "/rltest-$RUN_ID-ru"; capacity = 1000; };
fastcgi: { read_timeout_ms = 3000; };
headers: { problem_json = true; };
rules = ( { name = "k"; path_prefix = "/k"; limit = "1/m"; key = ["header:X-Key"];
            on_missing_key = "refuse"; missing_key_status = 401; } );
CONF
CONFS+=("$d/rl.conf")
PORT=$(pick_port)
start_daemon "127.0.0.1:$PORT" "$d/rl.conf" 1 "$d/filter.log"
A=127.0.0.1:$PORT
val() { sed -n "s/^$1=//p" "$2" | head -n 1; }

# The key "used" is spent: a leaked X-Key: used would give 429, not 401 or 200.
$C "$A" cut answered >"$d/answered.out" 2>&1 || true
check "a whole keep-conn request with X-Key, then a request without one -> $(val missing "$d/answered.out") (401), with its own -> $(val fresh "$d/answered.out") (200)" \
    test "$(val missing "$d/answered.out"):$(val fresh "$d/answered.out")" = 401:200
for m in mid-header mid-params params-open mid-body abort; do
    $C "$A" cut "$m" >"$d/$m.out" 2>&1 || true
    check "a connection ending $m ($(val first "$d/$m.out") by the server), then: no X-Key -> $(val missing "$d/$m.out") (401), X-Key fresh -> $(val fresh "$d/$m.out") (200)" \
        test "$(val first "$d/$m.out"):$(val missing "$d/$m.out"):$(val fresh "$d/$m.out")" = closed:401:200
done

$C "$A" params >"$d/params.out" 2>&1 || true
p() { val "$1" "$d/params.out"; }
check "two X-Key parameters: the first decides ($(p dup), then the first alone $(p dup_first), the second alone $(p dup_second))" \
    test "$(p dup):$(p dup_first):$(p dup_second)" = 200:429:200
check "HTTP_X_KEY2 / HTTP_X_KEYS / HTTP_x_key / HTTP_X_Key are not X-Key ($(p prefix), $(p othercase): 401)" \
    test "$(p prefix):$(p othercase)" = 401:401
check "an empty name and an empty value before X-Key ($(p empty): 200)" test "$(p empty)" = 200
check "X-Key after 3000 other parameters decides ($(p many), then $(p many_again))" \
    test "$(p many):$(p many_again)" = 200:429

$C "$A" problem >"$d/problem.out" 2>&1 || true
check "a problem+json refusal for a long path of quotes, backslashes, non-ASCII: $(val code "$d/problem.out"), JSON $(val json "$d/problem.out")" \
    test "$(val code "$d/problem.out"):$(val json "$d/problem.out")" = 429:ok

stop_pid "$DPID"
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
finish
