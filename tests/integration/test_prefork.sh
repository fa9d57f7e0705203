#!/usr/bin/env bash
# test_prefork.sh -- the prefork daemon: --listen/--workers errors, a stale unix socket
# replaced (mode 0660), N workers, a killed worker logged and restarted, exact counts across
# workers (cgi-fcgi as the client), SIGTERM -> exit 0 and the socket file removed.
set -euo pipefail
NAME=test_prefork
source "$(dirname "$0")/lib/lib.sh"
need cgi-fcgi

d=$T/P; mkdir -p "$d"
write_conf "$d/rl.conf" pre 5/m ""
rc=0; "$RL_FILTER" --workers 2 -c "$d/rl.conf" 2>/dev/null || rc=$?
check "--workers without --listen -> 2 ($rc)" test "$rc" = 2
rc=0; "$RL_FILTER" --listen /x.sock --workers 0 -c "$d/rl.conf" 2>/dev/null || rc=$?
check "--workers 0 -> 2 ($rc)" test "$rc" = 2
rc=0; "$RL_FILTER" --listen nonsense --workers 1 -c "$d/rl.conf" 2>/dev/null || rc=$?
check "--listen nonsense -> 3 ($rc)" test "$rc" = 3

SOCK=$d/rl.sock
# A daemon killed by SIGKILL leaves its socket file behind (its workers follow it).
start_daemon "$SOCK" "$d/rl.conf" 1 "$d/first.log"
kill -9 "$DPID"; wait_gone "$DPID" 5 || true
check "a stale socket file is left" test -S "$SOCK"
start_daemon "$SOCK" "$d/rl.conf" 3 "$d/filter.log"
for ((i = 0; i < 50; i++)); do [ "$(pgrep -c -P "$DPID")" = 3 ] && break; sleep 0.1; done
check "3 workers" test "$(pgrep -c -P "$DPID")" = 3
check "socket mode 0660 ($(stat -c %a "$SOCK"))" test "$(stat -c %a "$SOCK")" = 660

req() { env -i REQUEST_METHOD=GET REQUEST_URI=/p REMOTE_ADDR=192.0.2.1 cgi-fcgi -bind -connect "$SOCK" | tr -d '\r' | sed -n 's/^Status: \([0-9]*\).*/\1/p'; }
victim=$(pgrep -P "$DPID" | head -n 1)
kill -9 "$victim"
for ((i = 0; i < 50; i++)); do grep -q "worker $victim killed by signal 9" "$d/filter.log" && break; sleep 0.1; done
check "the master logs the death" grep -q "worker $victim killed by signal 9" "$d/filter.log"
for ((i = 0; i < 50; i++)); do [ "$(pgrep -c -P "$DPID")" = 3 ] && break; sleep 0.1; done
check "the worker is replaced" test "$(pgrep -c -P "$DPID")" = 3
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(req) "; done
check "7 requests across workers -> 5 x 200 then 2 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 "
kill "$DPID"
rc=0; wait_gone "$DPID" 5 || rc=1
check "SIGTERM stops the daemon within 5 s" test "$rc" = 0
rc=0; wait "$DPID" || rc=$?
check "exit status 0 ($rc)" test "$rc" = 0
check "socket file removed" test ! -e "$SOCK"
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
finish
