#!/usr/bin/env bash
# test_sliding_log_pools.sh -- the seed's limits as sliding logs, two lighttpd pools, one Redis
#
# One redis-server and two lighttpd instances (pools P1 and P2, authorizer, max-procs 2, each
# with its own shared-memory segment; redis.hosts = 2). The filters get RATE_LIMIT_REQUESTS=200
# and RATE_LIMIT_CHAT=100 through lighttpd's bin-environment (the file says 10/m for both),
# every rule algorithm = "sliding_log". rl-burst (scripts/burst's binary) sends each burst as
# two concurrent halves, one per pool, from the same client address (so one key), and the
# test adds the halves' admissions:
#   1 general  300 requests to /api: exactly 200 admitted in all, then 20 more: none
#   2 chat     200 requests to /chat: exactly 100 (the chat rule; each also counts for
#              nothing else: the general rule is /api)
#   3 rolling  a rule of COUNT 200 per 10 s (/roll): 120 admitted at once, 5 s later 150 sent
#              and exactly 80 admitted; once the first 120 are 10 s old (read from the sorted
#              set's scores, on Redis' clock) and the later 80 are not, 200 sent: exactly 120
#              admitted -- the log is exact per rolling period across pools
#   4 outage   redis-server killed: each pool decides from its own shared memory with this
#              host's share, 200 / 2 hosts: 150 requests per pool, exactly 100 admitted by
#              each (a bucketed log of 200 is never the fallback here: the share is 100, exact)
# Needs lighttpd, redis-server, redis-cli and python3. Takes ~20 s.
set -euo pipefail
NAME=test_sliding_log_pools
source "$(dirname "$0")/lib/lib.sh"
need lighttpd redis-server redis-cli python3
BURST=${RL_BURST:-$ROOT/build/rl-burst}
[ -x "$BURST" ] || { echo "FAIL: $BURST is not executable (make)"; exit 1; }

source "$(dirname "$0")/lib/faults.sh"
start_redis

# ---- two pools -----------------------------------------------------------------------------
PREFIX="rltest:$RUN_ID:"
LPORTS=()
pool() { # number
    local d="$T/p$1"
    mkdir -p "$d/www"
    for f in api chat roll; do echo "$f" > "$d/www/$f"; done
    cat > "$d/rl.conf" <<CONF
# written by $NAME: pool $1, its own shm segment, the Redis of every pool
shm: { name = "/rltest-$RUN_ID-p$1"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "$PREFIX"; hosts = 2;
         connect_timeout_ms = 2000; command_timeout_ms = 2000; }; # generous: exact counts in Redis
rules = (
  { name = "global"; path_prefix = "/api";  limit = "10/m";    algorithm = "sliding_log"; },
  { name = "chat";   path_prefix = "/chat"; limit = "10/m";    algorithm = "sliding_log"; },
  { name = "roll";   path_prefix = "/roll"; limit = "200/10s"; algorithm = "sliding_log"; }
);
CONF
    CONFS+=("$d/rl.conf")
    FCGI_EXTRA='"bin-environment" => ( "RATE_LIMIT_REQUESTS" => "200", "RATE_LIMIT_CHAT" => "100" ),' \
        start_pool "$d" authorizer "$d/rl.conf"
    LPORTS+=("$LPORT")
}
pool 1
pool 2

# -t: the pools' file with the seed's variables, and sliding_log at and above its bound.
rc=0
RATE_LIMIT_REQUESTS=200 RATE_LIMIT_CHAT=100 "$RL_FILTER" -t -c "$T/p1/rl.conf" >"$T/t.err" 2>&1 || rc=$?
check "-t accepts the sliding_log rules with RATE_LIMIT_REQUESTS=200, RATE_LIMIT_CHAT=100 (exit $rc)" \
    test "$rc" = 0
printf 'rules = (\n  { name = "a"; limit = "100000/m"; algorithm = "sliding_log"; },\n  { name = "b"; limit = "100001/m"; algorithm = "sliding_log"; }\n);\n' >"$T/big.conf"
rc=0
"$RL_FILTER" -t -c "$T/big.conf" >"$T/big.err" 2>&1 || rc=$?
check "-t: sliding_log 100000/m passes, 100001/m is refused at file:line (exit $rc)" \
    test "$rc" = 1 -a "$(grep -c "^ratelimit-filter: $T/big.conf:3: rules\[1\].limit: sliding_log keeps one timestamp per request: count must be <= 100000" "$T/big.err")" = 1

# half NAME POOL N CLIENT PATH LIMIT: rl-burst's JSON of N requests to one pool, in $T/NAME.json
half() {
    local rc=0
    "$BURST" -q --json -n "$3" -c 6 -k 1 --first-client "$4" --algorithm sliding_log \
        --limit "$6" --timeout 10 "http://127.0.0.1:${LPORTS[$2 - 1]}$5" \
        >"$T/$1.json" 2>"$T/$1.err" </dev/null || rc=$?
    echo "$rc" > "$T/$1.rc"
}
# both NAME N_PER_POOL CLIENT PATH LIMIT: the two halves at once; prints admitted in all
both() {
    half "$1-1" 1 "$2" "$3" "$4" "$5" &
    local p1=$!
    half "$1-2" 2 "$2" "$3" "$4" "$5" &
    local p2=$!
    wait "$p1" "$p2"
    python3 - "$T/$1-1.json" "$T/$1-2.json" <<'PY'
import json, sys
n = 0
for f in sys.argv[1:]:
    try:
        t = json.load(open(f))["totals"]
    except Exception:
        print("unreadable")
        sys.exit(0)
    if t["transport_errors"] or t["other"]:
        print("errors")
        sys.exit(0)
    n += t["admitted"]
print(n)
PY
}
admitted_by() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["admitted"])' "$1"; }
key_of() { rcli --scan --pattern "${PREFIX}{$1}:$2:*" | head -n 1; }
redis_ms() { rcli eval "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)" 0; }

# ---- 1: general, RATE_LIMIT_REQUESTS=200 -----------------------------------------------------
n=$(both general 150 127.0.1.1 /api 200/m)
check "1: 300 requests to /api over both pools: exactly 200 admitted ($n; $(admitted_by "$T/general-1.json") via pool 1)" \
    test "$n" = 200
check "1: both pools admitted some" test "$(admitted_by "$T/general-1.json")" -gt 0 -a \
    "$(admitted_by "$T/general-2.json")" -gt 0
k=$(key_of 127.0.1.1 global)
check "1: the general key is one sorted set of 200 in Redis" \
    test -n "$k" -a "$(rcli type "$k")" = zset -a "$(rcli zcard "$k")" = 200
n=$(both general2 10 127.0.1.1 /api 200/m)
check "1: 20 more within the minute: none admitted ($n)" test "$n" = 0

# ---- 2: chat, RATE_LIMIT_CHAT=100 -------------------------------------------------------------
n=$(both chat 100 127.0.2.1 /chat 100/m)
check "2: 200 requests to /chat over both pools: exactly 100 admitted ($n)" test "$n" = 100

# ---- 3: rolling, 200 per 10 s -----------------------------------------------------------------
n=$(both rollA 60 127.0.3.1 /roll 200/10s)
check "3: 120 sent at once: 120 admitted ($n)" test "$n" = 120
k=$(key_of 127.0.3.1 roll)
check "3: the rolling key is a sorted set of 120" \
    test -n "$k" -a "$(rcli type "$k")" = zset -a "$(rcli zcard "$k")" = 120
A_MAX=$(rcli zrange "$k" -1 -1 withscores | tail -n 1)
A_MAX=${A_MAX:-0}
sleep 5
n=$(both rollB 75 127.0.3.1 /roll 200/10s)
check "3: 150 sent 5 s later: exactly 80 admitted, 200 in the rolling period ($n)" test "$n" = 80
B_MIN=$(rcli zrangebyscore "$k" "($A_MAX" +inf withscores limit 0 1 | tail -n 1)
B_MIN=${B_MIN:-0}
# Until every one of the first 120 is 10 s old, on Redis' clock.
for ((i = 0; i < 200; i++)); do [ "$(redis_ms)" -gt $((A_MAX + 10000)) ] && break; sleep 0.05; done
n=$(both rollC 100 127.0.3.1 /roll 200/10s)
END=$(redis_ms)
if [ "$END" -lt $((B_MIN + 10000)) ]; then
    check "3: once the first 120 left and the 80 had not, 200 sent: exactly 120 admitted ($n)" \
        test "$n" = 120
    check "3: the log holds 200" test "$(rcli zcard "$k")" = 200
else
    fail "3: the last burst ended at $END, after the 80 began to leave ($((B_MIN + 10000))): the machine was too slow to judge"
fi

# ---- 4: Redis down: this host's share -----------------------------------------------------------
{ kill -9 "$RPID"; wait "$RPID"; } 2>/dev/null || true # no "Killed" notice from bash
n=$(both outage 150 127.0.4.1 /api 200/m)
check "4: Redis down, 150 per pool: 200 admitted in all ($n)" test "$n" = 200
check "4: ... exactly 100 by each pool (200 / 2 hosts)" \
    test "$(admitted_by "$T/outage-1.json")" = 100 -a "$(admitted_by "$T/outage-2.json")" = 100

check "no sanitizer report in either pool's filter log" \
    bash -c '! grep -Eq "runtime error|AddressSanitizer|LeakSanitizer" "$1"/p*/filter.log' _ "$T"
finish
