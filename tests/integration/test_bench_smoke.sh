#!/usr/bin/env bash
# test_bench_smoke.sh -- scripts/bench still runs end to end (a smoke test, never a speed test)
#
# scripts/bench --quick on seven configurations that between them start every kind of server
# it uses (lighttpd with the bare FastCGI program as responder and as authorizer, the filter
# as authorizer on shared memory, the filter on Redis under a flood of refusals, lighttpd's
# mod_proxy and the filter in proxy mode to the same backend, nginx limit_req): it must exit
# 0, which it does only when each configuration answered curl as expected before its wrk run
# (200 with the right body, or 429) and wrk's output could be read, and print a measured row
# for each. No figure is checked: on a loaded 2-core machine they mean nothing; only that the
# goals are printed with a verdict and, for the authorizer's, both its bounds and the CPU per
# request. Its temp dir is kept (inside ours) to look for sanitizer reports in the FastCGI
# programs' logs. About 9 s.
set -euo pipefail
NAME=test_bench_smoke
source "$(dirname "$0")/lib/lib.sh"
: "${RL_BARE:?set RL_BARE to the absolute path of bare-fcgi (make build/bench/bare-fcgi)}"
need wrk lighttpd redis-server redis-cli nginx curl

ONLY=bare,bare-authz,authz-shm,flood-redis,mod-proxy,proxy-shm,nginx-flood
rc=0
TMPDIR=$T RL_FILTER=$RL_FILTER RL_BARE=$RL_BARE timeout 120 "$ROOT/scripts/bench" --no-build \
    --keep --quick --only "$ONLY" > "$T/bench.log" 2>&1 || rc=$?
check "scripts/bench --quick --only $ONLY exits 0 ($rc)" test "$rc" = 0
for n in ${ONLY//,/ }; do
    check "$n: a measured row" grep -Eq "^$n +.* [0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+% " "$T/bench.log"
done
check "the goals are reported" grep -q '^  flood-redis  >= 0.90 x bare ' "$T/bench.log"
check "the proxy goal is reported against mod_proxy" grep -q '^  proxy-shm    >= 0.80 x mod-proxy ' "$T/bench.log"
check "the authorizer goal: ratio, CPU bound, verdict, CPU per request" grep -Eq \
    '^  authz-shm    >= 0[.]95 x bare-authz, CPU <= [+]4 us +[0-9.]+: (met|not met) +[(]CPU per request [0-9.]+ us vs [0-9.]+ us: [+-][0-9.]+ us, ratio [0-9.]+[)]$' \
    "$T/bench.log"
for f in "$T"/rl-bench.*/*.fcgi.log; do
    check "no sanitizer report in ${f##*/}" no_sanitizer_report "$f"
done
finish
