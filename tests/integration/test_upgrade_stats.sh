#!/usr/bin/env bash
# test_upgrade_stats.sh -- an upgrade does not take the site down for its statistics: the
# statistics segment an older build left in /dev/shm (planted by hand: "RLTSTT01", layout
# version 2, its 65800 bytes, its request counter at 2^40) under the pool's shm.name is
# replaced, not refused.
#   -t before the start: exit 0, one line saying "statistics of another version: replaced,
#     counters restart", and the planted segment left as it was;
#   lighttpd spawning 2 filter processes at once (responder role): they serve (3/m: 200 200
#     200 429), exactly one of them logs the replacement, the admin stats endpoint answers
#     with the counters restarted (requests 4, not 2^40 + 4), the segment has this build's
#     size; a SIGHUP reload attaches to it (no second replacement, counts kept);
#   -t afterwards: no word of the statistics; once stopped and --shm-remove'd, nothing of the
#     pool is left in /dev/shm.
# Then the same-size case (this build's segment with version 2 written in) replaced by a
# restart of lighttpd.
set -euo pipefail
NAME=test_upgrade_stats
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl python3 pgrep truncate

SHM=/rltest-$RUN_ID-up
SEG=/dev/shm$SHM-stats
D=$T/pool
cat > "$T/rl.conf" <<CONF
# written by $NAME
shm: { name = "$SHM"; capacity = 1000; };
rules = ( { name = "page"; path_prefix = "/p"; limit = "3/m"; } );
CONF
CONFS+=("$T/rl.conf")
H=/api/health/rate-limiter
jget() { # file, keys...: the value, or "?" (no JSON there)
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$@" 2>/dev/null || echo "?"
}

plant_v2() { # the segment a version-2 build made: magic, version, size, a count
    printf 'RLTSTT01\002\000\000\000' > "$SEG"
    truncate -s 65800 "$SEG"
    printf '\000\000\000\000\000\001\000\000' |
        dd of="$SEG" bs=1 seek=40 conv=notrunc status=none # global[requests] = 2^40
    chmod 600 "$SEG"
}
seg_id() { stat -c '%i %s' "$SEG" 2>/dev/null || echo missing; }
replaced_lines() { grep -c 'statistics of another version (.*) replaced: the counters restart' "$D/filter.log" || true; }
req() { hcurl -o /dev/null "http://127.0.0.1:$LPORT$1"; }
pool_up() { # the 2 filter processes are there and answer
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(filter_pids "$T" | wc -w)" = 2 ] && [ "$(req "$H")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
stop_pool() {
    local p
    stop_pid "$LPID"
    for p in $(filter_pids "$T"); do stop_pid "$p"; done
}

# ---- -t predicts the replacement and changes nothing ----------------------------------------
plant_v2
before=$(seg_id)
rc=0
"$RL_FILTER" -t -c "$T/rl.conf" 2>"$T/t1.log" || rc=$?
check "-t with an old statistics segment: exit $rc, successful" \
    bash -c '[ "$1" = 0 ] && grep -q "test is successful" "$2"' _ "$rc" "$T/t1.log"
check "-t says: replaced, counters restart ($(grep -o 'shm "[^"]*-stats".*' "$T/t1.log" | head -c 200))" \
    grep -q "$SHM-stats\": statistics of another version: replaced, counters restart (65800 bytes, this build's [0-9]*)" "$T/t1.log"
check "-t does not say a start would fail" bash -c '! grep -q "would fail" "$1"' _ "$T/t1.log"
check "-t changed nothing ($before -> $(seg_id))" test "$(seg_id)" = "$before"

# ---- lighttpd starts 2 filters on it: they serve, one replaces it -------------------------
mkdir -p "$D"
start_pool "$D" responder "$T/rl.conf" 2
check "the pool serves (2 filter processes, health 200)" pool_up
codes=""
for i in 1 2 3 4; do codes+="$(req /p/x) "; done
check "3/m: 200 200 200 429 ($codes)" test "$codes" = "200 200 200 429 "
c=$(hcurl -o "$T/stats" "http://127.0.0.1:$LPORT$H/stats")
check "the admin stats endpoint answers ($c)" test "$c" = 200
check "counters restarted: requests 4, page allowed 3 refused 1 ($(jget "$T/stats" requests) $(jget "$T/stats" rules 0))" \
    test "$(jget "$T/stats" requests) $(jget "$T/stats" rules 0 allowed) $(jget "$T/stats" rules 0 refused)" = "4 3 1"
check "exactly one process logged the replacement ($(replaced_lines))" test "$(replaced_lines)" = 1
check "... in one line naming the segment and the old build's processes" \
    grep -q "info: shm \"$SHM-stats\": statistics of another version (65800 bytes, this build's [0-9]*) replaced: the counters restart at 0 (processes of the old build still running" "$D/filter.log"
now=$(seg_id)
check "a new segment of this build's size ($before -> $now)" \
    bash -c '[ "$1" != missing ] && [ "${1%% *}" != "${2%% *}" ] && [ "${1#* }" != 65800 ]' _ "$now" "$before"
check "no refusal in the log" bash -c '! grep -q "cannot open\|rm /dev/shm\|would fail" "$1"' _ "$D/filter.log"

n=$(grep -c 'now in force' "$D/filter.log" || true)
kill -HUP $(filter_pids "$T")
for ((i = 0; i < 200; i++)); do
    [ "$(grep -c 'now in force' "$D/filter.log" || true)" -ge $((n + 2)) ] && break
    sleep 0.05
done
check "SIGHUP: both reloaded" test "$(grep -c 'now in force' "$D/filter.log" || true)" -ge $((n + 2))
req /p/x >/dev/null
hcurl -o "$T/stats2" "http://127.0.0.1:$LPORT$H/stats" >/dev/null
check "... attached as it is: no second replacement, requests 5 ($(jget "$T/stats2" requests))" \
    test "$(replaced_lines):$(seg_id):$(jget "$T/stats2" requests)" = "1:$now:5"
"$RL_FILTER" -t -c "$T/rl.conf" 2>"$T/t2.log" || true
check "-t now: nothing about the statistics, successful" \
    bash -c '! grep -q "statistics" "$1" && grep -q "test is successful" "$1"' _ "$T/t2.log"

# ---- the same size, another version: a lighttpd restart replaces it ------------------------
stop_pool
printf '\002\000\000\000' | dd of="$SEG" bs=1 seek=8 conv=notrunc status=none
before=$(seg_id)
"$RL_FILTER" -t -c "$T/rl.conf" 2>"$T/t3.log" || true
check "-t: the same size, version 2: replaced, counters restart" \
    grep -q "statistics of another version: replaced, counters restart (version 2, this build's 3)" "$T/t3.log"
: > "$D/filter.log"
start_pool "$D" responder "$T/rl.conf" 2
check "after the restart the pool serves" pool_up
c=$(req /p/x)
check "the table was kept across the restart: still 429 ($c)" test "$c" = 429
hcurl -o "$T/stats3" "http://127.0.0.1:$LPORT$H/stats" >/dev/null
check "counters restarted again: requests 1 ($(jget "$T/stats3" requests))" test "$(jget "$T/stats3" requests)" = 1
check "one replacement logged ($(replaced_lines))" test "$(replaced_lines)" = 1
check "a new segment ($before -> $(seg_id))" test "$(seg_id)" != "$before"

# ---- nothing left ---------------------------------------------------------------------------
stop_pool
"$RL_FILTER" --shm-remove -c "$T/rl.conf" 2>/dev/null
left=$(compgen -G "/dev/shm$SHM*" || true)
check "nothing of the pool left in /dev/shm (${left:-none})" test -z "$left"
finish
