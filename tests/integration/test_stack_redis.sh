#!/usr/bin/env bash
# test_stack_redis.sh -- scripts/stack's Redis options: --redis-port N and --redis HOST:PORT
#
#   1  `up --redis-port RP`: the stack's redis-server listens on RP, the demo configuration
#      names it, `status` lists it; scripts/burst (rule from the policy) admits exactly 10 of
#      12 and the keys are in that Redis; `down` stops it (RP free, its pid gone)
#   2  `up --redis-port P` with P held by another Redis: exit 1 naming the port, nothing started
#   3  `up --redis 127.0.0.1:EXT` (proxy mode) with a Redis the test started: no redis-server
#      component, `status` names the external Redis, health reports port EXT, decisions land in
#      it; `down` says it leaves it running, and it still answers PING
#   4  errors: malformed ports and HOST:PORT, --redis-port with --redis HOST:PORT or --config
#      (exit 2, saying which); nothing at HOST:PORT, a server that is not Redis, a Redis that
#      wants a password (exit 1, saying so, before anything starts)
# Every server on 127.0.0.1, free ports; the stack's state in a temporary RL_STACK_DIR; the
# EXIT trap runs `scripts/stack down`, then stops the test's own Redis servers by pid.
# Takes ~10 s.
set -euo pipefail
NAME=test_stack_redis
source "$(dirname "$0")/lib/lib.sh"
need lighttpd redis-server redis-cli curl perl ss
export RL_STACK_DIR=$T/stack
STACK=$ROOT/scripts/stack
export RL_BURST=${RL_BURST:-$ROOT/build/rl-burst}

stack_cleanup() {
    "$STACK" down >/dev/null 2>&1 || true
    RL_STACK_DIR=$T/stack2 "$STACK" down >/dev/null 2>&1 || true
    lib_cleanup
}
trap stack_cleanup EXIT

read -r P RP EXT AUTH BP FREE <<< "$(distinct_ports 6)"

start_redis() { # port, extra args...: a redis-server of the test's own, in PIDS
    local port=$1
    shift
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no "$@" \
        >"$T/redis-$port.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port" 5 || { fail "redis-server on $port did not start"; return 1; }
}
dbsize() { redis-cli -h 127.0.0.1 -p "$1" dbsize 2>/dev/null || echo "none"; }
up() { # name, args...: scripts/stack up; output in $T/NAME.up; prints the exit code
    local name=$1 rc=0
    shift
    "$STACK" up --no-build --procs 1 "$@" >"$T/$name.up" 2>&1 </dev/null || rc=$?
    echo "$rc"
}
gone() { ! alive "$1"; }
nothing_up() { ! "$STACK" status >/dev/null 2>&1 && [ ! -s "$RL_STACK_DIR/components" ]; }

# ---- 1: --redis-port ---------------------------------------------------------------------------
rc=$(up one --port "$P" --redis-port "$RP")
check "1: up --redis-port $RP exits 0 (got $rc)" test "$rc" = 0
if [ "$rc" = 0 ]; then
    check "1: it says where Redis runs" grep -q "^stack: redis-server on 127.0.0.1:$RP$" "$T/one.up"
    check "1: a Redis answers on $RP" test "$(redis-cli -h 127.0.0.1 -p "$RP" ping 2>/dev/null)" = PONG
    check "1: the demo configuration decides there" \
        grep -q "redis: { enabled = true; host = \"127.0.0.1\"; port = $RP; };" "$RL_STACK_DIR/ratelimit.conf"
    "$STACK" status >"$T/one.status" 2>&1 || true
    check "1: status lists the stack's redis-server" \
        grep -Eq "^redis-server +running +pid [0-9]+ +Redis on 127.0.0.1:$RP$" "$T/one.status"
    rpid=$(cat "$RL_STACK_DIR/redis.pid")
    brc=0
    "$ROOT/scripts/burst" -q -n 12 -c 1 "http://127.0.0.1:$P/" >"$T/one.burst" 2>&1 || brc=$?
    check "1: scripts/burst exits 0 (got $brc)" test "$brc" = 0
    check "1: exactly 10 of 12 admitted" grep -Eq '^127\.0\.1\.1 +12 +10 +2 +0 +0 +10\.\.10 +ok$' "$T/one.burst"
    check "1: the decisions were made in that Redis (keys there)" test "$(dbsize "$RP")" -ge 1
    "$STACK" down >"$T/one.down" 2>&1 || fail "1: down failed"
    check "1: down stops the stack's redis-server" grep -q "^stack: stopped redis-server (pid $rpid)$" "$T/one.down"
    check "1: ... its pid is gone" gone "$rpid"
    check "1: ... and $RP is free" port_free "$RP"
fi

# ---- 2: a taken --redis-port -----------------------------------------------------------------
if start_redis "$EXT"; then
    rc=$(up two --port "$P" --redis-port "$EXT")
    check "2: --redis-port on a taken port exits 1 (got $rc)" test "$rc" = 1
    check "2: ... naming the port and the option" \
        grep -q "port $EXT on 127.0.0.1 is in use.*pick another with --redis-port" "$T/two.up"
    check "2: ... nothing started" nothing_up

    # ---- 3: --redis HOST:PORT ----------------------------------------------------------------
    before=$(dbsize "$EXT")
    rc=$(up three --port "$P" --mode proxy --backend-port "$BP" --redis "127.0.0.1:$EXT")
    check "3: up --redis 127.0.0.1:$EXT exits 0 (got $rc)" test "$rc" = 0
    if [ "$rc" = 0 ]; then
        check "3: it says it uses that Redis and leaves it alone" \
            grep -q "^stack: Redis at 127.0.0.1:$EXT (already running: the stack neither starts nor stops it)$" "$T/three.up"
        check "3: no redis-server component" bash -c '! grep -q "^redis-server" "$1"' _ "$RL_STACK_DIR/components"
        "$STACK" status >"$T/three.status" 2>&1 || true
        check "3: status names the external Redis" \
            grep -q "^redis: 127.0.0.1:$EXT (external: not started or stopped by the stack)$" "$T/three.status"
        health=$(curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$P/api/health/rate-limiter" || true)
        check "3: health: ok, Redis on port $EXT" \
            bash -c '[[ $1 == *"\"status\":\"ok\""* && $1 == *"\"port\":$2,"* ]]' _ "$health" "$EXT"
        brc=0
        "$ROOT/scripts/burst" -q -n 12 -c 1 "http://127.0.0.1:$P/echo" >"$T/three.burst" 2>&1 || brc=$?
        check "3: scripts/burst exits 0 (got $brc)" test "$brc" = 0
        check "3: the decisions were made in that Redis (keys added)" test "$(dbsize "$EXT")" -gt "$before"

        # ---- 4 (needs a server that is not Redis): the stack's web server -----------------
        rc=$(RL_STACK_DIR=$T/stack2 up notredis --port "$FREE" --redis "127.0.0.1:$P")
        check "4: --redis at an HTTP server exits 1 (got $rc)" test "$rc" = 1
        check "4: ... saying it did not answer PING" grep -q "^stack: --redis 127.0.0.1:$P: 127.0.0.1:$P accepted the connection but did not answer PING within 3 s (not a Redis?)$" "$T/notredis.up"

        "$STACK" down >"$T/three.down" 2>&1 || fail "3: down failed"
        check "3: down says it leaves the Redis running" \
            grep -q "^stack: left the Redis at 127.0.0.1:$EXT running (not started by the stack)$" "$T/three.down"
        check "3: ... and it still answers" test "$(redis-cli -h 127.0.0.1 -p "$EXT" ping 2>/dev/null)" = PONG
        check "3: status afterwards: not up" nothing_up
    fi
fi

# ---- 4: errors -----------------------------------------------------------------------------
usage_error() { # expected message (grep -E), args...
    local want=$1 rc
    shift
    rc=$(up usage "$@")
    check "4: up $* exits 2 (got $rc)" test "$rc" = 2
    check "4: ... saying: $want" grep -Eq "$want" "$T/usage.up"
}
usage_error '^stack: --redis-port "0": a port is 1\.\.65535$' --redis-port 0
usage_error '^stack: --redis-port "x1": a port is 1\.\.65535$' --redis-port x1
usage_error '^stack: --redis-port needs a port$' --redis-port
usage_error '^stack: --redis "localhost": expected HOST:PORT' --redis localhost
usage_error '^stack: --redis "127.0.0.1:70000": expected HOST:PORT' --redis 127.0.0.1:70000
usage_error '^stack: --redis "127.0.0.1:": expected HOST:PORT' --redis=127.0.0.1:
usage_error '^stack: --redis-port is for the Redis the stack starts; --redis 127.0.0.1:'"$EXT"' uses one already running$' \
    --redis "127.0.0.1:$EXT" --redis-port "$RP"
echo 'rules = ( { name = "r"; path_prefix = "/"; limit = "1/s"; } );' > "$T/user.conf"
usage_error '^stack: --redis and --redis-port write the demo configuration' --redis-port "$RP" --config "$T/user.conf"

rc=$(up nothing --port "$P" --redis "127.0.0.1:$FREE")
check "4: --redis where nothing listens exits 1 (got $rc)" test "$rc" = 1
check "4: ... saying nothing listens there" \
    grep -q "^stack: --redis 127.0.0.1:$FREE: nothing accepts connections at 127.0.0.1 port $FREE" "$T/nothing.up"
if start_redis "$AUTH" --requirepass "s3cret-$RUN_ID"; then
    rc=$(up auth --port "$P" --redis "127.0.0.1:$AUTH")
    check "4: --redis at a Redis with a password exits 1 (got $rc)" test "$rc" = 1
    check "4: ... saying it needs one and how to give it" grep -q "needs a password.*redis.password.*--config" "$T/auth.up"
fi
check "4: after every error nothing is up" nothing_up
check "4: and nothing listens on the web port" port_free "$P"
check "no sanitizer report in the filter's log" no_sanitizer_report "$RL_STACK_DIR/filter.log"

finish
