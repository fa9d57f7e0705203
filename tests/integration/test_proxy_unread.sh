#!/usr/bin/env bash
# test_proxy_unread.sh -- what the filter leaves unread, and what the web server leaves unread,
# on a kept FastCGI connection: never taken as a next request, never a stuck process
#
#   early    the --listen daemon (1 worker, TCP) in proxy mode before framing_backend.py; a
#            FastCGI client (lib/fcgi_early.py) on one FCGI_KEEP_CONN connection POSTs a 4 MiB
#            body, slowly, whose every byte is a forged FastCGI request ("GET /forged"); the
#            answer comes before the body is all sent, then the client sends the rest and, on
#            the same connection, a GET:
#              refused   the client is over its limit: 429 at once (the filter answers
#                        without reading the body, then reads and drops the rest)
#              413       allowed and forwarded to a backend that answers 413 at once without
#                        reading the body: the client gets the 413 (the filter stops sending
#                        the body to the backend and drops the rest of it)
#            in both the next request on the connection is answered 200 with the backend's
#            body and its own request id, nothing else comes (no answer to a forged request),
#            no /forged reaches the backend or the filter's log.
#   cutwait  the daemon on a unix socket before cut_backend.pl (dies after 200000 bytes of a
#            chunked answer), proxy.timeout_ms 1500: the client reads 100000 bytes of the
#            answer and then nothing for 3 s. The filter logs once "the web server left N
#            bytes of a cut answer unread for 1500 ms", N at least the bytes the client then
#            still reads and at most 4 times as many (on a unix socket the kernel counts the
#            memory the unread data takes, not its bytes); what it reads has no
#            FCGI_END_REQUEST and ends with the connection's close; the same process then
#            answers the next request (a 429 of its own).
# No sanitizer report in the filter's logs.
set -euo pipefail
NAME=test_proxy_unread
source "$(dirname "$0")/lib/lib.sh"
need python3 perl

EARLY="python3 $ROOT/tests/integration/lib/fcgi_early.py"
val() { sed -n "s/^$2=//p" "$1" | head -n 1; } # file, key: the value the client printed

# ---- early: the filter answers before the web server sent the whole body ---------------------
E=$T/E; mkdir -p "$E"
FP=$(pick_port)
python3 "$ROOT/tests/integration/lib/framing_backend.py" "$FP" "$E/backend.log" 2>>"$E/backend.stderr" &
PIDS+=("$!")
wait_port "$FP" 5 || { fail "framing backend not listening on $FP"; finish; }
write_conf "$E/rl.conf" early 1/366d \
    "proxy: { backend = \"http://127.0.0.1:$FP\"; connect_timeout_ms = 1000; timeout_ms = 10000; };"
DP=$(pick_port)
start_daemon "127.0.0.1:$DP" "$E/rl.conf" 1 "$E/filter.log" || finish

early() { # name target client client2
    local n=$1 o=$T/$1.out
    $EARLY early "127.0.0.1:$DP" "$2" "$3" "$4" > "$o" 2>"$T/$1.err" || fail "$n: the client failed: $(tail -n 1 "$T/$1.err")"
    echo "FIGURE: proxy-unread: $n: $(tr '\n' ' ' < "$o")"
    check "$n: the answer came before the body was all sent ($(val "$o" sent_at_answer) of $(val "$o" body_total) bytes sent), request id $(val "$o" first_id)" \
        test "$(val "$o" sent_at_answer)" -ge 0 -a "$(val "$o" sent_at_answer)" -lt "$(val "$o" body_total)" -a "$(val "$o" first_id)" = 1
    check "$n: the rest of the body was taken (all $(val "$o" body_sent) bytes sent, send error: $(val "$o" send_error))" \
        test "$(val "$o" body_sent)" = "$(val "$o" body_total)" -a "$(val "$o" send_error)" = none
    check "$n: the next request on the connection: $(val "$o" second_code) \"$(val "$o" second_body)\", id $(val "$o" second_id)" \
        test "$(val "$o" second_code)" = 200 -a "$(val "$o" second_body)" = hello -a "$(val "$o" second_id)" = 1
    check "$n: nothing came after it ($(val "$o" extra) bytes): no answer to a forged request" test "$(val "$o" extra)" = 0
}

# refused: 198.51.100.1 spends its one request, then its upload gets the 429
$EARLY get "127.0.0.1:$DP" "/first?cl" 198.51.100.1 > "$T/get.out"
check "the first request of 198.51.100.1 is forwarded: $(val "$T/get.out" code)" test "$(val "$T/get.out" code)" = 200
early refused "/up?cl" 198.51.100.1 198.51.100.2
check "refused: the upload got the 429: $(val "$T/refused.out" first_code)" test "$(val "$T/refused.out" first_code)" = 429
early 413 "/up?refuse-upload" 198.51.100.4 198.51.100.5
check "413: the backend's early 413 reached the client: $(val "$T/413.out" first_code)" test "$(val "$T/413.out" first_code)" = 413
check "no forged request reached the backend ($(grep -c forged "$E/backend.log" || true) lines)" \
    test "$(grep -c forged "$E/backend.log" || true)" = 0
check "none reached the filter's log ($(grep -c forged "$E/filter.log" || true) lines)" \
    test "$(grep -c forged "$E/filter.log" || true)" = 0
check "the backend saw exactly the 4 expected requests ($(grep -c '^req' "$E/backend.log" || true))" \
    test "$(grep -c '^req' "$E/backend.log" || true)" = 4

# ---- an uncounted body: chunked only when "chunked" is the last transfer coding ------------
# A FastCGI peer may pass a body without CONTENT_LENGTH; it is streamed to the backend chunked
# only when HTTP_TRANSFER_ENCODING's last coding is chunked (as the backend's answer is read),
# not when the value merely ends in those letters ("xchunked" was taken for chunked).
TE='import sys
sys.path.insert(0, sys.argv[2])
from fcgi_probe import BEGIN, PARAMS, STDIN, Reader, connect, params_bytes, rec, stream
p = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/te?echo", "REMOTE_ADDR": sys.argv[4],
     "HTTP_TRANSFER_ENCODING": sys.argv[3]}
s = connect(sys.argv[1], 30)
s.sendall(rec(BEGIN, 1, bytes([0, 1, 0, 0, 0, 0, 0, 0])) + stream(PARAMS, 1, params_bytes(p))
          + stream(STDIN, 1, b"abc"))
rid, code, _, out = Reader(s).answer()
print(code, out.split(b"\r\n\r\n", 1)[-1].decode())'
te() { timeout 60 python3 -c "$TE" "127.0.0.1:$DP" "$ROOT/tests/integration/lib" "$1" "$2" || true; }
r=$(te "gzip, chunked" 198.51.100.60)
check "Transfer-Encoding \"gzip, chunked\", no CONTENT_LENGTH: the body reaches the backend ($r)" test "$r" = "200 abc"
r=$(te xchunked 198.51.100.61)
check "Transfer-Encoding \"xchunked\": not chunked, no body forwarded ($r)" test "$r" = "200 "

# ---- cutwait: the web server leaves a cut answer unread --------------------------------------
C=$T/C; mkdir -p "$C"
CP=$(pick_port)
perl "$ROOT/tests/integration/lib/cut_backend.pl" "$CP" 2>>"$C/cut.stderr" &
PIDS+=("$!")
wait_port "$CP" 5 || { fail "cut backend not listening on $CP"; finish; }
write_conf "$C/rl.conf" cutwait 1/366d \
    "proxy: { backend = \"http://127.0.0.1:$CP\"; connect_timeout_ms = 1000; timeout_ms = 1500; };"
start_daemon "$C/rl.sock" "$C/rl.conf" 1 "$C/filter.log" || finish
o=$T/cutwait.out
$EARLY cutwait "$C/rl.sock" 3000 > "$o" 2>"$T/cutwait.err" || fail "cutwait: the client failed: $(tail -n 1 "$T/cutwait.err")"
echo "FIGURE: proxy-unread: cutwait: $(tr '\n' ' ' < "$o")"
w=$(grep -c 'the web server left [0-9]* bytes of a cut answer unread for 1500 ms' "$C/filter.log" || true)
n=$(sed -n 's/.*the web server left \([0-9]*\) bytes of a cut answer unread.*/\1/p' "$C/filter.log" | head -n 1)
check "cutwait: the warning is logged once ($w): N = ${n:-?}" test "$w" = 1
# On a unix socket the kernel's count (TIOCOUTQ) is the memory the queued data takes, not its
# bytes: at least the unread bytes, a little more (measured 138496 for 100248).
a=$(val "$o" after_pause)
check "cutwait: N is at least what the client read after its pause ($a bytes), and at most 4 times that" \
    test -n "$n" -a "$a" -gt 0 -a "${n:-0}" -ge "$a" -a "${n:-0}" -le $((4 * a))
echo "FIGURE: proxy-unread: cutwait: logged N = $n for $a bytes the web server had not read"
check "cutwait: the cut is logged" grep -q 'the response to "/cut" was cut short' "$C/filter.log"
check "cutwait: no FCGI_END_REQUEST ($(val "$o" end_records)), the connection closed ($(val "$o" ended)), $(val "$o" stdout) bytes of STDOUT in all" \
    test "$(val "$o" end_records)" = 0 -a "$(val "$o" ended)" = eof
check "cutwait: the process still answers: the next request gets $(val "$o" after_code)" \
    test "$(val "$o" after_code)" = 429
for f in "$E/filter.log" "$C/filter.log"; do
    check "no sanitizer report in ${f#"$T"/}" no_sanitizer_report "$f"
done
finish
