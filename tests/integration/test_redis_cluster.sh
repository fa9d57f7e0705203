#!/usr/bin/env bash
# test_redis_cluster.sh -- a real 3-master Redis Cluster behind a lighttpd pool
#
# Three redis-server --cluster-enabled yes joined by redis-cli --cluster create (lib/
# cluster.sh), one lighttpd pool (authorizer, 2 filter processes) with redis.cluster = the
# three seeds. Every rule is on_redis_down = "closed", so a request Redis did not decide is
# refused, never admitted by a fallback: every 200 below was decided by the cluster.
#   1 exact     users u1..u6 (rule keyed by X-User, 5/h), 7 requests each: exactly 5 x 200
#               per user, their keys on at least 2 masters
#   2 refund    a request matching two rules in two slots (team by X-Team 5/h, user by
#               X-User 2/h; their slots differ): users a1, a2, a3 of team T1, 4 requests each
#               in turn: 2, 2 and 1 admitted -- 5 in all, the team's limit exactly. Without the
#               refund of the team's reservation by a user's refusal, a1's two refused
#               requests would spend two of the team's five; the refund runs as a function
#               (its library rl_refund_... is on a master after it)
#   3 race      team T2, users b1..b6, 4 requests each, 24 at once: at most 5 admitted in
#               all and at most 2 per user (reserve-then-confirm never admits past a limit)
#   4 reshard   users r1..r3 whose slots are among the first 1000 of the first master; 10
#               requests each (limit 20/h), then 1000 slots moved to the second master
#               (redis-cli --cluster reshard) while each sends a request every ~50 ms: at most
#               20 admitted per user over both phases (the state moved with the slots: a lost
#               state would admit 20 more), and after it their keys are on the second master
#   5 kill      the third master SIGKILLed (it has no replica): for ~3 s, every ~100 ms, 5
#               requests of a client whose key it served, then one of a client whose key
#               another master serves: the first is refused every time (on_redis_down
#               "closed": no Redis decided), the second admitted every time -- the dead
#               master's breaker is its own, the other masters go on deciding
#   6 nodes     per-node figures are the pool's (the shared statistics segment): the
#               authorizer pool (2 processes) decides users n0..n29 (/d), and a second pool
#               (responder, 1 process, same configuration) that never decides reads them: its
#               admin stats list the 3 masters in redis.nodes, each with decisions > 0 and its
#               breaker closed, their decisions grew by exactly 30, and /metrics has
#               ratelimit_redis_node_decisions_total > 0 for each; after the kill (5) the dead
#               master's breaker is "open" there (with the time it opened and of its last
#               error) and ratelimit_redis_node_breaker_open 1, the others' 0
# Prints FIGURE lines: admissions per scenario, the reshard's requests and duration.
set -euo pipefail
NAME=test_redis_cluster
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
source "$(dirname "$0")/lib/cluster.sh"
need lighttpd redis-server redis-cli curl xargs

start_cluster
redis_pool cluster "u t r d" "cluster = [ $(cluster_seeds) ];" '
  { name = "user";  path_prefix = "/u"; key = "header:X-User"; limit = "5/h";  on_redis_down = "closed"; },
  { name = "team";  path_prefix = "/t"; key = "header:X-Team"; limit = "5/h";  on_redis_down = "closed"; },
  { name = "tuser"; path_prefix = "/t"; key = "header:X-User"; limit = "2/h";  on_redis_down = "closed"; },
  { name = "rs";    path_prefix = "/r"; key = "header:X-User"; limit = "20/h"; on_redis_down = "closed"; },
  { name = "d";     path_prefix = "/d"; key = "header:X-User"; limit = "1000/h"; on_redis_down = "closed"; }'
MAINPORT=$LPORT
start_pool "$T/spool" responder "$T/rl.conf" 1
SPORT=$LPORT
LPORT=$MAINPORT

req() { # path, user, [team]: prints the status
    local h=(-H "X-User: $2")
    [ -z "${3:-}" ] || h+=(-H "X-Team: $3")
    hcurl -o /dev/null "${h[@]}" "http://127.0.0.1:$LPORT$1"
}

# ---- 1 exact ---------------------------------------------------------------------------------
cluster_users_exact exact
echo "FIGURE exact: 6 users x 7 requests, 5 admitted each, keys on $MASTERS masters"

# ---- 2 refund --------------------------------------------------------------------------------
for u in a1 a2 a3; do
    [ "$(slot_of "$u")" != "$(slot_of T1)" ] || { fail "refund: $u and T1 share a slot"; finish; }
done
got=""
total=0
for u in a1 a2 a3; do
    n=0
    for i in 1 2 3 4; do [ "$(req /t "$u" T1)" = 200 ] && n=$((n + 1)); done
    got+="$n "
    total=$((total + n))
done
check "refund: a1, a2, a3 admitted 2 2 1 (got ${got% }): refused requests gave back the team's share" \
    [ "${got% }" = "2 2 1" ]
echo "FIGURE refund: team 5/h over 3 users (2/h each) in two slots: admitted ${got% } = $total"
# The refunds ran as a function (FCALL): its library is on the master that gave them back.
libs=0
for p in "${CPORTS[@]}"; do
    ccli "$p" FUNCTION LIST LIBRARYNAME 'rl_refund_*' | grep -q '^rl_refund_' && libs=$((libs + 1))
done
check "refund: the refund function's library loaded on $libs master(s) (>= 1)" [ "$libs" -ge 1 ]

# ---- 3 race ----------------------------------------------------------------------------------
: > "$T/race.out"
for u in b1 b2 b3 b4 b5 b6; do for i in 1 2 3 4; do echo "$u"; done; done |
    xargs -P 12 -I{} bash -c 'echo "{} $(curl -s --noproxy "*" --max-time 10 -o /dev/null \
        -w "%{http_code}" -H "X-User: {}" -H "X-Team: T2" "http://127.0.0.1:'"$LPORT"'/t")"' \
        >>"$T/race.out"
total=$(grep -c ' 200$' "$T/race.out" || true)
answered=$(grep -cE ' (200|429)$' "$T/race.out" || true)
worst=$(awk '$2 == 200 {n[$1]++} END {m = 0; for (u in n) if (n[u] > m) m = n[u]; print m}' \
    "$T/race.out")
check "race: 24 answered 200 or 429 (got $answered)" [ "$answered" = 24 ]
check "race: at most 5 admitted for the team (got $total), at least 1" \
    [ "$total" -le 5 -a "$total" -ge 1 ]
check "race: at most 2 admitted per user (most: $worst)" [ "$worst" -le 2 ]
echo "FIGURE race: 24 concurrent requests, team 5/h, users 2/h: $total admitted, most per user $worst"

# ---- 4 reshard -------------------------------------------------------------------------------
# The first master's lowest slots are the ones a reshard of 1000 moves.
src=""
for p in "${CPORTS[@]}"; do
    if ccli "$p" CLUSTER NODES | grep myself | grep -qE ' 0-[0-9]+'; then src=$p; fi
done
[ -n "$src" ] || { fail "reshard: no node serves slot 0"; finish; }
for p in "${CPORTS[@]}"; do [ "$p" = "$src" ] || { dst=$p; break; }; done
users=()
for ((i = 0; i < 400 && ${#users[@]} < 3; i++)); do
    s=$(slot_of "r$i")
    [ "$s" -ge 1000 ] || users+=("r$i")
done
[ "${#users[@]}" = 3 ] || { fail "reshard: no 3 users in slots 0..999"; finish; }
for u in "${users[@]}"; do for i in $(seq 10); do echo "$u $(req /r "$u")"; done; done >"$T/rs.out"
load() { # user: a request every ~50 ms until $T/rs.stop exists
    while [ ! -e "$T/rs.stop" ]; do echo "$1 $(req /r "$1")"; sleep 0.05; done >>"$T/rs.$1"
}
lpids=()
for u in "${users[@]}"; do load "$u" & lpids+=($!); PIDS+=($!); done
t0=$(now_ms)
rs=0
timeout 60 redis-cli --cluster reshard "127.0.0.1:$src" --cluster-from "$(node_id "$src")" \
    --cluster-to "$(node_id "$dst")" --cluster-slots 1000 --cluster-yes >"$T/reshard.out" 2>&1 || rs=$?
t1=$(now_ms)
sleep 1 # and a little load after it
touch "$T/rs.stop"
for p in "${lpids[@]}"; do wait "$p" 2>/dev/null || true; done
check "reshard: redis-cli --cluster reshard succeeded ($rs)" [ "$rs" = 0 ]
over=""
sent=0
for u in "${users[@]}"; do
    cat "$T/rs.$u" >>"$T/rs.out"
    n=$(grep -c "^$u 200$" "$T/rs.out" || true)
    sent=$((sent + $(grep -c "^$u " "$T/rs.out")))
    [ "$n" -le 20 ] || over+=" $u:$n"
    moved=$(ccli "$dst" CLUSTER COUNTKEYSINSLOT "$(slot_of "$u")")
    check "reshard: $u's key moved to the second master ($moved)" [ "$moved" -ge 1 ]
    echo "FIGURE reshard: $u admitted $n of $(grep -c "^$u " "$T/rs.out") (limit 20/h)"
done
check "reshard: at most 20 admitted per user over the reshard${over:+ (got$over)}" [ -z "$over" ]
echo "FIGURE reshard: 1000 slots moved in $((t1 - t0)) ms under load, $sent requests"

# ---- 6 nodes (before the kill) --------------------------------------------------------------
SH=/api/health/rate-limiter/stats
jnode() { # stats file, port, field: the field of node 127.0.0.1:PORT in redis.nodes ("" if none)
    python3 -c 'import json,sys
for n in json.load(open(sys.argv[1]))["redis"]["nodes"]:
    if n["node"] == "127.0.0.1:" + sys.argv[2]: print(n[sys.argv[3]])' "$@" 2>/dev/null || true
}
nsum() { # stats file: the decisions of the cluster masters in redis.nodes, summed
    python3 -c 'import json,sys
print(sum(n["decisions"] for n in json.load(open(sys.argv[1]))["redis"]["nodes"] if n["kind"] == "cluster"))' "$1" 2>/dev/null || echo -1
}
hcurl -o "$T/nodes0.json" "http://127.0.0.1:$SPORT$SH" >/dev/null
for i in $(seq 0 29); do hcurl -o /dev/null -H "X-User: n$i" "http://127.0.0.1:$LPORT/d" >/dev/null; done
hcurl -o "$T/nodes.json" "http://127.0.0.1:$SPORT$SH" >/dev/null
hcurl -o "$T/nodes.prom" "http://127.0.0.1:$SPORT/metrics" >/dev/null
for p in "${CPORTS[@]}"; do
    nd=$(jnode "$T/nodes.json" "$p" decisions)
    check "nodes: stats list master $p with decisions > 0 (${nd:-absent}), role master, breaker closed" \
        [ "${nd:-0}" -gt 0 -a "$(jnode "$T/nodes.json" "$p" role) $(jnode "$T/nodes.json" "$p" breaker)" = "master closed" ]
    mv=$(sed -n "s/^ratelimit_redis_node_decisions_total{node=\"127.0.0.1:$p\"} //p" "$T/nodes.prom")
    check "nodes: metrics decisions of $p > 0 (${mv:-absent})" [ "${mv:-0}" -gt 0 ]
done
d0=$(nsum "$T/nodes0.json")
d1=$(nsum "$T/nodes.json")
check "nodes: a pool that never decided shows the other pool's 30 decisions ($d0 -> $d1)" \
    [ "$d0" -ge 0 -a $((d1 - d0)) = 30 ]
echo "FIGURE nodes: 30 decisions of a 2-process pool read from another process: $d0 -> $d1"

# ---- 5 kill ----------------------------------------------------------------------------------
victim=""
for i in 0 1 2; do
    [ "${CPORTS[i]}" = "$src" ] || [ "${CPORTS[i]}" = "$dst" ] || { victim=${CPORTS[i]}; vpid=${CPIDS[i]}; }
done
dead=""
live=""
for ((i = 0; i < 200 && (${#dead} == 0 || ${#live} == 0); i++)); do
    s=$(slot_of "d$i")
    if serves "$victim" "$s"; then dead=${dead:-d$i}; else live=${live:-d$i}; fi
done
[ -n "$dead" ] && [ -n "$live" ] || { fail "kill: no users on and off the victim"; finish; }
check "kill: $dead admitted before the kill" [ "$(req /d "$dead")" = 200 ]
kill -9 "$vpid"
t0=$(now_ms)
: > "$T/kill.out"
while [ $(($(now_ms) - t0)) -lt 3000 ]; do
    # Five failures in a row, then the other client at once: a breaker for the whole
    # process (3 failures) would be open and refuse it.
    for i in 1 2 3 4 5; do echo "$dead $(req /d "$dead")" >>"$T/kill.out"; done
    echo "$live $(req /d "$live")" >>"$T/kill.out"
    sleep 0.1
done
nd=$(grep -c "^$dead " "$T/kill.out")
nd429=$(grep -c "^$dead 429$" "$T/kill.out" || true)
nl=$(grep -c "^$live " "$T/kill.out")
nl200=$(grep -c "^$live 200$" "$T/kill.out" || true)
check "kill: the dead master's client refused every time ($nd429 of $nd)" [ "$nd429" = "$nd" ]
check "kill: the other masters' client admitted every time ($nl200 of $nl)" [ "$nl200" = "$nl" ]
open=""
for i in $(seq 20); do
    hcurl -o /dev/null -H "X-User: $dead" "http://127.0.0.1:$LPORT/d" >/dev/null
    hcurl -o "$T/nodes.json" "http://127.0.0.1:$SPORT$SH" >/dev/null
    hcurl -o "$T/nodes.prom" "http://127.0.0.1:$SPORT/metrics" >/dev/null
    if [ "$(jnode "$T/nodes.json" "$victim" breaker)" = open ] &&
        grep -qx "ratelimit_redis_node_breaker_open{node=\"127.0.0.1:$victim\"} 1" "$T/nodes.prom"; then
        open=1
        break
    fi
done
check "nodes: the dead master's breaker open in stats and metrics (failures $(jnode "$T/nodes.json" "$victim" failures))" [ -n "$open" ]
check "nodes: the dead master's breaker change and last error have times" \
    [ "$(jnode "$T/nodes.json" "$victim" breaker_changed_ms)" -gt 0 -a "$(jnode "$T/nodes.json" "$victim" last_error_ms)" -gt 0 ]
check "nodes: the live masters' breakers closed" bash -c 'for p in "${@:2}"; do [ "$p" = "$1" ] || grep -qx "ratelimit_redis_node_breaker_open{node=\"127.0.0.1:$p\"} 0" "'"$T/nodes.prom"'" || exit 1; done' _ "$victim" "${CPORTS[@]}"
check "kill: the filter names the dead master" grep -q "127.0.0.1:$victim" "$D/filter.log"
echo "FIGURE kill: a master without replica SIGKILLed: its client refused $nd429/$nd, another admitted $nl200/$nl over 3 s"
check "no sanitizer report in the filter's log" no_sanitizer_report "$D/filter.log"
check "no sanitizer report in the stats pool's log" no_sanitizer_report "$T/spool/filter.log"
finish
