#!/usr/bin/env bash
# test_faults_backend.sh -- proxy mode (lighttpd responder -> filter -> backend) with the
# backend slow, too slow, and down in the middle of a paced burst
#
# A lighttpd + echo.cgi backend (?sleep=S waits S seconds); a front lighttpd spawning the
# filter (responder, 2 processes) with proxy.timeout_ms = 2500. Shows:
#   slow       a 256 KiB binary POST to a backend that waits 1 s arrives intact (echoed back
#              byte for byte, 200); the 1.5 s to the timeout cover perl's start on a loaded
#              machine
#   too slow   a backend silent for 8 s: 504 after the timeout (2.5 s; < 6 s leaves room for
#              a loaded machine and is still well before the backend answers), never a 500
#   stalled    a backend silent for 8 s after its head and 7919 bytes of body: the client's
#              transfer fails (curl 18 or 56) after the timeout, never completes; logged
#   down       GETs at ~30/s, the backend SIGTERMed after 10 answers and started again
#              after 3 x 502: only 200 and 502, no 500, no transport error; 200 again once it
#              is back (each step waits for its answers, with a bound, not for a set time)
#   cut        a backend that dies halfway through a chunked body, 10 times: the client's
#              transfer fails each time (curl 18 or 56), never completes; the next request
#              is served
#   the filter processes are the same before and after (no crash), no sanitizer report.
set -euo pipefail
NAME=test_faults_backend
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl perl cmp

B=$T/B; mkdir -p "$B"
BP=$(pick_port)
start_backend "$B" "$BP"
F=$T/F; mkdir -p "$F/www"
write_conf "$F/rl.conf" back 100000/m \
    "proxy: { backend = \"http://127.0.0.1:$BP\"; connect_timeout_ms = 500; timeout_ms = 2500; };"
start_pool "$F" responder "$F/rl.conf"
U="http://127.0.0.1:$LPORT"

c=$(hcurl -o /dev/null "$U/static.txt")
check "backend up: 200 ($c)" test "$c" = 200
PIDS_BEFORE=$(filter_pids "$F" | sort | tr '\n' ' ')

# ---- slow, within the timeout: the POST body arrives intact ----------------------------------
head -c 262144 /dev/urandom > "$T/body"
t0=$(now_ms)
c=$(hcurl -o "$T/echo" -H 'Content-Type: application/octet-stream' --data-binary "@$T/body" "$U/echo.cgi?sleep=1")
SLOW_MS=$(( $(now_ms) - t0 ))
check "POST 256 KiB to a backend that waits 1 s -> 200 ($c, ${SLOW_MS} ms)" test "$c" = 200
check "the body the backend received comes back byte for byte" cmp -s "$T/body" "$T/echo"

# ---- too slow: 504 --------------------------------------------------------------------------
t0=$(now_ms)
c=$(hcurl -o "$T/504.txt" "$U/echo.cgi?sleep=8")
GW_MS=$(( $(now_ms) - t0 ))
check "a backend silent for 8 s -> 504 ($c) after ${GW_MS} ms (timeout 2500 ms; < 6000)" \
    test "$c" = 504 -a "$GW_MS" -lt 6000 -a "$GW_MS" -ge 2400
check "the 504 is logged" grep -q 'error: 504: backend .* did not answer "/echo.cgi?sleep=8" within 2500 ms' "$F/filter.log"

# ---- silent after the head: the answer is cut, never completed ------------------------------
t0=$(now_ms)
rc=0
c=$(curl -s --noproxy '*' --max-time 30 -o "$T/stall.out" -w '%{http_code}' "$U/echo.cgi?gen=100000&stall=8") || rc=$?
STALL_MS=$(( $(now_ms) - t0 ))
check "a backend silent for 8 s after its head: the client's transfer fails (curl $rc, $c, $(stat -c %s "$T/stall.out") bytes)" \
    test "$rc" = 18 -o "$rc" = 56
check "... after the timeout (${STALL_MS} ms; timeout 2500 ms, < 8000)" test "$STALL_MS" -ge 2400 -a "$STALL_MS" -lt 8000
check "the cut is logged" grep -q 'the response to "/echo.cgi?gen=100000&stall=8" was cut short' "$F/filter.log"

# ---- down in the middle of a paced burst: 502 ------------------------------------------------
# The burst runs until told to stop, and each step waits for what it needs (a few answers
# before the stop, a few 502 while down, a 200 after the restart) with a generous bound, so a
# slow or loaded machine only makes it longer; a filter that answers anything else, or never
# 502, or never 200 again, still fails.
out=$T/down.txt
: > "$out"
( for ((i = 0; i < 2000; i++)); do
      [ -e "$T/down.stop" ] && break
      t=$(now_ms)
      echo "$t $(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$U/static.txt?i=$i" || echo 000)"
      sleep 0.03
  done > "$out" ) &
LOAD=$!
PIDS+=("$LOAD")
seen() { # awk condition, count, seconds: until COUNT lines of the burst match CONDITION
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(awk "$1" "$out" | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
seen '1' 10 30 || fail "the burst did not get 10 answers in 30 s"
DOWN_MS=$(now_ms)
stop_pid "$BPID"
seen "\$1 >= $DOWN_MS && \$2 == 502" 3 30 || fail "no 3 x 502 within 30 s of the stop"
UP_MS=$(now_ms)
start_backend "$B" "$BP"
seen "\$1 >= $UP_MS && \$2 == 200" 5 30 || fail "no 5 x 200 within 30 s of the restart"
touch "$T/down.stop"
wait "$LOAD" || true
n=$(wc -l < "$out")
codes=$(awk '{print $2}' "$out" | sort | uniq -c | awk '{printf "%s x %s, ", $1, $2}' | sed 's/, $//')
n500=$(awk '$2 == 500' "$out" | wc -l)
n502=$(awk '$2 == 502' "$out" | wc -l)
check "$n requests, backend stopped and restarted: $codes; only 200/502" \
    test -z "$(awk '$2 != 200 && $2 != 502' "$out")" -a "$n" -ge 18
check "some 502 while it was down ($n502)" test "$n502" -ge 1
first502=$(awk -v a="$DOWN_MS" '$2 == 502 && $1 >= a {print $1; exit}' "$out")
back200=$(awk -v a="$UP_MS" '$2 == 200 && $1 >= a {print $1; exit}' "$out")
check "200 again after the backend came back" test -n "$back200"
check "the 502 is logged" grep -q 'error: 502: backend .* failed for "/static.txt' "$F/filter.log"
c=$(hcurl -o /dev/null "$U/static.txt")
check "afterwards: 200 ($c)" test "$c" = 200

# ---- cut after the head went out: the backend dies halfway through a chunked body ----------
# The filter must abort the FastCGI connection (no FCGI_END_REQUEST), so lighttpd cannot end
# the client's chunked response with its terminator: curl fails (18, or 56 for a reset), never
# exits 0 with a complete-looking half body, nor times out (28). Ten times: whether lighttpd
# read the head before it saw the end depends on timing (a filter that shuts the connection
# down before lighttpd read what it sent gets a Content-Length response of the half body from
# lighttpd: 8 of these 10 in one run). Then the real backend again, and the next request is
# served.
stop_pid "$BPID"
for ((i = 0; i < 50; i++)); do port_free "$BP" && break; sleep 0.1; done
perl "$ROOT/tests/integration/lib/cut_backend.pl" "$BP" 2>>"$T/cut.stderr" &
CPID=$!
PIDS+=("$CPID")
wait_port "$BP" 5 || fail "cut backend not listening on $BP"
CUT_RCS=""
CUT_BYTES=""
for ((i = 0; i < 10; i++)); do
    set +e
    curl -s --noproxy '*' --max-time 20 -o "$T/cut.body" "$U/static.txt?cut=$i"
    rc=$?
    set -e
    CUT_RCS+="$rc "
    CUT_BYTES+="$(wc -c < "$T/cut.body" 2>/dev/null || echo 0) "
done
check "backend dies mid chunked body, 10 times: the client sees a failed transfer each time (curl exits: $CUT_RCS; 18 or 56)" \
    test -z "$(echo "$CUT_RCS" | tr ' ' '\n' | grep -Ev '^(18|56|)$')"
stop_pid "$CPID"
for ((i = 0; i < 50; i++)); do port_free "$BP" && break; sleep 0.1; done
start_backend "$B" "$BP"
c=$(hcurl -o /dev/null "$U/static.txt")
check "after the cut: the next request is served (200: $c)" test "$c" = 200

PIDS_AFTER=$(filter_pids "$F" | sort | tr '\n' ' ')
check "the same filter processes before and after (no crash): $PIDS_AFTER" \
    test -n "$PIDS_BEFORE" -a "$PIDS_BEFORE" = "$PIDS_AFTER"
check "no sanitizer report" no_sanitizer_report "$F/filter.log"
echo "FIGURE: backend-slow: POST 256 KiB intact after a 1 s backend delay (${SLOW_MS} ms); silent backend -> 504 after ${GW_MS} ms (timeout 2500 ms)"
echo "FIGURE: backend-cut: 10 cuts, curl exits $CUT_RCS after bytes $CUT_BYTES(the backend died after 200000 of a chunked body)"
echo "FIGURE: backend-down: $n500 x 500 of $n ($codes); first 502 $(( ${first502:-0} - DOWN_MS )) ms after the stop, 200 again $(( ${back200:-0} - UP_MS )) ms after the start"
finish
