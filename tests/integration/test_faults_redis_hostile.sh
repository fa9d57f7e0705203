#!/usr/bin/env bash
# test_faults_redis_hostile.sh -- a hostile "Redis" behind a lighttpd pool: no request waits
# past the decision's deadline
#
# For each mode of lib/hostile_redis.pl (silence; a reply dripping one byte every 30 ms,
# which a per-read timeout never ends; a "*2147483647" header; a "$2147483647" bulk streamed
# at full speed; garbage) a fresh lighttpd authorizer pool (2 filter processes,
# command_timeout_ms = 50, breaker_failures = 3, breaker_open_ms = 250) takes 100 requests at
# 50/s from 4 clients (rl-burst). Only silence and the drip are ended by that deadline; the
# other modes run under a generous 2000 ms one, so that a loaded machine does not time out the
# steps before EVALSHA (the logged reason would then be another), and their reason shows they
# were not waited out. Shows: every request answered, 200 only (the fallback decides,
# the limit is never reached), the slowest answer bounded (< 3000 ms: a generous bound on a
# loaded machine; a held decision would take seconds or forever), the fallback logged with the
# reason the mode calls for (timed out / reply refused / protocol error), the same processes
# throughout, their memory unchanged (< 8 MiB more). Prints p99 and max latency and the
# processes' RSS per mode.
set -euo pipefail
NAME=test_faults_redis_hostile
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd perl curl
BURST=${RL_BURST:-$ROOT/build/rl-burst}
[ -x "$BURST" ] || { echo "FAIL: $BURST is not built (make)"; exit 1; }
FAKE="$ROOT/tests/integration/lib/hostile_redis.pl"

RPORT=$(pick_port)
for mode in silence drip huge-array huge-bulk garbage; do
    case $mode in
    silence | drip) why='EVALSHA: timed out' ;;
    huge-array) why='EVALSHA: reply refused: an array of 2147483647 elements' ;;
    huge-bulk) why='EVALSHA: reply refused: more than' ;;
    garbage) why='EVALSHA: protocol error' ;;
    esac
    deadline=2000
    case $mode in silence | drip) deadline=50 ;; esac
    perl "$FAKE" "$RPORT" "$mode" 2>>"$T/fake.log" &
    FPID=$!
    PIDS+=("$FPID")
    wait_port "$RPORT" 5 || { fail "$mode: the fake Redis is not listening on $RPORT"; finish; }

    d=$T/$mode; mkdir -p "$d/www"
    cat > "$d/rl.conf" <<CONF
# written by $NAME: mode $mode
shm: { name = "/rltest-$RUN_ID-$mode"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "rltest:$RUN_ID:";
         connect_timeout_ms = $deadline; command_timeout_ms = $deadline;
         breaker_failures = 3; breaker_open_ms = 250; };
rules = ( { name = "hostile"; path_prefix = "/"; limit = "1000/s"; } );
CONF
    CONFS+=("$d/rl.conf")
    echo ok > "$d/www/index.html"
    start_pool "$d" authorizer "$d/rl.conf"
    U="http://127.0.0.1:$LPORT/index.html"
    for ((i = 0; i < 50; i++)); do # lighttpd spawns its 2 processes around listening
        [ "$(filter_pids "$d" | wc -l)" -ge 2 ] && break
        sleep 0.1
    done
    before=$(filter_pids "$d" | sort | tr '\n' ' ')
    # shellcheck disable=SC2086
    rss0=$(rss_kb $before)

    brc=0
    "$BURST" -q --json -n 100 -c 4 -k 4 --rate 50 --limit 1000/s --rule hostile "$U" \
        > "$d/burst.json" 2> "$d/burst.txt" || brc=$?
    sent=$(burst_json "$d/burst.json" sent)
    adm=$(burst_json "$d/burst.json" admitted)
    oth=$(burst_json "$d/burst.json" other)
    err=$(burst_json "$d/burst.json" transport_errors)
    p99=$(burst_json "$d/burst.json" p99)
    mx=$(burst_json "$d/burst.json" max)
    check "$mode: 100 requests sent, all answered ($sent sent, $err transport errors; rl-burst exit $brc)" \
        test "$sent" = 100 -a "$err" = 0
    check "$mode: 200 only ($adm x 200, $oth other)" test "$adm" = 100 -a "$oth" = 0
    check "$mode: the slowest answer ${mx} ms < 3000 ms (p99 ${p99} ms)" \
        awk -v m="$mx" 'BEGIN { exit !(m < 3000) }'
    check "$mode: the fallback logged with \"$why\"" \
        grep -q "deciding from shared memory until Redis answers again: redis: .*$why" "$d/filter.log"
    after=$(filter_pids "$d" | sort | tr '\n' ' ')
    check "$mode: the same filter processes throughout: $after" test -n "$before" -a "$before" = "$after"
    # shellcheck disable=SC2086
    rss1=$(rss_kb $after)
    check "$mode: the filters' memory grew by less than 8 MiB (RSS $rss0 -> $rss1 KiB)" \
        test $((rss1 - rss0)) -lt 8192
    check "$mode: no sanitizer report" no_sanitizer_report "$d/filter.log"
    echo "FIGURE: hostile Redis ($mode at every EVALSHA), command_timeout_ms $deadline: $adm x 200 of $sent at 50/s, latency p99 ${p99} ms max ${mx} ms, filters' RSS $rss0 -> $rss1 KiB"

    stop_pid "$LPID"
    # A filter held by its Redis (as before decisions had a deadline) outlives lighttpd.
    for p in $(filter_pids "$d"); do kill -9 "$p" 2>/dev/null || true; done
    stop_pid "$FPID"
done
finish
