#!/usr/bin/env bash
# test_redis_sentinel.sh -- a master, a replica and 3 sentinels behind a lighttpd pool
#
# redis-server master M and replica R (--replicaof M), three sentinels (redis-server FILE
# --sentinel, quorum 2, down-after 1000 ms, requirepass: they answer nothing before AUTH) on
# 127.0.0.1; one lighttpd pool (authorizer, 2 filter processes) with redis.sentinels = the
# three, redis.master_name and redis.sentinel_password; a second pool (responder, 1 process,
# same configuration) that never decides serves the admin stats and metrics. Every rule is
# on_redis_down = "closed": a 200 was decided by Redis, never by a fallback.
#   0 auth      a pool whose sentinel_password is wrong, and one without it: every request
#               refused (on_redis_down "closed"), the log says "auth failed" (WRONGPASS) or
#               NOAUTH, and never holds the passwords
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
#   6 figures   the stats pool (which never decided) reads the pool's: after the switch the
#               current master is R with a change counted; after the kill it is M again, 2+
#               changes with the time of the last, M and R rows of kind "sentinel" with
#               decisions, R a "former master" with failures and the time of its last error;
#               /metrics has ratelimit_redis_sentinel_master{node=M} 1 and the changes
# FIGURE lines: time from the kill to the first decision on the new master, and the units lost.
set -euo pipefail
NAME=test_redis_sentinel
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli curl

scli() { local p=$1; shift; timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"; }
SPW="sent-$RUN_ID-pw"
sencli() { REDISCLI_AUTH=$SPW scli "$@"; } # a sentinel: AUTH first

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
requirepass $SPW
sentinel sentinel-pass $SPW
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
        n=$(sencli "$p" SENTINEL master mymaster 2>/dev/null |
            awk 'prev == "num-slaves" || prev == "num-other-sentinels" {s += $1} {prev = $1} END {print s + 0}')
        [ "$n" = 3 ] && ok=$((ok + 1))
    done
    [ "$ok" = 4 ] && { ready=1; break; }
    sleep 0.1
done
[ "$ready" = 1 ] || { fail "the sentinels did not see the replica and each other in 30 s"; finish; }

PREFIX="rltest:$RUN_ID:"
D="$T/pool"
mkdir -p "$D/www"
for f in s k f; do echo "$f" > "$D/www/$f"; done
seeds=""
for p in "${SPORTS[@]}"; do seeds+="${seeds:+, }\"127.0.0.1:$p\""; done
cat > "$T/rl.conf" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-sentinel"; capacity = 1000; };
redis: { enabled = true; sentinels = [ $seeds ]; master_name = "mymaster"; prefix = "$PREFIX";
         sentinel_password = "$SPW";
         connect_timeout_ms = 500; command_timeout_ms = 1000;
         breaker_failures = 1000; };
rules = (
  { name = "s"; path_prefix = "/s"; key = "header:X-User"; limit = "5/h";    on_redis_down = "closed"; },
  { name = "k"; path_prefix = "/k"; key = "header:X-User"; limit = "10/h";   on_redis_down = "closed"; },
  { name = "f"; path_prefix = "/f"; key = "header:X-User"; limit = "1000/h"; on_redis_down = "closed"; }
);
CONF
CONFS+=("$T/rl.conf")
conf_ok "$T/rl.conf"

# ---- 0 auth: a wrong sentinel password, and none ----------------------------------------------
BADPW="sent-$RUN_ID-wrong"
for v in wrong none; do
    mkdir -p "$T/$v/www"; echo s > "$T/$v/www/s"
    pw=""; [ "$v" = none ] || pw="sentinel_password = \"$BADPW\";"
    sed -e "s/sentinel_password = \"$SPW\";/$pw/" -e "s/-sentinel\"/-sentinel-$v\"/" \
        "$T/rl.conf" > "$T/$v/rl.conf"
    CONFS+=("$T/$v/rl.conf")
    start_pool "$T/$v" authorizer "$T/$v/rl.conf" 1
    codes=""
    for i in 1 2 3; do codes+="$(hcurl -o /dev/null -H "X-User: w1" "http://127.0.0.1:$LPORT/s") "; done
    check "auth $v: every request refused by on_redis_down closed ($codes)" [ "$codes" = "429 429 429 " ]
done
check "auth wrong: the log says the sentinel refused the password" \
    grep -q "sentinel 127.0.0.1:[0-9]*: auth failed: WRONGPASS" "$T/wrong/filter.log"
check "auth none: the log says the sentinel wants AUTH" \
    grep -q "sentinel 127.0.0.1:[0-9]*: NOAUTH .*(set redis.sentinel_password)" "$T/none/filter.log"
check "auth: no log holds a password" bash -c '! cat "$3"/{wrong,none}/{filter,error}.log "$3"/{wrong,none}/lighttpd.stderr 2>/dev/null | grep -qF -e "$1" -e "$2"' _ "$SPW" "$BADPW" "$T"

start_pool "$T/spool" responder "$T/rl.conf" 1
SPOOL=$LPORT
start_pool "$D" authorizer "$T/rl.conf"
req() { hcurl -o /dev/null -H "X-User: $2" "http://127.0.0.1:$LPORT$1"; }
SH=/api/health/rate-limiter/stats
sjson() { # expression over the stats pool's JSON stats as j (python): prints its value
    hcurl -o "$T/stats.json" "http://127.0.0.1:$SPOOL$SH" >/dev/null
    python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
node = lambda p: ([n for n in j["redis"]["nodes"] if n["node"] == "127.0.0.1:" + p] or [{}])[0]
print(eval(sys.argv[2]))' "$T/stats.json" "$1" 2>/dev/null || echo "?"
}
count() { # path user n: 200s out of n requests
    local n=0 i
    for ((i = 0; i < $3; i++)); do [ "$(req "$1" "$2")" = 200 ] && n=$((n + 1)); done
    echo "$n"
}

# ---- 1 exact, 2 before -----------------------------------------------------------------------
n=$(count /s s1 7)
check "exact: 5 of 7 admitted through the sentinels' master (got $n)" [ "$n" = 5 ]
check "exact: the key is on the master" \
    [ "$(scli "$MPORT" --scan --pattern "${PREFIX}*:s:*" | wc -l)" -ge 1 ]
n=$(count /k k1 6)
check "before: 6 of 6 admitted (got $n)" [ "$n" = 6 ]
for ((i = 0; i < 50; i++)); do
    [ "$(scli "$RPORT" --scan --pattern "${PREFIX}*:k:*" | wc -l)" -ge 1 ] && break
    sleep 0.1
done

# ---- 3 switch, 4 kill ------------------------------------------------------------------------
load() { # file: a request of f1 every ~50 ms until $T/stop exists
    rm -f "$T/stop"
    while [ ! -e "$T/stop" ]; do echo "$(now_ms) $(req /f f1)"; sleep 0.05; done >"$1"
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
sencli "${SPORTS[0]}" SENTINEL FAILOVER mymaster >/dev/null
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
got=$(sjson 'j["redis"]["sentinel"]["master"] + " " + str(j["redis"]["sentinel"]["master_changes"])')
check "figures: after the switch the pool's master is R with a change counted ($got)" \
    [ "${got%% *}" = "127.0.0.1:$RPORT" -a "${got##* }" -ge 1 ]

# 4: the new master killed: the sentinels promote the old one back.
for ((i = 0; i < 300; i++)); do
    scli "$MPORT" INFO replication | grep -q 'master_link_status:up' &&
        [ "$(sencli "${SPORTS[0]}" SENTINEL replicas mymaster | grep -c "^127.0.0.1:$MPORT$")" -ge 1 ] && break
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
n=$(count /k k1 6)
check "after: exactly 4 of 6 admitted for k1 (10/h, 6 spent before two failovers: none forgotten; got $n)" \
    [ "$n" = 4 ]
echo "FIGURE sentinel: units forgotten by the failover: $((n - 4 > 0 ? n - 4 : 0)) (k1 admitted $n of the 4 left)"

# ---- 6 figures -------------------------------------------------------------------------------
got=$(sjson 'j["redis"]["sentinel"]["master"] + " " + str(j["redis"]["sentinel"]["master_changes"]) + " " + str(j["redis"]["sentinel"]["master_changed_ms"])')
read -r gm gc gt <<<"$got"
check "figures: after the kill the pool's master is M again, 2+ changes, the last one timed ($got)" \
    [ "$gm" = "127.0.0.1:$MPORT" -a "${gc:-0}" -ge 2 -a "${gt:-0}" -gt 0 ]
got=$(sjson 'node("'"$MPORT"'").get("kind") + " " + node("'"$MPORT"'").get("role") + " " + str(node("'"$MPORT"'").get("decisions"))')
read -r k r nm <<<"$got"
check "figures: M's row: sentinel, master, decisions > 0 ($got)" [ "$k $r" = "sentinel master" -a "${nm:-0}" -gt 0 ]
got=$(sjson 'node("'"$RPORT"'").get("role") + "|" + str(node("'"$RPORT"'").get("decisions")) + "|" + str(node("'"$RPORT"'").get("failures")) + "|" + str(node("'"$RPORT"'").get("last_error_ms"))')
IFS='|' read -r r n f e <<<"$got"
check "figures: R's row: former master, decisions > 0, failures > 0, last error timed ($got)" \
    [ "$r" = "former master" -a "${n:-0}" -gt 0 -a "${f:-0}" -gt 0 -a "${e:-0}" -gt 0 ]
hcurl -o "$T/stats.prom" "http://127.0.0.1:$SPOOL/metrics" >/dev/null
check "figures: metrics name M the sentinels' master" \
    grep -qx "ratelimit_redis_sentinel_master{node=\"127.0.0.1:$MPORT\"} 1" "$T/stats.prom"
check "figures: metrics count the master changes ($gc)" \
    grep -qx "ratelimit_redis_sentinel_master_changes_total $gc" "$T/stats.prom"
echo "FIGURE sentinel: the pool saw $gc master changes; decisions: M $nm, R $n (R failed $f)"
check "no sanitizer report in the filter's log" no_sanitizer_report "$D/filter.log"
check "no sanitizer report in the stats pool's log" no_sanitizer_report "$T/spool/filter.log"
finish
