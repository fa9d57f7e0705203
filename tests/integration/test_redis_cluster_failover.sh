#!/usr/bin/env bash
# test_redis_cluster_failover.sh -- a Redis Cluster master with a replica killed under load
#
# 3 masters with one replica each (lib/cluster.sh, --cluster-replicas 1, node timeout 2 s),
# one lighttpd pool (authorizer, 2 filter processes) with all 6 nodes as seeds; rules
# on_redis_down = "closed", so each 200 was decided by the cluster.
#   1 before    a client whose key the victim master serves: 6 requests against 10/h, 6
#               admitted (replicated to the victim's replica)
#   2 failover  the victim SIGKILLed while another client of its slots sends a request every
#               ~50 ms: its replica is promoted, the router learns the new map, and decisions
#               come back (a 200 after the kill) within 30 s; its key is on the new master
#   3 after     the first client again, 6 requests: exactly 4 admitted (10 - 6: the replica had
#               the state; nothing forgotten)
# FIGURE lines: time from the kill to the first decision on the promoted replica, units lost.
set -euo pipefail
NAME=test_redis_cluster_failover
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
source "$(dirname "$0")/lib/cluster.sh"
need lighttpd redis-server redis-cli curl

start_cluster 1
redis_pool clfail "k f" "cluster = [ $(cluster_seeds) ];" '
  { name = "k"; path_prefix = "/k"; key = "header:X-User"; limit = "10/h";   on_redis_down = "closed"; },
  { name = "f"; path_prefix = "/f"; key = "header:X-User"; limit = "1000/h"; on_redis_down = "closed"; }'

# The victim: the master serving slot 0; its replica: the node whose master it is.
victim="" vpid=""
for i in "${!CPORTS[@]}"; do
    if serves "${CPORTS[i]}" 0; then victim=${CPORTS[i]}; vpid=${CPIDS[i]}; fi
done
[ -n "$victim" ] || { fail "no master serves slot 0"; finish; }
vid=$(node_id "$victim")
replica=""
for p in "${CPORTS[@]}"; do
    ccli "$p" CLUSTER NODES | grep myself | grep -q " $vid " && replica=$p
done
[ -n "$replica" ] || { fail "no replica of the victim"; finish; }
users=()
for ((i = 0; i < 200 && ${#users[@]} < 2; i++)); do
    serves "$victim" "$(slot_of "v$i")" && users+=("v$i")
done
[ "${#users[@]}" = 2 ] || { fail "no 2 users on the victim"; finish; }
ku=${users[0]} fu=${users[1]}

# ---- 1 before --------------------------------------------------------------------------------
n=$(user_count /k "$ku" 6)
check "before: 6 of 6 admitted for $ku (got $n)" [ "$n" = 6 ]
for ((i = 0; i < 50; i++)); do
    [ "$(ccli "$replica" --scan --pattern "${PREFIX}*:k:*" | wc -l)" -ge 1 ] && break
    sleep 0.1
done

# ---- 2 failover ------------------------------------------------------------------------------
load() {
    while [ ! -e "$T/stop" ]; do echo "$(now_ms) $(user_req /f "$fu")"; sleep 0.05; done >"$T/load.out"
}
load &
LOADPID=$!
PIDS+=("$LOADPID")
sleep 1
tkill=$(now_ms)
kill -9 "$vpid"
back=""
for ((i = 0; i < 300; i++)); do
    back=$(awk -v t="$tkill" '$1 > t && $2 == 200 {print $1; exit}' "$T/load.out")
    [ -n "$back" ] && break
    sleep 0.1
done
sleep 0.5
touch "$T/stop"
wait "$LOADPID" 2>/dev/null || true
check "failover: decisions on the cluster again after the master's death (first 200 at ${back:-never})" \
    [ -n "$back" ]
[ -z "$back" ] || echo "FIGURE cluster failover: master killed -> decisions on its promoted replica in $((back - tkill)) ms (cluster-node-timeout 2000)"
check "failover: the replica is a master now" \
    bash -c "timeout 5 redis-cli -h 127.0.0.1 -p $replica ROLE | head -n 1 | grep -qx master"
check "failover: $fu's decisions were written on the promoted replica" \
    [ "$(ccli "$replica" --scan --pattern "${PREFIX}*:f:*" | wc -l)" -ge 1 ]
bad=$(awk '$2 != 200 && $2 != 429' "$T/load.out" | wc -l)
check "failover: every request answered 200 or 429 ($bad others)" [ "$bad" = 0 ]
echo "FIGURE cluster failover: $(wc -l < "$T/load.out") requests during it, $(grep -c ' 429$' "$T/load.out" || true) refused (on_redis_down closed)"

# ---- 3 after ---------------------------------------------------------------------------------
n=$(user_count /k "$ku" 6)
check "after: exactly 4 of 6 admitted for $ku (10/h, 6 spent before the failover: none forgotten; got $n)" \
    [ "$n" = 4 ]
echo "FIGURE cluster failover: units forgotten: $((n - 4 > 0 ? n - 4 : 0)) ($ku admitted $n of the 4 left)"
check "no sanitizer report in the filter's log" no_sanitizer_report "$D/filter.log"
finish
