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
#   7  no --limit: the rule comes from the first answer's RateLimit-Policy ("demo";q=10;w=60),
#      and the report and the JSON say so; against the 20/m server it is 20/60s (so it is read,
#      not a default); --limit still overrides (3 and 4 have no policy line); --burst still
#      counts (told burst 5 against the server's 10: over-admission)
#   8  no --limit against a server that sends no RateLimit-Policy (a plain lighttpd): exit 2,
#      saying so; --json on stdout parses as JSON, also when scripts/burst runs make (RL_BURST
#      unset, the make -q check under `make integration`'s MAKEFLAGS)
# Each server configuration is the demo rule (or a variant) with its own shared-memory name,
# so a stack a developer has up (build/stack) is neither read nor removed. The stack state
# lives in a temporary RL_STACK_DIR; the EXIT trap runs `scripts/stack down` and then stops
# whatever is left by its pid file. Needs lighttpd with mod_magnet, libcurl and python3 (to
# parse the JSON); RL_FILTER and RL_BURST select the binaries (make integration sets both).
# Takes ~10 s.
set -euo pipefail

export RL_FILTER=${RL_FILTER:-$(cd "$(dirname "$0")/../.." && pwd)/build/ratelimit-filter}
NAME=test_burst
source "$(dirname "$0")/lib/lib.sh"  # $T, $ROOT, $RUN_ID, CONFS, checks, ports
need lighttpd python3
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
is_json() { python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }

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
    check "3: --limit overrides the server's policy (no policy line)" \
        bash -c '! grep -q "^policy:" "$1" && grep -q "^rule:    gcra 20/m " "$1"' _ "$T/three.out"

    rc=$(burst policy -n 30 -c 6 -k 2 --first-client 127.0.7.1 --json "$URL")
    check "7: no --limit: exits 0 (got $rc)" test "$rc" = 0
    check "7: the report says the rule came from the first answer's RateLimit-Policy" \
        grep -q '^policy:  "demo";q=10;w=60: the RateLimit-Policy of request 1 (the first answer), judged as --limit 10/60s$' "$T/policy.err"
    check "7: judged as gcra 10/60s, burst 10" grep -q '^rule:    gcra 10/60s (10 per 60000 ms), burst 10,' "$T/policy.err"
    check "7: both clients exactly 10 of 15" \
        test "$(clients_json "$T/policy.out" | grep -c '"sent": 15, "admitted": 10, "refused": 5,.*"max_allowed": 10, "min_allowed": 10,')" = 2
    check "7: the JSON names its source" \
        grep -q '"limit": "10/60s", "count": 10, "period_ms": 60000, "burst": 10, "source": "policy", "policy": "\\"demo\\";q=10;w=60"' "$T/policy.out"
    check "7: stdout is JSON and nothing else" is_json "$T/policy.out"

    rc=$(burst policyb -n 12 -c 1 --first-client 127.0.7.9 --burst 5 "$URL")
    check "7: no --limit, --burst 5 against the server's burst 10: exits 1 (got $rc)" test "$rc" = 1
    check "7: --burst counts with the policy's rule" \
        grep -q 'OVER-ADMISSION: 10 admitted, the rule allows at most 5' "$T/policyb.out"
fi

# ---- 4: the server admits more than the harness is told -------------------------------------
if stack_up loose 20/m 20 gcra; then
    rc=$(burst four -n 80 -c 8 -k 4 --limit 10/m "$URL")
    check "4: server 20/m judged as 10/m exits 1 (got $rc)" test "$rc" = 1
    check "4: over-admission for all 4 clients" \
        test "$(grep -c 'OVER-ADMISSION: 20 admitted, the rule allows at most 10' "$T/four.out")" = 4
    check "4: verdict VIOLATION" grep -q '^verdict: VIOLATION (exit 1)' "$T/four.out"
    rc=$(burst loosepol -n 50 -c 8 -k 2 --first-client 127.0.8.1 "$URL")
    check "7: no --limit against the 20/m server: exits 0 (got $rc)" test "$rc" = 0
    check "7: judged as 20/60s, from the policy" \
        grep -q '^policy:  "demo";q=20;w=60: .*judged as --limit 20/60s$' "$T/loosepol.out"
    check "7: each client exactly 20 of 25" \
        test "$(grep -Ec '^127\.0\.8\.[12] +25 +20 +5 +0 +0 +20\.\.20 +ok$' "$T/loosepol.out")" = 2
fi

# ---- 5: fixed window -----------------------------------------------------------------------
if stack_up fixed 10/m 10 fixed_window; then
    rc=$(burst five -n 45 -c 8 -k 3 --algorithm fixed_window --limit 10/m "$URL")
    check "5: fixed_window 10/m, 15 per client, exits 0 (got $rc)" test "$rc" = 0
    check "5: no header violation" grep -q '^headers: 0 violation' "$T/five.out"
fi

# ---- 6: usage and transport errors ---------------------------------------------------------
rc=$(burst usage -n 10 --limit 10/x "$URL")
check "6: a malformed --limit is a usage error (exit $rc)" test "$rc" = 2
check "6: ... saying which" grep -q '^rl-burst: invalid --limit "10/x"' "$T/usage.err"
stack_down
rc=$(burst down -n 4 -k 2 --limit 10/m "$URL")
check "6: nobody listening exits 3 (got $rc)" test "$rc" = 3
check "6: the transport error is reported" grep -q "transport errors: 4, first: Couldn't connect" "$T/down.out"

# ---- 8: a server with no policy; JSON purity when scripts/burst runs make --------------------
PLAIN=$(pick_port)
if start_backend "$T/plain" "$PLAIN"; then
    rc=$(burst plain -n 3 "http://127.0.0.1:$PLAIN/static.txt")
    check "8: no --limit, no RateLimit-Policy from the server: exit 2 (got $rc)" test "$rc" = 2
    check "8: it says why and what to do" \
        grep -q '^rl-burst: no --limit, and the server.s first answer, request 1 (status 200), has no RateLimit-Policy field; give the rule with --limit COUNT/PERIOD$' "$T/plain.err"
    check "8: and prints no report" test ! -s "$T/plain.out"
    # The build check and any build must stay off stdout. RL_BURST unset: the real script path.
    rc=0
    env -u RL_BURST "$ROOT/scripts/burst" -q --json -n 2 --limit 10/m \
        "http://127.0.0.1:$PLAIN/static.txt" >"$T/make.out" 2>"$T/make.err" </dev/null || rc=$?
    check "8: scripts/burst (building if needed) --json exits 0 (got $rc)" test "$rc" = 0
    check "8: ... and its stdout is JSON and nothing else" is_json "$T/make.out"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "test_burst: $FAILS check(s) failed"
    for f in "$T"/*.out "$T"/*.err; do [ -s "$f" ] && { echo "--- $f"; cat "$f"; }; done
    exit 1
fi
echo "test_burst: all checks passed"
