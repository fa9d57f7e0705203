#!/usr/bin/env bash
# test_stack_admin.sh -- the admin endpoints in every scripts/stack combination
#
# For lighttpd and Apache, authorizer and proxy, shared memory and Redis (`--redis-port`: the
# stack's own redis-server), each stack on free 127.0.0.1 ports with --procs 1 and the demo
# configuration (one rule, 10/m per client), in one temporary RL_STACK_DIR:
#   - `up` prints the four admin URLs on the stack's port (health, stats, test, metrics, at
#     the configuration's default paths) and writes them to $RL_STACK_DIR/admin;
#   - each answers from loopback with its own content: health and stats JSON (health "ok", and
#     in the Redis combinations the stack's Redis on its port), the POST test its decision,
#     metrics Prometheus text (text/plain; version=0.0.4);
#   - 50 health requests from one client are all 200 with the endpoint's JSON, the pool's
#     decision count (stats "requests") does not move, no key is written to Redis, and a
#     normal request afterwards is admitted as the first of its window (X-RateLimit-Remaining
#     9, RateLimit r=9); paths under or next to an admin path (/api/health/rate-limiter/x,
#     /metrics/x, /metricsX) are the site's 404, decided and charged once each;
#   - `down` exits 0.
# With --config, the printed URLs are the file's admin paths (a changed metrics_path is
# answered there in proxy mode; in authorizer mode `up` notes that the recipe does not mount
# it), and admin.enabled = false prints none.
# The EXIT trap runs `scripts/stack down` and stops by pid whatever was left. ~60 s.
set -euo pipefail
NAME=test_stack_admin
source "$(dirname "$0")/lib/lib.sh"
need lighttpd apache2 redis-server redis-cli curl perl python3 ss
source "$(dirname "$0")/lib/stack.sh"

json() { # file, python expression on j: its value, or "?" when the file is not that JSON
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" \
        2>/dev/null || echo "?"
}
admin_url() { sed -n "s/^$1 //p" "$RL_STACK_DIR/admin" 2>/dev/null; }

combo() { # server, mode, store (shm or redis)
    local s=$1 m=$2 st=$3 tag="$1/$2/$3" P BP FP RP rc out u before after codes good c d
    d=$T/$s-$m-$st
    mkdir -p "$d"
    read -r P BP FP RP <<< "$(distinct_ports 4)"
    local args=(up --no-build --server "$s" --mode "$m" --port "$P" --procs 1)
    [ "$m" = proxy ] && args+=(--backend-port "$BP")
    [ "$s" = apache ] && args+=(--filter-port "$FP")
    [ "$st" = redis ] && args+=(--redis-port "$RP")
    rc=0; "$STACK" "${args[@]}" >"$d/up" 2>&1 </dev/null || rc=$?
    check "$tag: up exits 0 ($rc: $(tail -n 1 "$d/up"))" test "$rc" = 0
    [ "$rc" = 0 ] || return 0
    mapfile -t pids < <(stack_pids)
    PIDS+=("${pids[@]}")
    u="http://127.0.0.1:$P"
    local H=$u/api/health/rate-limiter S=$u/api/health/rate-limiter/stats
    local X=$u/api/health/rate-limiter/test M=$u/metrics

    for out in "health $H" "stats $S" "test $X" "metrics $M"; do
        check "$tag: up prints the ${out%% *} URL ${out#* }" \
            grep -Eq "^stack: +${out%% *} +${out#* }( |$)" "$d/up"
        check "$tag: \$RL_STACK_DIR/admin names it" test "$(admin_url "${out%% *}")" = "${out#* }"
    done

    c=$(hcurl -o "$d/health" -D "$d/hh" "$H")
    check "$tag: health -> 200 status ok ($c, $(json "$d/health" 'j["status"]'))" \
        test "$c $(json "$d/health" 'j["status"]')" = "200 ok"
    check "$tag: health is application/json" test "$(hdr "$d/hh" Content-Type)" = application/json
    if [ "$st" = redis ]; then
        check "$tag: health names the stack's Redis on $RP" \
            test "$(json "$d/health" 'str(j["backend"]["redis"]["configured"]) + " " + str(j["backend"]["redis"]["port"])')" = "True $RP"
    else
        check "$tag: health says no Redis" \
            test "$(json "$d/health" 'j["backend"]["redis"]["configured"]')" = False
    fi
    c=$(hcurl -o "$d/stats" "$S")
    check "$tag: stats -> 200 with the rule's counters ($c)" \
        test "$c $(json "$d/stats" 'j["rules"][0]["rule"]')" = "200 demo"
    c=$(hcurl -o "$d/test" -X POST -d '{"client":"192.0.2.1","path":"/x"}' "$X")
    check "$tag: POST test -> 200 with its decision ($c, $(json "$d/test" 'j["verdict"]'))" \
        test "$c $(json "$d/test" 'j["verdict"]') $(json "$d/test" 'j["rules"][0]["remaining"]')" = "200 allowed 9"
    c=$(hcurl -o "$d/metrics" -D "$d/hm" "$M")
    check "$tag: metrics -> 200 Prometheus text ($c)" \
        bash -c '[ "$1" = 200 ] && grep -q "^# TYPE ratelimit_requests_total counter" "$2" &&
            grep -q "^ratelimit_requests_total{rule=\"demo\",decision=\"allowed\"} " "$2"' _ "$c" "$d/metrics"
    check "$tag: metrics is text/plain; version=0.0.4" \
        bash -c '[[ $1 == "text/plain; version=0.0.4"* ]]' _ "$(hdr "$d/hm" Content-Type)"

    # 50 health requests from one client: answered, and never charged.
    before=$(json "$d/stats" 'j["requests"]')
    mkdir -p "$d/h50"
    codes=$(curl -s --noproxy '*' --max-time 120 -o "$d/h50/#1.json" -w '%{http_code}\n' \
        "$H?[1-50]" | sort | uniq -c | xargs || true)
    check "$tag: 50 health requests from one client all 200 ($codes)" test "$codes" = "50 200"
    good=$(grep -l '^{"status":"ok"' "$d/h50"/*.json 2>/dev/null | wc -l || true)
    check "$tag: ... each the endpoint's JSON ($good)" test "$good" = 50
    hcurl -o "$d/stats2" "$S" >/dev/null
    after=$(json "$d/stats2" 'j["requests"]')
    check "$tag: ... none decided (requests $before -> $after)" \
        bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$1" = "$2" ]' _ "$before" "$after"
    if [ "$st" = redis ]; then
        check "$tag: ... no key in Redis ($(redis-cli -h 127.0.0.1 -p "$RP" dbsize 2>&1))" \
            test "$(redis-cli -h 127.0.0.1 -p "$RP" dbsize 2>&1)" = 0
    fi
    c=$(hcurl -o /dev/null -D "$d/hn" "$u/")
    check "$tag: a normal request then is the first of its window ($c, remaining $(hdr "$d/hn" X-RateLimit-Remaining))" \
        test "$c $(hdr "$d/hn" X-RateLimit-Remaining)" = "200 9"
    check "$tag: ... RateLimit r=9 ($(hdr "$d/hn" RateLimit))" \
        bash -c '[[ $1 =~ ^\"demo\"\;r=9\;t=[0-9]+$ ]]' _ "$(hdr "$d/hn" RateLimit)"
    if [ "$st" = redis ]; then
        check "$tag: ... decided in Redis (a key there)" \
            test "$(redis-cli -h 127.0.0.1 -p "$RP" dbsize 2>&1)" -ge 1
    fi

    # Paths under or next to an admin path are ordinary: decided once, served by the site.
    before=$(json "$(hcurl -o "$d/stats3" "$S" >/dev/null; echo "$d/stats3")" 'j["requests"]')
    codes="$(hcurl -o /dev/null "$H/x") $(hcurl -o /dev/null "$M/x") $(hcurl -o /dev/null "${M}X")"
    check "$tag: $H/x, $M/x, ${M}X are the site's 404 ($codes)" test "$codes" = "404 404 404"
    hcurl -o "$d/stats4" "$S" >/dev/null
    after=$(json "$d/stats4" 'j["requests"]')
    check "$tag: ... each decided once (requests $before -> $after)" \
        bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$2" = $(($1 + 3)) ]' _ "$before" "$after"
    c=$(hcurl -o /dev/null -D "$d/hn2" "$u/")
    check "$tag: ... and charged once to the client (next remaining $(hdr "$d/hn2" X-RateLimit-Remaining))" \
        test "$c $(hdr "$d/hn2" X-RateLimit-Remaining)" = "200 5"

    rc=0; "$STACK" down >"$d/down" 2>&1 || rc=$?
    check "$tag: down exits 0 ($rc)" test "$rc" = 0
    check "$tag: down removes \$RL_STACK_DIR/admin" test ! -e "$RL_STACK_DIR/admin"
}

for s in lighttpd apache; do
    for m in authorizer proxy; do
        for st in shm redis; do combo "$s" "$m" "$st"; done
    done
done

# --config: the URLs follow the file's admin paths; the authorizer recipe's mounts do not.
read -r P BP <<< "$(distinct_ports 2)"
own_conf() { # file, admin group, more
    printf 'shm: { name = "/rltest-%s-own"; capacity = 100; };\n%s\n%s\nrules = ( { name = "own"; path_prefix = "/"; limit = "10/m"; } );\n' \
        "$RUN_ID" "$2" "${3:-}" > "$1"
    CONFS+=("$1")
}
own_conf "$T/own.conf" 'admin: { metrics_path = "/prom"; # our scraper
  /* health stays */ };' "proxy: { backend = \"http://127.0.0.1:$BP\"; };"
rc=0; "$STACK" up --no-build --mode proxy --port "$P" --backend-port "$BP" --procs 1 \
    --config "$T/own.conf" >"$T/own.up" 2>&1 </dev/null || rc=$?
check "config: proxy mode up exits 0 ($rc)" test "$rc" = 0
mapfile -t pids < <(stack_pids); PIDS+=("${pids[@]}")
check "config: up prints the file's metrics path" grep -Eq "^stack: +metrics +http://127.0.0.1:$P/prom$" "$T/own.up"
check "config: ... and the default health path" grep -Eq "^stack: +health +http://127.0.0.1:$P/api/health/rate-limiter$" "$T/own.up"
check "config: no note in proxy mode (every path reaches the filter)" bash -c '! grep -q "note:" "$1"' _ "$T/own.up"
c=$(hcurl -o "$T/own.metrics" "http://127.0.0.1:$P/prom")
check "config: /prom answers the metrics ($c)" bash -c '[ "$1" = 200 ] && grep -q "^# TYPE ratelimit_requests_total counter" "$2"' _ "$c" "$T/own.metrics"
"$STACK" down >/dev/null 2>&1 || fail "config: down"
rc=0; "$STACK" up --no-build --port "$P" --procs 1 --config "$T/own.conf" >"$T/own2.up" 2>&1 </dev/null || rc=$?
check "config: authorizer mode up exits 0 ($rc)" test "$rc" = 0
mapfile -t pids < <(stack_pids); PIDS+=("${pids[@]}")
check "config: up says the recipe does not mount /prom ($(grep note: "$T/own2.up" | cut -c1-60)...)" \
    grep -q "^stack: note: the authorizer recipe mounts the admin responder on the default admin paths only; admin path(s) of metrics in $T/own.conf" "$T/own2.up"
"$STACK" down >/dev/null 2>&1 || fail "config: down"
own_conf "$T/off.conf" 'admin = { enabled = false; };'
rc=0; "$STACK" up --no-build --port "$P" --procs 1 --config "$T/off.conf" >"$T/off.up" 2>&1 </dev/null || rc=$?
check "config: admin.enabled = false: up exits 0 ($rc)" test "$rc" = 0
mapfile -t pids < <(stack_pids); PIDS+=("${pids[@]}")
check "config: ... and says there are no admin endpoints" \
    grep -qx "stack: admin endpoints: none (admin.enabled = false in $T/off.conf)" "$T/off.up"
check "config: ... and prints no admin URL" bash -c '! grep -q "/api/health" "$1"' _ "$T/off.up"
"$STACK" down >/dev/null 2>&1 || fail "config: down"

check "no sanitizer report in the filter's logs" no_sanitizer_report "$RL_STACK_DIR/filter.log"
finish
