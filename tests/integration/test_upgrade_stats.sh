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
# restart of lighttpd. As root, with `nobody` as the pool's user (setpriv): an old segment of
# root's (group nogroup, 0660: nobody may use it, not remove it from the sticky /dev/shm) is
# refused by -t and by the --listen daemon as nobody (exit 3, what to do, segment kept); the
# daemon as root with shm.user = nobody replaces it by one nobody owns, and its worker serves.
set -euo pipefail
NAME=test_upgrade_stats
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl python3 pgrep truncate cgi-fcgi

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

plant_v2() { # [segment]: the one a version-2 build made: magic, version, size, a count
    local seg=${1:-$SEG}
    printf 'RLTSTT01\002\000\000\000' > "$seg"
    truncate -s 65800 "$seg"
    printf '\000\000\000\000\000\001\000\000' |
        dd of="$seg" bs=1 seek=40 conv=notrunc status=none # global[requests] = 2^40
    chmod 600 "$seg"
}
seg_id() { stat -c '%i %s' "${1:-$SEG}" 2>/dev/null || echo missing; }
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
check "no sanitizer report" no_sanitizer_report "$D/filter.log"

stop_pool

# ---- owners: root's old segment and a pool running as nobody -------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then
    OSHM=$SHM-own
    OSEG=/dev/shm$OSHM-stats
    cat > "$T/own.conf" <<CONF
shm: { name = "$OSHM"; capacity = 1000; user = "nobody"; group = "nogroup"; mode = "0660"; };
rules = ( { name = "page"; path_prefix = "/"; limit = "3/m"; } );
CONF
    chmod 644 "$T/own.conf"
    CONFS+=("$T/own.conf")
    AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    plant_v2 "$OSEG"
    chgrp nogroup "$OSEG"
    chmod 660 "$OSEG"
    before=$(seg_id "$OSEG")
    rc=0
    "${AS_NOBODY[@]}" "$RL_FILTER" -t -c "$T/own.conf" 2>"$T/t4.log" || rc=$?
    check "-t as nobody on root's old segment: exit $rc, may not replace ($(grep -o 'which this process.*' "$T/t4.log" | head -c 120))" \
        bash -c '[ "$1" = 3 ] && grep -q "statistics of another version (65800 bytes, this build.s [0-9]*), which this process (uid [0-9]*) may not replace: they belong to uid 0 .*rm /dev/shm.*a start would fail" "$2"' _ "$rc" "$T/t4.log"
    PORT=$(pick_port)
    "${AS_NOBODY[@]}" "$RL_FILTER" --listen "127.0.0.1:$PORT" --workers 1 -c "$T/own.conf" 2>>"$T/daemon.log" &
    NPID=$!
    PIDS+=("$NPID")
    rc=timeout
    wait_gone "$NPID" 20 && { rc=0; wait "$NPID" || rc=$?; }
    check "the daemon as nobody refuses to start: exit $rc, the same words" \
        bash -c '[ "$1" = 3 ] && grep -q "which this process (uid [0-9]*) may not replace" "$2"' _ "$rc" "$T/daemon.log"
    check "... and the old segment is kept ($before -> $(seg_id "$OSEG"))" test "$(seg_id "$OSEG")" = "$before"
    start_daemon "127.0.0.1:$PORT" "$T/own.conf" 1 "$T/root.log"
    check "the daemon as root replaces it, logging so" \
        grep -q "statistics of another version (65800 bytes, this build's [0-9]*) replaced: the counters restart at 0" "$T/root.log"
    check "... by one nobody owns, as shm.user says ($(stat -c '%U:%G %a' "$OSEG"))" \
        test "$(stat -c '%U:%G %a' "$OSEG")" = "nobody:nogroup 660"
    codes=""
    for i in 1 2 3 4; do
        codes+="$(env -i REQUEST_METHOD=GET REQUEST_URI=/x REMOTE_ADDR=192.0.2.7 timeout 10 \
            cgi-fcgi -bind -connect "127.0.0.1:$PORT" | tr -d '\r' |
            sed -n 's/^Status: \([0-9]*\).*/\1/p' || true) "
    done
    check "its worker serves: 200 200 200 429 ($codes)" test "$codes" = "200 200 200 429 "
    check "no sanitizer report" no_sanitizer_report "$T/root.log"
    stop_pid "$DPID"
    "$RL_FILTER" --shm-remove -c "$T/own.conf" 2>/dev/null
else
    echo "SKIP: the owner cases need root, a user nobody and a group nogroup"
fi

# ---- nothing left ---------------------------------------------------------------------------
"$RL_FILTER" --shm-remove -c "$T/rl.conf" 2>/dev/null
left=$(compgen -G "/dev/shm$SHM*" || true)
check "nothing of the pool left in /dev/shm (${left:-none})" test -z "$left"
finish
