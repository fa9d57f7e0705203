#!/usr/bin/env bash
# test_redis_sentinel.sh -- a master, a replica and 3 sentinels behind a lighttpd pool
#
# redis-server master M and replica R (--replicaof M), three sentinels (redis-server FILE
# --sentinel, quorum 2, down-after 1000 ms) on 127.0.0.1; one lighttpd pool (authorizer, 2
# filter processes) with redis.sentinels = the three and redis.master_name. Every rule is
# on_redis_down = "closed": a 200 was decided by Redis, never by a fallback.
#   1 exact     user s1, 7 requests against 5/h: exactly 5 admitted, the key on M
#   2 before    user k1, 6 requests against 10/h: 6 admitted (replicated to R)
#   3 switch    SENTINEL FAILOVER while user f1 sends a request every ~50 ms (1000/h): R
#               becomes master, M a replica (alive; it closes its clients' connections as it
#               turns replica, so the filter reconnects and asks the sentinels again);
#               decisions (a 200) on R after the switch within 30 s
#   4 kill      R (now the master) SIGKILLed under the same load, once M is its replica in
#               sync: the sentinels promote M; decisions come back within 30 s, on M
#   5 after     user k1 again, 6 requests: exactly 4 admitted (10 - 6: nothing was forgotten
#               over the two failovers); FIGURE: what was forgotten
# FIGURE lines: time from the kill to the first decision on the new master, and the units lost.
set -euo pipefail
NAME=test_redis_sentinel
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli curl

scli() { local p=$1; shift; timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"; }

MPORT=$(pick_port)
mkdir -p "$T/m" "$T/r"
redis-server --bind 127.0.0.1 --port "$MPORT" --save "" --appendonly no --dir "$T/m" \
    --logfile "$T/m/redis.log" >/dev/null 2>&1 &
MPID=$!
PIDS+=("$MPID")
wait_port "$MPORT" 5 || { fail "master not listening on $MPORT"; finish; }
RPORT=$(pick_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$T/r" \
    --logfile "$T/r/redis.log" --replicaof 127.0.0.1 "$MPORT" >/dev/null 2>&1 &
RPID_R=$!
PIDS+=($!)
wait_port "$RPORT" 5 || { fail "replica not listening on $RPORT"; finish; }

SPORTS=()
for i in 1 2 3; do
    p=$(pick_port)
    mkdir -p "$T/s$i"
    cat > "$T/s$i/sentinel.conf" <<CONF
bind 127.0.0.1
port $p
dir $T/s$i
logfile $T/s$i/sentinel.log
sentinel monitor mymaster 127.0.0.1 $MPORT 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
CONF
    redis-server "$T/s$i/sentinel.conf" --sentinel >/dev/null 2>&1 &
    PIDS+=($!)
    SPORTS+=("$p")
    wait_port "$p" 5 || { fail "sentinel not listening on $p"; finish; }
done
# Ready when the replica is in sync and every sentinel knows the replica and the 2 others.
ready=0
for ((i = 0; i < 300; i++)); do
    ok=0
    scli "$RPORT" INFO replication | grep -q 'master_link_status:up' && ok=1
    for p in "${SPORTS[@]}"; do
        n=$(scli "$p" SENTINEL master mymaster 2>/dev/null |
            awk 'prev == "num-slaves" || prev == "num-other-sentinels" {s += $1} {prev = $1} END {print s + 0}')
        [ "$n" = 3 ] && ok=$((ok + 1))
    done
    [ "$ok" = 4 ] && { ready=1; break; }
    sleep 0.1
done
[ "$ready" = 1 ] || { fail "the sentinels did not see the replica and each other in 30 s"; finish; }

seeds=""
for p in "${SPORTS[@]}"; do seeds+="${seeds:+, }\"127.0.0.1:$p\""; done
redis_pool sentinel "s k f" "sentinels = [ $seeds ]; master_name = \"mymaster\"; breaker_failures = 1000;" '
  { name = "s"; path_prefix = "/s"; key = "header:X-User"; limit = "5/h";    on_redis_down = "closed"; },
  { name = "k"; path_prefix = "/k"; key = "header:X-User"; limit = "10/h";   on_redis_down = "closed"; },
  { name = "f"; path_prefix = "/f"; key = "header:X-User"; limit = "1000/h"; on_redis_down = "closed"; }'

# ---- 1 exact, 2 before -----------------------------------------------------------------------
n=$(user_count /s s1 7)
check "exact: 5 of 7 admitted through the sentinels' master (got $n)" [ "$n" = 5 ]
check "exact: the key is on the master" \
    [ "$(scli "$MPORT" --scan --pattern "${PREFIX}*:s:*" | wc -l)" -ge 1 ]
n=$(user_count /k k1 6)
check "before: 6 of 6 admitted (got $n)" [ "$n" = 6 ]
for ((i = 0; i < 50; i++)); do
    [ "$(scli "$RPORT" --scan --pattern "${PREFIX}*:k:*" | wc -l)" -ge 1 ] && break
    sleep 0.1
done

# ---- 3 switch, 4 kill ------------------------------------------------------------------------
load() { # file: a request of f1 every ~50 ms until $T/stop exists
    rm -f "$T/stop"
    while [ ! -e "$T/stop" ]; do echo "$(now_ms) $(user_req /f f1)"; sleep 0.05; done >"$1"
}
role() { scli "$1" ROLE 2>/dev/null | head -n 1; }
first_200_after() { # file ms: the time of the first 200 after ms, waiting up to 30 s
    local i b=""
    for ((i = 0; i < 300; i++)); do
        b=$(awk -v t="$2" '$1 > t && $2 == 200 {print $1; exit}' "$1")
        [ -n "$b" ] && break
        sleep 0.1
    done
    echo "$b"
}
stop_load() { sleep 0.5; touch "$T/stop"; wait "$1" 2>/dev/null || true; }

# 3: a switch (SENTINEL FAILOVER): the old master lives on as a replica, so the filter's
# connection to it stays up; its next script gets -READONLY, and the filter asks again.
load "$T/switch.out" &
LOADPID=$!
PIDS+=("$LOADPID")
sleep 1
tsw=$(now_ms)
scli "${SPORTS[0]}" SENTINEL FAILOVER mymaster >/dev/null
done_at=""
for ((i = 0; i < 300; i++)); do
    [ "$(role "$RPORT")" = master ] && [ "$(role "$MPORT")" = slave ] && { done_at=$(now_ms); break; }
    sleep 0.1
done
check "switch: the replica is the master and the old master a replica" [ -n "$done_at" ]
back=$(first_200_after "$T/switch.out" "${done_at:-$tsw}")
stop_load "$LOADPID"
check "switch: decisions on the new master after the switch (first 200 at ${back:-never})" \
    [ -n "$back" ]
[ -z "$back" ] || echo "FIGURE sentinel: SENTINEL FAILOVER -> roles switched in $((done_at - tsw)) ms, first decision on the new master $((back - done_at)) ms after that"
echo "FIGURE sentinel: $(wc -l < "$T/switch.out") requests during the switch, $(grep -c ' 429$' "$T/switch.out" || true) refused"

# 4: the new master killed: the sentinels promote the old one back.
for ((i = 0; i < 300; i++)); do
    scli "$MPORT" INFO replication | grep -q 'master_link_status:up' &&
        [ "$(scli "${SPORTS[0]}" SENTINEL replicas mymaster | grep -c "^127.0.0.1:$MPORT$")" -ge 1 ] && break
    sleep 0.1
done
load "$T/load.out" &
LOADPID=$!
PIDS+=("$LOADPID")
sleep 1
tkill=$(now_ms)
kill -9 "$RPID_R"
back=$(first_200_after "$T/load.out" "$tkill")
stop_load "$LOADPID"
check "kill: decisions on Redis again after the master's death (first 200 at ${back:-never})" \
    [ -n "$back" ]
[ -z "$back" ] || echo "FIGURE sentinel: master killed -> decisions on the new master in $((back - tkill)) ms (down-after-milliseconds 1000)"
check "kill: the old master is the master again" [ "$(role "$MPORT")" = master ]
check "kill: f1's decisions were written on it" \
    [ "$(scli "$MPORT" --scan --pattern "${PREFIX}*:f:*" | wc -l)" -ge 1 ]
bad=$(cat "$T/switch.out" "$T/load.out" | awk '$2 != 200 && $2 != 429' | wc -l)
check "switch and kill: every request answered 200 or 429 ($bad others)" [ "$bad" = 0 ]
echo "FIGURE sentinel: $(wc -l < "$T/load.out") requests during the kill's failover, $(grep -c ' 429$' "$T/load.out" || true) refused (on_redis_down closed)"

# ---- 5 after ---------------------------------------------------------------------------------
n=$(user_count /k k1 6)
check "after: exactly 4 of 6 admitted for k1 (10/h, 6 spent before two failovers: none forgotten; got $n)" \
    [ "$n" = 4 ]
echo "FIGURE sentinel: units forgotten by the failover: $((n - 4 > 0 ? n - 4 : 0)) (k1 admitted $n of the 4 left)"
check "no sanitizer report in the filter's log" no_sanitizer_report "$D/filter.log"
finish
