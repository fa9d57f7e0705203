#!/usr/bin/env bash
# test_demo.sh -- scripts/demo run for real: every step shown, and nothing left behind
#
#   1  stdin not a terminal: it runs straight through (exit 0) and its output shows each of
#      the 8 steps with what the step is about: the stack up with Redis; 10 admitted then 2
#      refused with RateLimit-Policy, RateLimit, X-RateLimit-* and Retry-After; health "ok";
#      Redis killed, health "degraded" and decisions continuing from shared memory (10 + 2
#      again); Redis back, health "ok" and requests admitted; scripts/burst's verdict ok with
#      the rule read from the policy; stats (the fallback count) and metrics; everything
#      stopped. Afterwards: its ports are free, no process runs from its state directory, and
#      the stack's shared memory is gone. This run has --keep, to read the filter's log for a
#      sanitizer report (RL_FILTER, RL_BURST may be sanitizer builds): it says where it kept
#      the directory; runs 2 and 3 check that without --keep the directory is removed.
#   2  SIGTERM in the middle (after step 4 began): it exits 143 and leaves nothing either.
#   3  on a terminal (script(1) gives it one) it waits for a key before each step; `q` stops it
#      there (exit 0), and it leaves nothing. Skipped without script(1) (bsdutils).
# Every server on 127.0.0.1 and on ports picked free here; TMPDIR=$T, so the demo's state
# directory is inside this test's. Takes ~15 s.
set -euo pipefail
NAME=test_demo
source "$(dirname "$0")/lib/lib.sh"
need lighttpd redis-server curl perl ss
export RL_BURST=${RL_BURST:-$ROOT/build/rl-burst}
export TMPDIR=$T
DEMO=$ROOT/scripts/demo

# Should a run go wrong, stop whatever it left: the stack by its state directory, then (lib.sh)
# the demo's own pid in PIDS; the demo's Redis, its child, would then be orphaned: the
# redis-server listening on a Redis port of this test is stopped by its pid.
REDIS_PORTS=()
demo_cleanup() {
    local d p pid
    for d in "$T"/rl-demo.*/stack; do
        [ -d "$d" ] && RL_STACK_DIR=$d "$ROOT/scripts/stack" down >/dev/null 2>&1 || true
    done
    for p in "${REDIS_PORTS[@]}"; do
        pid=$(ss -Htlnp "sport = :$p" 2>/dev/null | grep -o '"redis-server",pid=[0-9]*' |
            head -n 1 | sed 's/.*pid=//' || true)
        [ -z "$pid" ] || stop_pid "$pid"
    done
    lib_cleanup
}
trap demo_cleanup EXIT

section() { # file, step number: that step's lines
    awk -v s="== Step $2/8:" -v n="== Step $(($2 + 1))/8:" \
        'index($0, s) == 1 { on = 1 } index($0, n) == 1 { on = 0 } on' "$1"
}
has() { # file, step, text (grep -E): the step's lines contain it
    section "$1" "$2" | grep -Eq -- "$3"
}

# (pgrep in this shell: a `bash -c` would find itself by its own arguments)
no_process_from() { ! pgrep -f -- "$1" >/dev/null; }

# Nothing left of a run whose output is $1, on ports $2..: no listener, no process from its
# state directory, no directory, no shared memory.
nothing_left() { # tag, output, ports...
    local tag=$1 out=$2 state shm p
    shift 2
    state=$(sed -n 's/^ratelimit-filter demo: .*; state in \(.*\)$/\1/p' "$out" | head -n 1)
    check "$tag: the output names its state directory" test -n "$state"
    for p in "$@"; do check "$tag: nothing listens on $p" port_free "$p"; done
    check "$tag: no process runs from its state directory" no_process_from "${state:-$T/rl-demo.}"
    if [ "$tag" != 1 ]; then
        check "$tag: its state directory is gone" test ! -e "${state:-/nonexistent}"
    fi
    shm="ratelimit-stack-$(id -u)-$(printf %s "$state/stack" | cksum | cut -d' ' -f1)"
    check "$tag: the stack's shared memory is gone" \
        bash -c '! ls /dev/shm 2>/dev/null | grep -q -- "^$1"' _ "$shm"
}

# ---- 1: straight through -------------------------------------------------------------------
read -r P BP RP <<< "$(distinct_ports 3)"
REDIS_PORTS+=("$RP")
rc=0
timeout 120 "$DEMO" --no-build --keep --port "$P" --backend-port "$BP" --redis-port "$RP" \
    </dev/null >"$T/one.out" 2>&1 || rc=$?
O=$T/one.out
check "1: runs straight through, exit 0 (got $rc)" test "$rc" = 0
check "1: eight steps, in order" \
    test "$(grep -E '^== Step [1-8]/8: ' "$O" | cut -d' ' -f3 | paste -sd' ')" = "1/8: 2/8: 3/8: 4/8: 5/8: 6/8: 7/8: 8/8:"
check "1: no key was waited for" bash -c '! grep -q "any key" "$1"' _ "$O"

check "1/1: the stack is up, deciding in the demo's Redis" \
    has "$O" 1 "stack: Redis at 127.0.0.1:$RP \(already running"
check "1/1: ... on the given port" has "$O" 1 "^   \| http://127.0.0.1:$P/$"

check "1/2: 10 admitted, then 2 refused" has "$O" 2 '=> 10 admitted, 2 refused \(429\), 0 other'
check "1/2: a 429 line shows Retry-After" has "$O" 2 '#11 429 .*Retry-After: [0-9]+$'
check "1/2: RateLimit-Policy shown" has "$O" 2 'RateLimit-Policy: "demo";q=10;w=60'
check "1/2: RateLimit shown" has "$O" 2 '^       RateLimit: "demo";r=0;t=[0-9]+$'
check "1/2: X-RateLimit-* shown" has "$O" 2 '^       X-RateLimit-Limit: 10$'
check "1/2: Retry-After in the refusal's headers" has "$O" 2 '^       Retry-After: [0-9]+$'

check "1/3: health ok with Redis up" has "$O" 3 'GET /api/health/rate-limiter -> 200, status "ok"'

check "1/4: Redis killed" has "$O" 4 '^   \$ kill -9 [0-9]+ +\(redis-server\)'
check "1/4: health degraded" has "$O" 4 'GET /api/health/rate-limiter -> 200, status "degraded"'
check "1/4: decisions continue: 10 admitted, 2 refused" has "$O" 4 '=> 10 admitted, 2 refused \(429\), 0 other'
check "1/4: the filter logged the fallback" has "$O" 4 'backend=shm|shared memory until Redis'

check "1/5: Redis back" has "$O" 5 'redis-server pid [0-9]+ on 127.0.0.1:'"$RP"
check "1/5: health ok again" has "$O" 5 'GET /api/health/rate-limiter -> 200, status "ok"'
check "1/5: requests admitted" has "$O" 5 '=> 3 admitted, 0 refused'

check "1/6: the burst is judged against the server's policy" has "$O" 6 'policy:  "demo";q=10;w=60'
check "1/6: ... and holds" has "$O" 6 'verdict: ok'

check "1/7: stats: the fallback decisions counted" \
    has "$O" 7 'rule demo: allowed [0-9]+, refused [0-9]+, decided in shared memory while Redis was down: 12$'
check "1/7: metrics shown" has "$O" 7 '^   ratelimit_requests_total\{rule="demo",decision="allowed"\} [0-9]+$'
check "1/7: ... Redis up again" has "$O" 7 '^   ratelimit_redis_up 1$'

check "1/8: the stack stopped" has "$O" 8 'stack: down'
check "1/8: done" grep -q '^demo: done$' "$O"
nothing_left 1 "$O" "$P" "$BP" "$RP"
kept=$(sed -n 's/^demo: state and logs kept in //p' "$O")
check "1: --keep: it says where the state is kept" test -n "$kept" -a -d "$kept"
check "1: the filter's log has no sanitizer report" no_sanitizer_report "$kept/stack/filter.log"
check "1: the demo's output has none (rl-burst)" no_sanitizer_report "$O"

# ---- 2: SIGTERM half way ---------------------------------------------------------------------
read -r P BP RP <<< "$(distinct_ports 3)"
REDIS_PORTS+=("$RP")
"$DEMO" --no-build --port "$P" --backend-port "$BP" --redis-port "$RP" </dev/null >"$T/two.out" 2>&1 &
DPID=$!
PIDS+=("$DPID")
for ((i = 0; i < 600; i++)); do
    grep -q '^== Step 4/8' "$T/two.out" 2>/dev/null && break
    alive "$DPID" || break
    sleep 0.1
done
check "2: reached step 4" grep -q '^== Step 4/8' "$T/two.out"
kill -TERM "$DPID" 2>/dev/null || true
rc=0
wait_gone "$DPID" 30 || fail "2: the demo still runs 30 s after SIGTERM"
wait "$DPID" 2>/dev/null || rc=$?
check "2: SIGTERM: exit 143 (got $rc)" test "$rc" = 143
check "2: it did not finish" bash -c '! grep -q "^demo: done" "$1"' _ "$T/two.out"
nothing_left 2 "$T/two.out" "$P" "$BP" "$RP"

# ---- 3: on a terminal, a key per step; q stops -------------------------------------------------
if command -v script >/dev/null; then
    read -r P BP RP <<< "$(distinct_ports 3)"
    REDIS_PORTS+=("$RP")
    cmd=$(printf '%q ' "$DEMO" --no-build --port "$P" --backend-port "$BP" --redis-port "$RP")
    # Keys come once each prompt is there: a space for step 2, another for step 3, then q
    # (stop before step 4).
    keys() {
        local i n=2
        for ((i = 0; i < 900 && n <= 4; i++)); do
            if grep -q "step $n of 8" "$T/three.out" 2>/dev/null; then
                if [ "$n" -lt 4 ]; then printf ' '; else printf 'q'; fi
                n=$((n + 1))
            fi
            sleep 0.1
        done
    }
    rc=0
    keys | timeout 120 script -qefc "$cmd" /dev/null >"$T/three.out" 2>&1 || rc=$?
    tr -d '\r' < "$T/three.out" > "$T/three.txt"
    check "3: on a terminal, q stops it: exit 0 (got $rc)" test "$rc" = 0
    check "3: it waited for a key before step 2" grep -q 'any key: step 2 of 8' "$T/three.txt"
    check "3: it went on to step 3 on a key" grep -q '^== Step 3/8' "$T/three.txt"
    check "3: and stopped on q" grep -q '^demo: stopped at your request' "$T/three.txt"
    check "3: ... before step 4" bash -c '! grep -q "^== Step 4/8" "$1"' _ "$T/three.txt"
    nothing_left 3 "$T/three.txt" "$P" "$BP" "$RP"
else
    echo "SKIP: 3: script(1) is not installed (bsdutils)"
fi

finish
