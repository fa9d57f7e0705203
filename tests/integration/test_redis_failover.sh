#!/usr/bin/env bash
# test_redis_failover.sh -- two real filter pools on one Redis; Redis killed, restarted, paused
#
# One redis-server and two lighttpd instances (pools P1 and P2), each spawning its own filter
# processes (authorizer, max-procs 2) with its own shared-memory segment, all on 127.0.0.1
# ports below 32768; curl is the only client (every request comes from 127.0.0.1). Rules are
# told apart by path, so each scenario has its own keys:
#   1 exact    16 requests split over both pools, 4 at a time: exactly 10 x 200 (10/m) in
#              total, the rest 429 -- the pools share one counter through Redis
#   2 kill     60 requests over ~3 s from 3 clients over both pools; redis-server SIGKILLed
#              half way: no 5xx, only 200/429; "deciding from shared memory" logged within 3 s
#              of the kill; refusals with backend=shm and admissions after it
#   5 closed / open, while Redis is down: on_redis_down "closed" -> 429 + Retry-After;
#              "open" -> 200 beyond its limit of 3
#   3 recover  redis-server restarted on the same port: a new key in Redis and "Redis answers
#              again" in the log within 3 s
#   4 stop     60 requests over ~3 s while redis-server is SIGSTOPped for 4 s: every request
#              within 3.5 s, which one held for the pause could not be (command/connect
#              timeouts 50 ms; breaker_open_ms 250)
# The time bounds are generous for a loaded machine (2 shared cores, ASan); the figures printed
# are what MANUAL quotes.
#   health   each pool also mounts the admin paths as a responder (MANUAL 6d, "Admin behind
#              an authorizer": same binary and configuration, max-procs 1): its health says
#              "down" with 503 within 3 s of the kill -- down, not degraded, by MANUAL's
#              definition, since rules "closed" and "open" do not fall back to shared memory --
#              and "ok" with 200 within 3 s of the restart
# Prints admitted per pool, time to fallback, time to recovery, max and p99 latency paused,
# and when health changed.
# The filters' log lines are stamped on arrival (tail -F) to time the fallback and recovery.
set -euo pipefail
NAME=test_redis_failover
source "$(dirname "$0")/lib/lib.sh"
need lighttpd redis-server redis-cli curl tail

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }

# ---- Redis ---------------------------------------------------------------------------------
RPORT=$(pick_port)
RPID=""
start_redis() {
    redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$T" \
        --logfile "$T/redis.log" >/dev/null 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    wait_port "$RPORT" 5 || { fail "redis-server not listening on $RPORT in 5 s"; finish; }
}
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
# A SIGSTOPped Redis must be continued before the cleanup's SIGTERM can work.
trap '[ -z "$RPID" ] || kill -CONT "$RPID" 2>/dev/null; lib_cleanup' EXIT
start_redis

# ---- two pools -----------------------------------------------------------------------------
PREFIX="rltest:$RUN_ID:"
LPORTS=()
start_pool() { # number
    local d="$T/p$1" port
    mkdir -p "$d/www"
    for f in exact kill closed open recover stop; do echo "$f" > "$d/www/$f"; done
    cat > "$d/rl.conf" <<CONF
# written by $NAME: pool $1, its own shm segment, the Redis of every pool
shm: { name = "/rltest-$RUN_ID-p$1"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "$PREFIX";
         connect_timeout_ms = 50; command_timeout_ms = 50;
         breaker_failures = 3; breaker_open_ms = 250; };
rules = (
  { name = "exact";   path_prefix = "/exact";   limit = "10/m"; },
  { name = "kill";    path_prefix = "/kill";    limit = "5/s"; burst = 2; },
  { name = "closed";  path_prefix = "/closed";  limit = "3/m"; on_redis_down = "closed"; },
  { name = "open";    path_prefix = "/open";    limit = "3/m"; on_redis_down = "open"; },
  { name = "recover"; path_prefix = "/recover"; limit = "1000/h"; },
  { name = "stop";    path_prefix = "/stop";    limit = "1000/s"; }
);
CONF
    CONFS+=("$d/rl.conf")
    port=$(pick_port)
    cat > "$d/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$d/www"
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/error.log"
server.breakagelog = "$d/filter.log"
server.modules += ( "mod_fastcgi" )
fastcgi.server = (
  "/api/health/rate-limiter" => ((
    "bin-path" => "$RL_FILTER -c $d/rl.conf",
    "socket" => "$d/admin.sock",
    "mode" => "responder",
    "check-local" => "disable",
    "max-procs" => 1
  )),
  "/" => ((
    "bin-path" => "$RL_FILTER -c $d/rl.conf",
    "socket" => "$d/rl.sock",
    "mode" => "authorizer",
    "check-local" => "disable",
    "max-procs" => 2
  ))
)
CONF
    : > "$d/filter.log"
    # Stamp each filter log line with the time it was written (tail -F follows it at once).
    mkfifo "$d/log.fifo"
    tail -n +1 -F "$d/filter.log" > "$d/log.fifo" 2>/dev/null &
    PIDS+=("$!")
    while IFS= read -r line; do printf '%s %s\n' "$(now_ms)" "$line"; done \
        < "$d/log.fifo" > "$d/stamped.txt" &
    PIDS+=("$!")
    lighttpd -D -f "$d/lighttpd.conf" 2>>"$d/lighttpd.stderr" &
    PIDS+=("$!")
    wait_port "$port" 5 || { fail "lighttpd of pool $1 not listening on $port in 5 s"; finish; }
    LPORTS+=("$port")
}
start_pool 1
start_pool 2

# client ID COUNT INTERVAL PATH OUT: COUNT requests INTERVAL s apart, alternating pools
# (starting with pool ID % 2); one line each: "SENT_MS POOL CODE TIME_TOTAL_S".
client() {
    local id=$1 n=$2 gap=$3 path=$4 out=$5 i p t r
    for ((i = 0; i < n; i++)); do
        p=$(((id + i) % 2))
        t=$(now_ms)
        r=$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' \
            "http://127.0.0.1:${LPORTS[p]}$path?c=$id&i=$i" || echo "000 10")
        echo "$t $((p + 1)) $r" >> "$out"
        [ "$gap" = 0 ] || sleep "$gap"
    done
}
clients() { # N COUNT INTERVAL PATH OUT: N clients at once; returns when all are done
    local c pids=()
    for ((c = 0; c < $1; c++)); do client "$c" "$2" "$3" "$4" "$5" & pids+=("$!"); done
    for c in "${pids[@]}"; do wait "$c"; done
}
codes() { awk '{print $3}' "$@" | sort | uniq -c | awk '{printf "%s x %s, ", $1, $2}' | sed 's/, $//'; }
only_200_429() { ! awk '$3 != 200 && $3 != 429' "$1" | grep -q .; }
first_stamp() { # pattern, after_ms: the first stamped line in either pool matching, at or after
    cat "$T"/p1/stamped.txt "$T"/p2/stamped.txt |
        awk -v a="$2" -v re="$1" '$1 >= a && $0 ~ re {print $1}' | sort -n | head -n 1
}
wait_stamp() { # pattern, after_ms, seconds: until a matching line is stamped
    local i
    for ((i = 0; i < $3 * 20; i++)); do [ -n "$(first_stamp "$1" "$2")" ] && return 0; sleep 0.05; done
    return 1
}

# health POOL: "HTTP_CODE STATUS" of the pool's admin responder (health), e.g. "200 ok"
health() {
    local b
    b=$(curl -s --noproxy '*' --max-time 2 -w ' %{http_code}' \
        "http://127.0.0.1:${LPORTS[$1 - 1]}/api/health/rate-limiter" || true)
    echo "${b##* } $(echo "$b" | sed -n 's/^{"status":"\([a-z]*\)".*/\1/p')"
}
# health_after POOL WANT SINCE_MS: polls every 50 ms, 60 times (3 s and more); prints the ms
# since SINCE_MS when the pool's health read WANT ("503 down"), else "never (last answer)".
health_after() {
    local i h
    for ((i = 0; i < 60; i++)); do
        h=$(health "$1")
        [ "$h" = "$2" ] && { echo $(($(now_ms) - $3)); return 0; }
        sleep 0.05
    done
    echo "never ($h)"
}
for p in 1 2; do
    h=$(health "$p")
    check "pool $p: the admin responder mount answers health: $h" test "$h" = "200 ok"
done

# ---- 1: two pools, one Redis: exactly the allowance -------------------------------------------
out=$T/exact.txt
clients 4 4 0 /exact "$out"
ok1=$(awk '$2 == 1 && $3 == 200' "$out" | wc -l)
ok2=$(awk '$2 == 2 && $3 == 200' "$out" | wc -l)
check "1: 16 requests over both pools: $(codes "$out") -> exactly 10 x 200 ($ok1 via pool 1, $ok2 via pool 2)" \
    test "$((ok1 + ok2))" = 10 -a "$(awk '$3 == 429' "$out" | wc -l)" = 6
check "1: both pools were used" test "$(awk '{print $2}' "$out" | sort -u | wc -l)" = 2
check "1: the shared key is in Redis" test "$(rcli eval "return #redis.call('keys', ARGV[1])" 0 "${PREFIX}{127.0.0.1}:exact:*")" = 1

# ---- 2: Redis killed mid-burst ----------------------------------------------------------------
out=$T/kill.txt
clients 3 20 0.15 /kill "$out" &
CPID=$!
sleep 1.5
KILL_MS=$(now_ms)
{ kill -9 "$RPID"; wait "$RPID"; } 2>/dev/null || true # no "Killed" notice from bash
DOWN1=$(health_after 1 "503 down" "$KILL_MS")
DOWN2=$(health_after 2 "503 down" "$KILL_MS")
wait "$CPID"
check "2: pool 1 health \"down\" (503) ${DOWN1} ms after the kill (< 3000)" test "${DOWN1%% *}" != never
check "2: pool 2 health \"down\" (503) ${DOWN2} ms after the kill (< 3000)" test "${DOWN2%% *}" != never
check "2: 60 requests, Redis killed mid-burst: $(codes "$out"), no 5xx, only 200/429" only_200_429 "$out"
check "2: 60 answers" test "$(wc -l < "$out")" = 60
fb=$(first_stamp 'deciding from shared memory' "$KILL_MS")
FALLBACK_MS=$(( ${fb:-999999} - KILL_MS ))
check "2: \"deciding from shared memory\" logged ${FALLBACK_MS} ms after the kill (< 3000)" \
    test -n "$fb" -a "$FALLBACK_MS" -lt 3000
shm1=$(first_stamp 'backend=shm' "$KILL_MS")
SHM_MS=$(( ${shm1:-999999} - KILL_MS ))
check "2: a refusal decided by shared memory ${SHM_MS} ms after the kill (< 3000)" \
    test -n "$shm1" -a "$SHM_MS" -lt 3000
# Lines are stamped as tail -F and a shell loop read them: on a loaded machine one logged just
# before the kill may be stamped a few hundred ms after it.
check "2: no refusal by Redis after the kill" test -z "$(first_stamp 'backend=redis' "$((KILL_MS + 1000))")"
after=$(awk -v k="$KILL_MS" '$1 > k && $3 == 200' "$out" | wc -l)
check "2: admissions continue after the kill ($after x 200)" test "$after" -ge 1
check "2: the filters say why" grep -q 'deciding from shared memory until Redis answers again: redis' "$T/p1/filter.log" "$T/p2/filter.log"

# ---- 5: on_redis_down closed / open while Redis is down ------------------------------------------
out=$T/closed.txt
client 0 6 0 /closed "$out"
check "5: \"closed\" while Redis is down: $(codes "$out") (all 429)" test "$(awk '$3 == 429' "$out" | wc -l)" = 6
h=$T/closed.h
hcurl -o /dev/null -D "$h" "http://127.0.0.1:${LPORTS[0]}/closed" >/dev/null
check "5: \"closed\" 429 carries Retry-After >= 1 ($(hdr "$h" Retry-After))" test "$(hdr "$h" Retry-After)" -ge 1
check "5: \"closed\" refusals logged as backend=fail-closed" grep -q 'rule="closed".*backend=fail-closed' "$T/p1/filter.log"
out=$T/open.txt
client 0 8 0 /open "$out"
check "5: \"open\" while Redis is down: $(codes "$out") (8 x 200 beyond its limit of 3)" test "$(awk '$3 == 200' "$out" | wc -l)" = 8

# ---- 3: Redis restarted on the same port --------------------------------------------------------
START_MS=$(now_ms)
start_redis
UP1=$(health_after 1 "200 ok" "$START_MS")
UP2=$(health_after 2 "200 ok" "$START_MS")
check "3: pool 1 health \"ok\" (200) ${UP1} ms after the restart (< 3000)" test "${UP1%% *}" != never
check "3: pool 2 health \"ok\" (200) ${UP2} ms after the restart (< 3000)" test "${UP2%% *}" != never
( for ((i = 0; i < 60; i++)); do
      curl -s --noproxy '*' --max-time 5 -o /dev/null "http://127.0.0.1:${LPORTS[i % 2]}/recover?i=$i" || true
      sleep 0.05
  done ) &
RECOVER_PID=$!
PIDS+=("$RECOVER_PID")
KEY_MS=""
for ((i = 0; i < 500; i++)); do
    if [ "$(rcli eval "return #redis.call('keys', ARGV[1])" 0 "${PREFIX}{127.0.0.1}:recover:*" 2>/dev/null)" = 1 ]; then KEY_MS=$(now_ms); break; fi
    sleep 0.02
done
KEY_AFTER=$(( ${KEY_MS:-999999} - START_MS ))
check "3: a new key in Redis ${KEY_AFTER} ms after the restart (< 3000)" test -n "$KEY_MS" -a "$KEY_AFTER" -lt 3000
wait_stamp 'Redis answers again' "$START_MS" 5 || true
ra=$(first_stamp 'Redis answers again' "$START_MS")
RECOVERY_MS=$(( ${ra:-999999} - START_MS ))
check "3: \"Redis answers again\" logged ${RECOVERY_MS} ms after the restart (< 3000)" \
    test -n "$ra" -a "$RECOVERY_MS" -lt 3000
stop_pid "$RECOVER_PID"
wait_port "$RPORT" 5 || true

# ---- 4: Redis paused (SIGSTOP) during a burst ---------------------------------------------------
out=$T/stop.txt
clients 3 20 0.15 /stop "$out" &
CPID=$!
sleep 0.8
STOP_MS=$(now_ms)
kill -STOP "$RPID"
sleep 4
kill -CONT "$RPID"
wait "$CPID"
check "4: 60 requests, Redis paused 4 s: $(codes "$out"), only 200/429" only_200_429 "$out"
read -r MAX_S P99_S < <(awk '{print $4}' "$out" | sort -g |
    awk '{v[NR] = $1} END {i = int(NR * 0.99 + 0.999); print v[NR], v[i]}')
MAX_MS=$(awk -v s="$MAX_S" 'BEGIN {printf "%d", s * 1000}')
P99_MS=$(awk -v s="$P99_S" 'BEGIN {printf "%d", s * 1000}')
check "4: slowest request while paused ${MAX_MS} ms (< 3500, held for the 4 s pause otherwise; p99 ${P99_MS} ms)" test "$MAX_MS" -lt 3500
check "4: the pause was seen (\"deciding from shared memory\" after the SIGSTOP)" \
    test -n "$(first_stamp 'deciding from shared memory' "$STOP_MS")"

for p in 1 2; do
    check "pool $p: no sanitizer report in the filter's log" no_sanitizer_report "$T/p$p/filter.log"
done
echo "FIGURES: admitted per pool (10/m, 16 requests): pool 1 $ok1, pool 2 $ok2, total $((ok1 + ok2))"
echo "FIGURES: time to fallback after SIGKILL: log ${FALLBACK_MS} ms, first backend=shm refusal ${SHM_MS} ms; time to recovery after restart: new key ${KEY_AFTER} ms, log ${RECOVERY_MS} ms"
echo "FIGURES: health (admin responder) after SIGKILL: \"down\" in pool 1 ${DOWN1} ms, pool 2 ${DOWN2} ms; after restart: \"ok\" in pool 1 ${UP1} ms, pool 2 ${UP2} ms"
echo "FIGURES: latency while Redis paused (60 requests): max ${MAX_MS} ms, p99 ${P99_MS} ms"
finish
