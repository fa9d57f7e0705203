#!/usr/bin/env bash
# callgrind_redis.sh -- Redis' instructions per decision of the script, under callgrind
#
# Starts its own redis-server (on a unix socket in a temporary directory) under valgrind's
# callgrind, collecting only inside fcallCommand and evalShaCommand, loads core/ratelimit.lua
# as a function library and the GET+SET floor (bench_redis.c's, bare_fcgi.c's) as a script,
# and sends each row N times (default 1000) pipelined through redis-cli --pipe; prints the
# instructions per call of each, its ratio to the floor and the goal (<= 1.3 x the floor)
# met or not. Counts are repeatable on a loaded machine, unlike bench_redis's times. Rows,
# all at Redis' clock (now -1):
#   floor          EVALSHA: GET, then SET ... PX
#   gcra kept      one GCRA rule (1e9/s, burst 1e10) whose state is 5 s ahead: the admission
#                  leaves the key's expiry as it is (SET ... KEEPTTL)
#   gcra moved     one GCRA rule (1/s, burst 1e9): each admission adds 1 s, the expiry moves
#   fixed_window   one fixed_window rule (1e9 a minute): the general path, the expiry kept
# Not a test. Needs valgrind, redis-server, redis-cli. Usage: callgrind_redis.sh [N]
set -euo pipefail

n=${1:-1000}
lua=${RL_LUA:-core/ratelimit.lua}
for c in valgrind callgrind_control redis-server redis-cli; do
    command -v "$c" >/dev/null || { echo "callgrind_redis: $c not installed" >&2; exit 2; }
done
[ -r "$lua" ] || { echo "callgrind_redis: $lua missing (run from the source tree)" >&2; exit 2; }
out=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$out"
}
trap cleanup EXIT

valgrind --tool=callgrind --collect-atstart=no --toggle-collect=fcallCommand \
    --toggle-collect=evalShaCommand --callgrind-out-file="$out/cg.%p" \
    redis-server --port 0 --unixsocket "$out/redis.sock" --save '' --appendonly no \
    >"$out/redis.log" 2>&1 &
pid=$!
cli() { redis-cli -s "$out/redis.sock" "$@"; }
for _ in $(seq 300); do # valgrind starts slowly: up to 30 s
    [ "$(cli PING 2>/dev/null)" = PONG ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$out/redis.log" >&2; exit 1; }
    sleep 0.1
done
[ "$(cli PING 2>/dev/null)" = PONG ] || { echo "callgrind_redis: no redis-server" >&2; exit 1; }

{ printf "#!lua name=rl_cg\nlocal name = 'rl_cg'\n"; cat "$lua"; } >"$out/lib.lua"
[ "$(cli -x FUNCTION LOAD REPLACE <"$out/lib.lua")" = rl_cg ] ||
    { echo "callgrind_redis: FUNCTION LOAD failed" >&2; exit 1; }
floor=$(cli SCRIPT LOAD "redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1")

# One command in RESP, for redis-cli --pipe.
resp() {
    printf '*%d\r\n' $#
    for a; do printf '$%d\r\n%s\r\n' "${#a}" "$a"; done
}
# Sends the command in "$@" `count` times pipelined; fails on any error reply.
send() {
    local count=$1 one
    shift
    one=$(resp "$@"; echo x)
    one=${one%x}
    for _ in $(seq "$count"); do printf '%s' "$one"; done >"$out/cmds"
    cli --pipe <"$out/cmds" >"$out/pipe" 2>&1
    grep -q 'errors: 0,' "$out/pipe" || { cat "$out/pipe" >&2; exit 1; }
}
# Instructions per call of "$@" over n calls (after 50 uncounted).
measure() {
    local f
    send 50 "$@"
    callgrind_control -z "$pid" >/dev/null 2>&1
    send "$n" "$@"
    callgrind_control -d "$pid" >/dev/null 2>&1
    f=$(ls -t "$out"/cg."$pid".* | head -1)
    awk -v n="$n" '/^(summary|totals):/ { t = $2 } END { printf "%.0f", t / n }' "$f"
    rm -f "$f"
}
now_ms() { cli TIME | awk 'NR == 1 { s = $1 } NR == 2 { printf "%.0f\n", s * 1000 + int($1 / 1000) }'; }

f0=$(measure EVALSHA "$floor" 1 cg:{floor} 1 60000)
cli SET cg:{kept} "$(($(now_ms) + 5000)):1" PX 120000 >/dev/null
f1=$(measure FCALL rl_cg 1 cg:{kept} -1 0 1000000000 1000 10000000000 1 0)
f2=$(measure FCALL rl_cg 1 cg:{moved} -1 0 1 1000 1000000000 1 0)
f3=$(measure FCALL rl_cg 1 cg:{fw} -1 1 1000000000 60000 1000000000 1 0)
awk -v n="$n" -v f0="$f0" -v f1="$f1" -v f2="$f2" -v f3="$f3" 'BEGIN {
    printf "Redis instructions per call (callgrind, fcallCommand / evalShaCommand, %d pipelined calls each)\n", n
    printf "  GET+SET floor (EVALSHA)        %7d\n", f0
    printf "  gcra, expiry kept (FCALL)      %7d   %.2f x the floor\n", f1, f1 / f0
    printf "  gcra, expiry moved (FCALL)     %7d   %.2f x the floor\n", f2, f2 / f0
    printf "  fixed_window (FCALL)           %7d   %.2f x the floor\n", f3, f3 / f0
    printf "goal: FCALL <= 1.3 x the GET+SET floor: %s (%.2f kept, %.2f moved)\n",
        (f1 <= 1.3 * f0 && f2 <= 1.3 * f0) ? "met" : "NOT met", f1 / f0, f2 / f0
}'
