#!/usr/bin/env bash
# test_burst.sh -- scripts/burst against a real stack (scripts/stack up): it passes a limit
# that holds and fails one that does not
#
#   1  server 10/m burst 10; `-n 40 -c 8 -k 4 --limit 10/m`: exit 0, exactly 10 admitted for
#      each of the 4 clients (each from its own 127.0.1.x source address), JSON summary
#   2  same server, 4 fresh clients sending 15 each: 10 x 2xx and 5 x 429 each, exit 0, no
#      header violation (every 429 with Retry-After and RateLimit, r never rising)
#   3  same server, harness told 20/m: a tight burst must then admit 20, the server admits
#      10: exit 1, under-admission
#   4  server 20/m burst 20, harness told 10/m: exit 1, over-admission for every client
#   5  server fixed_window 10/m, `--algorithm fixed_window`: exit 0
#   6  usage (exit 2) and a port nobody listens on (exit 3)
# Each server configuration is the demo rule (or a variant) with its own shared-memory name,
# so a stack a developer has up (build/stack) is neither read nor removed. The stack state
# lives in a temporary RL_STACK_DIR; the EXIT trap runs `scripts/stack down` and then stops
# whatever is left by its pid file. Needs lighttpd with mod_magnet and libcurl (scripts/deps);
# RL_FILTER and RL_BURST select the binaries (make integration sets both). Takes ~5 s.
set -euo pipefail

export RL_FILTER=${RL_FILTER:-$(cd "$(dirname "$0")/../.." && pwd)/build/ratelimit-filter}
NAME=test_burst
source "$(dirname "$0")/lib/lib.sh"  # $T, $ROOT, $RUN_ID, CONFS, checks, ports
need lighttpd
export RL_STACK_DIR=$T/stack

stack_down() {
    local pid i
    "$ROOT/scripts/stack" down >/dev/null 2>&1 || true
    if [ -f "$RL_STACK_DIR/lighttpd.pid" ]; then # stack down could not: stop it ourselves
        pid=$(cat "$RL_STACK_DIR/lighttpd.pid")
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$RL_STACK_DIR/lighttpd.pid"
    fi
}
trap 'stack_down; lib_cleanup' EXIT

URL=""
stack_up() { # name, limit, burst, algorithm: a fresh stack with that one rule
    local conf="$T/$1.conf"
    cat > "$conf" <<CONF
# written by test_burst.sh: the demo rule of scripts/stack, or a variant
shm: { name = "/rltest-burst-$RUN_ID-$1"; capacity = 1000; };
rules = (
  { name = "demo"; path_prefix = "/"; limit = "$2"; $([ "$4" = gcra ] && echo "burst = $3;") algorithm = "$4"; }
);
CONF
    CONFS+=("$conf")
    stack_down
    if ! "$ROOT/scripts/stack" up --no-build --port "$(pick_port)" --config "$conf" \
        >"$T/$1.up" 2>&1; then
        fail "scripts/stack up ($1): $(tail -n 3 "$T/$1.up")"
        return 1
    fi
    URL=$(cat "$RL_STACK_DIR/url")
}

burst() { # name, args...: runs scripts/burst, report in $T/NAME.out/.err; prints the exit code
    local name=$1 rc=0; shift
    "$ROOT/scripts/burst" -q "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
    echo "$rc"
}

# the per-client lines of a JSON summary, one client each
clients_json() { grep '"address"' "$1"; }

# ---- 1-3: the demo rule, 10/m burst 10 -----------------------------------------------------
if stack_up demo 10/m 10 gcra; then
    rc=$(burst one -n 40 -c 8 -k 4 --limit 10/m --json "$URL")
    check "1: -n 40 -c 8 -k 4 --limit 10/m exits 0 (got $rc)" test "$rc" = 0
    check "1: 4 clients, each exactly 10 admitted" \
        test "$(clients_json "$T/one.out" | grep -c '"sent": 10, "admitted": 10, "refused": 0,')" = 4
    check "1: each client from its own address 127.0.1.1..4" \
        test "$(clients_json "$T/one.out" | grep -Eo '"127\.0\.1\.[1-4]"' | sort -u | wc -l)" = 4
    check "1: allowance is exactly 10 (min = max)" \
        test "$(clients_json "$T/one.out" | grep -c '"max_allowed": 10, "min_allowed": 10,')" = 4
    check "1: JSON verdict ok" grep -q '"verdict": "ok", "exit": 0' "$T/one.out"
    check "1: the report (stderr with --json) says ok" grep -q '^verdict: ok' "$T/one.err"
    check "1: the report has latency percentiles" grep -Eq '^latency: p50 [0-9.]+ ms, p90' "$T/one.err"

    rc=$(burst two -n 60 -c 8 -k 4 --first-client 127.0.2.1 --limit 10/m "$URL")
    check "2: 15 per client against 10/m exits 0 (got $rc)" test "$rc" = 0
    check "2: each client 10 x 2xx and 5 x 429" \
        test "$(grep -Ec '^127\.0\.2\.[1-4] +15 +10 +5 +0 +0 +10\.\.10 +ok$' "$T/two.out")" = 4
    check "2: no header violation" grep -q '^headers: 0 violation' "$T/two.out"

    rc=$(burst three -n 40 -c 8 -k 2 --first-client 127.0.3.1 --limit 20/m "$URL")
    check "3: server 10/m judged as 20/m exits 1 (got $rc)" test "$rc" = 1
    check "3: under-admission reported" grep -q 'UNDER-ADMISSION: 10 admitted of 20 sent, the rule admits exactly 20' "$T/three.out"
fi

# ---- 4: the server admits more than the harness is told -------------------------------------
if stack_up loose 20/m 20 gcra; then
    rc=$(burst four -n 80 -c 8 -k 4 --limit 10/m "$URL")
    check "4: server 20/m judged as 10/m exits 1 (got $rc)" test "$rc" = 1
    check "4: over-admission for all 4 clients" \
        test "$(grep -c 'OVER-ADMISSION: 20 admitted, the rule allows at most 10' "$T/four.out")" = 4
    check "4: verdict VIOLATION" grep -q '^verdict: VIOLATION (exit 1)' "$T/four.out"
fi

# ---- 5: fixed window -----------------------------------------------------------------------
if stack_up fixed 10/m 10 fixed_window; then
    rc=$(burst five -n 45 -c 8 -k 3 --algorithm fixed_window --limit 10/m "$URL")
    check "5: fixed_window 10/m, 15 per client, exits 0 (got $rc)" test "$rc" = 0
    check "5: no header violation" grep -q '^headers: 0 violation' "$T/five.out"
fi

# ---- 6: usage and transport errors ---------------------------------------------------------
rc=$(burst usage -n 10 "$URL")
check "6: no --limit is a usage error (exit $rc)" test "$rc" = 2
stack_down
rc=$(burst down -n 4 -k 2 --limit 10/m "$URL")
check "6: nobody listening exits 3 (got $rc)" test "$rc" = 3
check "6: the transport error is reported" grep -q "transport errors: 4, first: Couldn't connect" "$T/down.out"

if [ "$FAILS" -ne 0 ]; then
    echo "test_burst: $FAILS check(s) failed"
    for f in "$T"/*.out "$T"/*.err; do [ -s "$f" ] && { echo "--- $f"; cat "$f"; }; done
    exit 1
fi
echo "test_burst: all checks passed"
