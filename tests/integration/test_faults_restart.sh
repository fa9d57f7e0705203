#!/usr/bin/env bash
# test_faults_restart.sh -- the web server restarting the filter pool in the middle of a burst
#
# A lighttpd authorizer pool (2 filter processes, rule 20/h, shared memory only). Two bursts
# of rl-burst, 120 requests at 40/s from 4 fresh clients each (30 per client, so each must get
# exactly 20 x 200 and 10 x 429: the rule refills nothing in 3 s, so rl-burst's bounds are
# exact both ways), and in the middle of each:
#   kill      both filter processes SIGKILLed; lighttpd spawns new ones
#   graceful  lighttpd gets SIGUSR1 (graceful restart: it stops accepting, finishes the
#             requests in flight, stops its FastCGI children, reloads and spawns new ones)
# The counters live in the shared-memory segment, not in the processes, so the counts stay
# exact across the restart. What lighttpd itself answers while its backends are gone (it has
# no filter to ask) is counted and printed, and must not be a 200 (never admitted unchecked).
set -euo pipefail
NAME=test_faults_restart
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl
BURST=${RL_BURST:-$ROOT/build/rl-burst}
[ -x "$BURST" ] || { echo "FAIL: $BURST is not built (make)"; exit 1; }

D=$T/p; mkdir -p "$D/www"; echo x > "$D/www/x"
write_conf "$D/rl.conf" restart 20/h ""
start_pool "$D" authorizer "$D/rl.conf"
U="http://127.0.0.1:$LPORT/x"
c=$(hcurl -o /dev/null --interface 127.0.9.1 "$U")
check "the pool answers ($c)" test "$c" = 200

run() { # name first-client action
    local name=$1 first=$2 action=$3 before after brc=0
    before=$(filter_pids "$D" | sort | tr '\n' ' ')
    "$BURST" -q --json -n 120 -c 2 -k 4 --rate 40 --first-client "$first" --limit 20/h "$U" \
        > "$T/$name.json" 2> "$T/$name.txt" &
    local bp=$!
    sleep 1.2
    case $action in
        kill) for p in $before; do kill -9 "$p" 2>/dev/null || true; done ;;
        graceful) kill -USR1 "$LPID" ;;
    esac
    wait "$bp" || brc=$?
    after=$(filter_pids "$D" | sort | tr '\n' ' ')
    local sent adm ref oth err
    sent=$(burst_json "$T/$name.json" sent)
    adm=$(burst_json "$T/$name.json" admitted)
    ref=$(burst_json "$T/$name.json" refused)
    oth=$(burst_json "$T/$name.json" other)
    err=$(burst_json "$T/$name.json" transport_errors)
    check "$name: new filter processes after the restart ($before-> $after)" \
        test -n "$after" -a "$before" != "$after"
    check "$name: 120 sent, $adm x 200, $ref x 429, $oth other, $err unanswered" test "$sent" = 120
    check "$name: counts exact across the restart: 4 x 20 admitted ($adm), rl-burst verdict exit $brc" \
        test "$adm" = 80 -a "$brc" = 0
    echo "FIGURE: restart-$name: $adm x 200 (4 clients x 20/h, exact), $ref x 429, $oth other status(es) from lighttpd, $err unanswered of $sent"
}
run kill 127.0.5.1 kill
# With -D, lighttpd 1.4.69 restarts gracefully in place (same pid): wait until it listens.
run graceful 127.0.6.1 graceful
wait_port "$LPORT" 5 || fail "lighttpd listens again after the graceful restart"
c=$(hcurl -o /dev/null --interface 127.0.9.2 "$U")
check "the pool answers after both restarts ($c)" test "$c" = 200
check "no sanitizer report" no_sanitizer_report "$D/filter.log"
echo "NOTE: lighttpd's own log of the restarts:"
grep -E 'fastcgi|gw_backend|graceful|child|restart' "$D/error.log" | sed 's/^/    /' | head -n 8 || true
finish
