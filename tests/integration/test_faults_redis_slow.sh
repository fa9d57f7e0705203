#!/usr/bin/env bash
# test_faults_redis_slow.sh -- Redis slowed (DEBUG SLEEP in a loop) in the middle of a paced
# burst through lighttpd (authorizer pool of 2 filter processes)
#
# test_redis_failover.sh covers Redis killed, paused (SIGSTOP) and restarted; this one covers
# the case in between: Redis alive but answering late. `DEBUG SLEEP 0.3` blocks the server for
# 300 ms at a time, in a loop for ~2 s, while rl-burst sends 200 requests at 50/s from 4
# clients. With command_timeout_ms = 50 every decision that meets a sleeping Redis gives up
# after 50 ms and is decided in shared memory; after 3 such failures the breaker skips Redis
# for 250 ms. Shows: no 5xx, every request answered (200/429 only), the slowest answer bounded
# (< 3000 ms: generous for a loaded machine), the fallback logged, and Redis deciding again once
# it is fast. Before and after the fault, a request that a loaded machine keeps past the 50 ms
# is tried again (bounded): those checks are about Redis deciding, not about the deadline.
set -euo pipefail
NAME=test_faults_redis_slow
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli curl
BURST=${RL_BURST:-$ROOT/build/rl-burst}
[ -x "$BURST" ] || { echo "FAIL: $BURST is not built (make)"; exit 1; }

start_redis --enable-debug-command yes
PREFIX="rltest:$RUN_ID:"
d=$T/p; mkdir -p "$d/www"
cat > "$d/rl.conf" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-slow"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "$PREFIX";
         connect_timeout_ms = 50; command_timeout_ms = 50;
         breaker_failures = 3; breaker_open_ms = 250; };
rules = ( { name = "slow"; path_prefix = "/"; limit = "1000/s"; },
          { name = "probe"; path_prefix = "/"; limit = "1000/h"; } );
CONF
CONFS+=("$d/rl.conf")
echo ok > "$d/www/index.html"
start_pool "$d" authorizer "$d/rl.conf"
U="http://127.0.0.1:$LPORT/index.html"

probe_keys() { rcli eval "return #redis.call('keys', ARGV[1])" 0 "${PREFIX}{127.0.0.1}:probe:*"; }
c=$(hcurl -o /dev/null "$U")
check "warm-up request decided ($c)" test "$c" = 200
for ((i = 0; i < 20; i++)); do [ "$(probe_keys)" = 1 ] && break; sleep 0.3; hcurl -o /dev/null "$U" >/dev/null; done
check "Redis decides before the fault" test "$(probe_keys)" = 1

PIDS_BEFORE=$(filter_pids "$d" | sort | tr '\n' ' ')
# 200 requests at 50/s (4 s); Redis sleeps 300 ms at a time from 1 s to ~3 s.
"$BURST" -q --json -n 200 -c 4 -k 4 --rate 50 --limit 1000/s --rule slow "$U" > "$T/burst.json" 2> "$T/burst.txt" &
BURST_PID=$!
PIDS+=("$BURST_PID")
sleep 1
SLOW_MS=$(now_ms)
sleeps=0
while [ $(( $(now_ms) - SLOW_MS )) -lt 2000 ]; do
    rcli DEBUG SLEEP 0.3 >/dev/null 2>&1 && sleeps=$((sleeps + 1))
    sleep 0.02
done
brc=0; wait "$BURST_PID" || brc=$?
check "the load ran to its end while Redis was slowed ($sleeps x DEBUG SLEEP 0.3; rl-burst exit $brc)" test "$brc" = 0

sent=$(burst_json "$T/burst.json" sent)
adm=$(burst_json "$T/burst.json" admitted)
ref=$(burst_json "$T/burst.json" refused)
oth=$(burst_json "$T/burst.json" other)
err=$(burst_json "$T/burst.json" transport_errors)
p99=$(burst_json "$T/burst.json" p99)
mx=$(burst_json "$T/burst.json" max)
check "200 requests sent, all answered ($sent sent, $err transport errors)" test "$sent" = 200 -a "$err" = 0
check "no 5xx or other status: $adm x 200, $ref x 429, $oth other" test "$oth" = 0
check "the slowest answer ${mx} ms < 3000 ms (p99 ${p99} ms)" awk -v m="$mx" 'BEGIN { exit !(m < 3000) }'
check "the fallback was logged (\"deciding from shared memory\")" grep -q 'deciding from shared memory until Redis answers again: redis.*timed out' "$d/filter.log"
fb=$(grep -c 'deciding from shared memory' "$d/filter.log" || true)

# Redis is fast again: after the breaker's 250 ms, Redis decides again.
sleep 0.4
rcli eval "for _, k in ipairs(redis.call('keys', ARGV[1])) do redis.call('del', k) end" 0 "${PREFIX}{127.0.0.1}:probe:*" >/dev/null
for ((i = 0; i < 50; i++)); do
    hcurl -o /dev/null "$U" >/dev/null
    [ "$(probe_keys)" = 1 ] && break
    sleep 0.1
done
check "Redis decides again once fast (key back in Redis)" test "$(probe_keys)" = 1
check "\"Redis answers again\" logged" grep -q 'Redis answers again' "$d/filter.log"
PIDS_AFTER=$(filter_pids "$d" | sort | tr '\n' ' ')
check "the same filter processes before and after (no crash, no respawn): $PIDS_AFTER" \
    test -n "$PIDS_BEFORE" -a "$PIDS_BEFORE" = "$PIDS_AFTER"
check "no sanitizer report in the filter's log" no_sanitizer_report "$d/filter.log"
echo "FIGURE: redis-slow: $oth 5xx/other of $sent ($adm x 200, $ref x 429), $err unanswered, latency p99 ${p99} ms max ${mx} ms while Redis slept 300 ms x $sleeps, fallback logged $fb time(s)"
finish
