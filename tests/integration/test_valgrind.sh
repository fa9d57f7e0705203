#!/usr/bin/env bash
# test_valgrind.sh -- valgrind memcheck of the filter: no errors, no leaks
#
# Runs the filter under `valgrind --tool=memcheck --leak-check=full` twice:
#   1. as lighttpd's FastCGI authorizer (the real accept loop): a burst from one client with
#      200s and 429s, a request without a usable address, then lighttpd stops the pool
#      (SIGTERM) and each filter process exits through its normal shutdown path;
#   2. as a plain CGI program: an allowed, a refused and a bad request.
# Every valgrind log must report 0 errors and nothing definitely, indirectly or possibly
# lost. A sanitizer build cannot run under valgrind: then the test says so and passes (the
# plain build's run, which CI also makes, covers it). Needs RL_FILTER, valgrind, lighttpd, curl.
set -euo pipefail

NAME=test_valgrind
source "$(dirname "$0")/lib/lib.sh"  # $T, PIDS, CONFS, checks, ports, waits, sanitized_build
if sanitized_build; then
    echo "SKIP: $RL_FILTER is a sanitizer build; valgrind runs on the plain build"
    exit 0
fi
need valgrind lighttpd curl

VG="$(command -v valgrind) --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --log-file=$T/vg.%p.log"

CONFS+=("$T/rl.conf")
cat > "$T/rl.conf" <<CONF
shm: { name = "/rltest-vg-$$-$RANDOM"; capacity = 100; };
rules = ( { name = "vg"; path_prefix = "/"; limit = "3/m"; } );
CONF
mkdir -p "$T/www"; echo ok > "$T/www/index.html"
PORT=$(pick_port)
cat > "$T/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$T/www"
server.errorlog = "$T/error.log"
server.breakagelog = "$T/filter.log"
index-file.names = ( "index.html" )
server.modules += ( "mod_fastcgi" )
fastcgi.server = ( "/" => ((
    "bin-path" => "$VG $RL_FILTER -c $T/rl.conf",
    "socket" => "$T/rl.sock", "mode" => "authorizer", "check-local" => "disable",
    "max-procs" => 1
)))
CONF
lighttpd -D -f "$T/lighttpd.conf" 2>"$T/lighttpd.stderr" &
LPID=$!
PIDS+=("$LPID")
ok=0
for ((i = 0; i < 150; i++)); do  # valgrind starts slowly: up to 15 s
    if ! port_free "$PORT" && curl -s -o /dev/null -m 5 "http://127.0.0.1:$PORT/"; then ok=1; break; fi
    sleep 0.1
done
[ "$ok" -eq 1 ] || { fail "lighttpd + filter under valgrind did not answer in 15 s"; exit 1; }
codes=""
for i in 1 2 3 4; do
    codes+="$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$PORT/?i=$i") "
done
# the first probe was the 1st admission: 2 more 200s, then 429s
[ "$codes" = "200 200 429 429 " ] && pass "FastCGI under valgrind: $codes" || fail "FastCGI under valgrind: $codes"
stop_pid "$LPID"
# the pool exits after lighttpd: wait for valgrind's final summaries
for ((i = 0; i < 150; i++)); do
    [ "$(grep -l 'ERROR SUMMARY' "$T"/vg.*.log 2>/dev/null | wc -l)" -ge 1 ] && \
        ! pgrep -f "$T/rl.conf" >/dev/null && break
    sleep 0.1
done

# CGI: allowed (another client), refused (the first client again), bad request
for addr in 192.0.2.50 127.0.0.1 not-an-ip; do
    env -i REQUEST_METHOD=GET REQUEST_URI=/ REMOTE_ADDR="$addr" $VG "$RL_FILTER" -c "$T/rl.conf" \
        </dev/null >"$T/cgi.out" 2>/dev/null || fail "CGI under valgrind exited $? for $addr"
done

logs=("$T"/vg.*.log)
[ "${#logs[@]}" -ge 4 ] && pass "${#logs[@]} valgrind logs (1 FastCGI process + 3 CGI runs)" || fail "only ${#logs[@]} valgrind logs"
for f in "${logs[@]}"; do
    name=$(basename "$f")
    if ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
        fail "$name: $(grep 'ERROR SUMMARY' "$f" || echo 'no summary (process did not exit?)')"; sed -n '1,60p' "$f"
    elif grep -Eq '(definitely|indirectly|possibly) lost: [1-9]' "$f"; then
        fail "$name leaks: $(grep -E 'lost:' "$f" | tr -s ' ' | tr '\n' ';')"
    else
        pass "$name: no errors, no leaks"
    fi
done
finish
