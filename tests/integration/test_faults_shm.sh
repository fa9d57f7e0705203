#!/usr/bin/env bash
# test_faults_shm.sh -- the shared-memory table under faults: a process dying in its lock, and
# the table full
#
#   die-in-lock  a lighttpd authorizer pool (2 processes) and CGI invocations share one table
#                (rule 10/h). Client A spends 4 through lighttpd; a release CGI invocation for
#                A with RL_SHM_TEST_DIE_IN_LOCK=1 ignores it (the hook is not in a release
#                build) and is admitted (5th). Then one CGI invocation for A of the test build
#                ($RL_FILTER_TESTING, -DRL_TESTING) runs with the variable: it takes A's
#                stripe lock, wipes the stripe's index (as a half-done insert could leave it)
#                and dies holding the lock (exit 9, no answer). The pool goes on: the next decision for A is prompt
#                (< 5 s, generous for a loaded machine: a lock never repaired would hold it
#                until curl's 10 s), and A then gets exactly 5 x 200 and 2 x 429: nothing lost, nothing
#                counted twice (the robust mutex is EOWNERDEAD, the stripe is rebuilt from its
#                slots). A CGI decision for another client works too.
#   table-full   a pool whose table holds 16 keys (the minimum), rule 2/h; rl-burst floods it
#                with 400 requests from 200 distinct clients (127.0.3.x / 127.0.4.x): every one
#                answered 200 (each client sends 2 = its allowance), no 5xx; a client that had
#                spent its allowance before the flood is admitted again afterwards (its key was
#                evicted: evictions happen, the table never fails); the segment's size is the
#                same before and after, and the filters' RSS does not grow by more than 1 MiB.
set -euo pipefail
NAME=test_faults_shm
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl
BURST=${RL_BURST:-$ROOT/build/rl-burst}
[ -x "$BURST" ] || { echo "FAIL: $BURST is not built (make)"; exit 1; }
# The filter with the core's fault hooks compiled in (make integration sets it).
TFILTER=${RL_FILTER_TESTING:-$(dirname "$RL_FILTER")/testing/ratelimit-filter}
[ -x "$TFILTER" ] || { echo "FAIL: $TFILTER is not built (make $(dirname "$RL_FILTER")/testing/ratelimit-filter)"; exit 1; }

# One request from ADDR through lighttpd on port P: "CODE MS".
req() { # port addr path
    local t0 c
    t0=$(now_ms)
    c=$(curl -s --noproxy '*' --max-time 10 --interface "$2" -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$1$3" || echo 000)
    echo "$c $(( $(now_ms) - t0 ))"
}
cgi() { # conf addr [env...]: one CGI decision; prints the Status line, returns its exit code
    local conf=$1 addr=$2; shift 2
    env -i PATH=/usr/bin:/bin REMOTE_ADDR="$addr" REQUEST_METHOD=GET REQUEST_URI=/x \
        GATEWAY_INTERFACE=CGI/1.1 "$@" "${CGI_FILTER:-$RL_FILTER}" -c "$conf" 2>>"$T/cgi.log" </dev/null
}

# ---- die in the lock -----------------------------------------------------------------------------
D=$T/dil; mkdir -p "$D/www"; echo x > "$D/www/x"
write_conf "$D/rl.conf" dil 10/h ""
start_pool "$D" authorizer "$D/rl.conf"
P1=$LPORT
codes=""
for i in 1 2 3 4; do codes+="$(req "$P1" 127.0.1.1 /x | cut -d' ' -f1) "; done
check "client A: 4 x 200 before ($codes)" test "$codes" = "200 200 200 200 "
PIDS_BEFORE=$(filter_pids "$D" | sort | tr '\n' ' ')
rc=0; out=$(cgi "$D/rl.conf" 127.0.1.1 RL_SHM_TEST_DIE_IN_LOCK=1 | tr -d '\r' | head -n 1) || rc=$?
check "the release build ignores RL_SHM_TEST_DIE_IN_LOCK=1: exit $rc, \"$out\"" \
    test "$rc" = 0 -a "$out" = "Status: 200 OK"
rc=0; CGI_FILTER=$TFILTER cgi "$D/rl.conf" 127.0.1.1 RL_SHM_TEST_DIE_IN_LOCK=1 > "$T/died.out" || rc=$?
check "the test build's CGI process died holding the lock (exit $rc, no answer)" test "$rc" = 9 -a ! -s "$T/died.out"
read -r c FIRST_MS < <(req "$P1" 127.0.1.1 /x)
check "the next decision for A is prompt: $c in ${FIRST_MS} ms (< 5000)" test "$c" = 200 -a "$FIRST_MS" -lt 5000
codes="$c "
for i in 1 2 3 4 5 6; do codes+="$(req "$P1" 127.0.1.1 /x | cut -d' ' -f1) "; done
check "A's count is exact across the death: 5 x 200 then 2 x 429 ($codes)" \
    test "$codes" = "200 200 200 200 200 429 429 "
out=$(cgi "$D/rl.conf" 127.0.1.2 | tr -d '\r' | head -n 1)
check "a CGI decision for client B after the death: \"$out\"" test "$out" = "Status: 200 OK"
out=$(cgi "$D/rl.conf" 127.0.1.1 | tr -d '\r' | head -n 1)
check "a CGI decision for A after the death is a refusal: \"$out\"" test "${out:0:11}" = "Status: 429"
PIDS_AFTER=$(filter_pids "$D" | sort | tr '\n' ' ')
check "the pool's processes are the ones from before: $PIDS_AFTER" test "$PIDS_BEFORE" = "$PIDS_AFTER"

# ---- table full ----------------------------------------------------------------------------------
F=$T/full; mkdir -p "$F/www"; echo x > "$F/www/x"
SHM="/rltest-$RUN_ID-full"
cat > "$F/rl.conf" <<CONF
shm: { name = "$SHM"; capacity = 16; };
rules = ( { name = "full"; path_prefix = "/"; limit = "2/h"; } );
CONF
CONFS+=("$F/rl.conf")
start_pool "$F" authorizer "$F/rl.conf"
P2=$LPORT
codes=""
for i in 1 2 3; do codes+="$(req "$P2" 127.0.2.1 /x | cut -d' ' -f1) "; done
check "client X spends its 2/h before the flood ($codes)" test "$codes" = "200 200 429 "
SEG0=$(seg_bytes "$SHM")
FP=$(filter_pids "$F")
# shellcheck disable=SC2086
RSS0=$(rss_kb $FP)
"$BURST" -q --json -n 400 -c 8 -k 200 --first-client 127.0.3.1 --limit 2/h "http://127.0.0.1:$P2/x" \
    > "$T/full.json" 2> "$T/full.txt" || true
sent=$(burst_json "$T/full.json" sent)
adm=$(burst_json "$T/full.json" admitted)
oth=$(burst_json "$T/full.json" other)
err=$(burst_json "$T/full.json" transport_errors)
check "flood of 200 clients on a 16-key table: $adm x 200 of $sent, $oth other, $err unanswered" \
    test "$sent" = 400 -a "$adm" = 400 -a "$oth" = 0 -a "$err" = 0
codes=""
for i in 1 2; do codes+="$(req "$P2" 127.0.2.1 /x | cut -d' ' -f1) "; done
check "client X was evicted by the flood: admitted again ($codes)" test "$codes" = "200 200 "
SEG1=$(seg_bytes "$SHM")
# shellcheck disable=SC2086
RSS1=$(rss_kb $FP)
check "segment size constant: $SEG0 -> $SEG1 bytes" test "$SEG0" -gt 0 -a "$SEG0" = "$SEG1"
# ASan keeps freed memory in quarantine (up to 256 MiB): RSS says nothing under it.
if sanitized_build; then
    echo "NOTE: ASan build: filters' RSS ${RSS0} -> ${RSS1} KiB not checked (quarantine)"
else
    check "filters' RSS ${RSS0} -> ${RSS1} KiB (growth < 1024)" test $((RSS1 - RSS0)) -lt 1024
fi
check "the full table's filters are the same processes" test "$(filter_pids "$F")" = "$FP"

for f in "$D/filter.log" "$F/filter.log" "$T/cgi.log"; do
    check "no sanitizer report in ${f#"$T"/}" no_sanitizer_report "$f"
done
echo "FIGURE: die-in-lock: next decision ${FIRST_MS} ms after a process died holding the lock; count exact (5 + 5 admitted of 10/h, then 429)"
echo "FIGURE: table-full: 400 requests from 200 clients on 16 slots: $adm x 200, $oth other, 0 failures; segment $SEG0 -> $SEG1 bytes; filter RSS ${RSS0} -> ${RSS1} KiB"
finish
