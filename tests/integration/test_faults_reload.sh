#!/usr/bin/env bash
# test_faults_reload.sh -- SIGHUP reload under a paced load: nothing fails, the new limit applies
#
# (a) A lighttpd spawns 3 filters as authorizers (bin-path), with mod_magnet and the shipped
#     etc/lighttpd/ratelimit-headers.lua, so every allowed answer says which configuration
#     decided it (X-RateLimit-Limit of the "load" rule). Three paced loops of curl requests
#     (~4 s, three clients, one request each ~20 ms apart) run while the file is changed (load 100000/h -> 200000/h, probe 3/m
#     -> 5/m) and SIGHUP is sent to the filter processes, then while a broken file is written
#     and SIGHUP sent again. Proves: every request of the loop is answered 200; each process
#     logs "now in force" for the good file and "keeping the running configuration" for the
#     broken one; after the first HUP the answers switch to the new limit and never go back;
#     a fresh client on /r gets the new 5/m (5 x 200, then 429), also after the broken file.
# (b) The same against the prefork daemon (--listen 127.0.0.1:PORT --workers 3), requests by
#     cgi-fcgi (responder role: the 200 carries X-RateLimit-Limit), SIGHUP to the master only:
#     the master logs the reload and each worker reloads; the broken file is refused by the
#     master (logged once) and no worker is signalled, restarted or changed.
# FIGURE lines: requests during the load and in the second after the HUP, failures, the time
# from the HUP until every process logged the reload and until the answers showed the new limit.
set -euo pipefail
NAME=test_faults_reload
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl cgi-fcgi pgrep

conf_text() { # name, load limit, probe limit
    cat <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-$1"; capacity = 1000; };
rules = ( { name = "load"; path_prefix = "/l"; limit = "$2"; },
          { name = "probe"; path_prefix = "/r"; limit = "$3"; } );
CONF
}
BROKEN='rules = ( { name = "broken"; limit = "0/s"; } );'

# One request: "SENT_MS CODE LIMIT DONE_MS" (LIMIT "-" when absent, CODE 000 when unanswered).
req_http() { # url, from
    local t r
    t=$(now_ms)
    r=$(curl -s --noproxy '*' --max-time 5 --interface "$2" -o /dev/null \
        -w '%{http_code} %header{x-ratelimit-limit}' "$1" || true)
    r=${r:-000}
    set -- $r
    echo "$t ${1:-000} ${2:--} $(now_ms)"
}
req_fcgi() { # addr, path, from
    local t out code lim
    t=$(now_ms)
    out=$(env -i REQUEST_METHOD=GET "REQUEST_URI=$2" "REMOTE_ADDR=$3" SERVER_PROTOCOL=HTTP/1.1 \
        timeout 5 cgi-fcgi -bind -connect "$1" 2>/dev/null | tr -d '\r' || true)
    code=$(echo "$out" | sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1)
    lim=$(echo "$out" | sed -n 's/^X-RateLimit-Limit: //p' | head -n 1)
    echo "$t ${code:-000} ${lim:--} $(now_ms)"
}
# loop OUT SECONDS CMD...: CMD every ~20 ms for SECONDS, one line each into OUT
loop() {
    local out=$1 end=$(($(now_ms) + $2 * 1000)); shift 2
    while [ "$(now_ms)" -lt "$end" ]; do "$@" >> "$out"; sleep 0.02; done
}
count_lines() { # file, pattern: lines matching (0 when none)
    local n; n=$(grep -c -- "$2" "$1" 2>/dev/null || true); echo "${n:-0}"
}
wait_lines() { # file, pattern, count, seconds: until the file has that many matching lines
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        [ "$(count_lines "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.05
    done
    return 1
}
probe() { # CMD...: a fresh client on /r, 6 requests: the statuses
    local i s=""
    for i in 1 2 3 4 5 6; do s+="$("$@" | awk '{print $2}') "; done
    echo "${s% }"
}

# scenario TAG OUT LOG NPROC NREFUSE CONF SEND_HUP REQ: runs the load (REQ CLIENT: one request,
# three clients in parallel), both HUPs and the checks; NPROC processes must log the good
# reload, NREFUSE the broken file.
scenario() {
    local tag=$1 out=$2 log=$3 nproc=$4 nrefuse=$5 conf=$6 hup=$7 req=$8
    local lps=() lp t_hup t_bad all_ms n n_after bad first_new last_old settle
    : > "$out"
    for lp in 127.0.0.1 127.0.0.21 127.0.0.22; do
        loop "$out" 4 "$req" "$lp" &
        lps+=("$!")
        PIDS+=("$!")
    done
    sleep 0.8
    conf_text "$tag" 200000/h 5/m > "$conf"
    t_hup=$(now_ms)
    $hup
    if wait_lines "$log" 'reload: .* now in force' "$nproc" 3; then
        all_ms=$(($(now_ms) - t_hup))
    else
        all_ms="never"
    fi
    sleep 1
    echo "$BROKEN" > "$conf"
    t_bad=$(now_ms)
    $hup
    wait_lines "$log" 'error: reload: .*: keeping the running configuration' "$nrefuse" 3 || true
    for lp in "${lps[@]}"; do wait "$lp" || true; done
    sort -n -o "$out" "$out"
    conf_text "$tag" 200000/h 5/m > "$conf" # valid again, for the cleanup's --shm-remove

    n=$(wc -l < "$out")
    bad=$(awk '$2 != 200' "$out" | wc -l)
    n_after=$(awk -v a="$t_hup" '$1 >= a && $1 < a + 1000' "$out" | wc -l)
    check "$tag: $n requests during the load, $bad not 200 ($(awk '{print $2}' "$out" | sort | uniq -c | xargs))" \
        test "$n" -gt 100 -a "$bad" = 0
    # Answered before the HUP was sent (a request sent just before it may be decided after it).
    check "$tag: requests answered before the HUP saw 100000" test "$(awk -v a="$t_hup" '$4 < a && $3 != 100000' "$out" | wc -l)" = 0
    first_new=$(awk -v a="$t_hup" '$1 >= a && $3 == 200000 {print $1 - a; exit}' "$out")
    last_old=$(awk -v a="$t_hup" '$1 >= a && $3 != 200000 {v = $1 - a} END {print v == "" ? "none" : v " ms"}' "$out")
    settle=$(awk -v a="$t_hup" '$1 >= a + 500 && $3 != 200000' "$out" | wc -l)
    check "$tag: every process logged the reload ${all_ms} ms after the HUP (< 3000)" test "$all_ms" != never
    check "$tag: the new limit in answers from ${first_new:-never} ms after the HUP; the last old one sent after it: ${last_old}; none after 500 ms ($settle)" \
        test -n "$first_new" -a "$settle" = 0
    check "$tag: the broken file kept the new configuration: every answer after it says 200000" \
        test "$(awk -v a="$t_bad" '$1 >= a && $3 != 200000' "$out" | wc -l)" = 0
    check "$tag: the broken file is logged with its line" grep -q "error: reload: $conf:1: .*: keeping the running configuration" "$log"
    REPORT+=("FIGURE: reload ($tag): $n requests in 4 s from 3 paced loops, $n_after in the second after the HUP, $bad failed; every process logged the reload ${all_ms} ms after the HUP; the new limit in answers from the first request sent ${first_new:-never} ms after it (an old limit sent after the HUP: ${last_old}); broken file + HUP: logged, 0 failures, running configuration kept")
}
REPORT=()

# ---- (a) lighttpd-spawned pool -----------------------------------------------------------
DA=$T/a; mkdir -p "$DA/www/l" "$DA/www/r"; echo l > "$DA/www/l/x"; echo r > "$DA/www/r/x"
conf_text a 100000/h 3/m > "$DA/rl.conf"
CONFS+=("$DA/rl.conf")
LIGHTTPD_EXTRA="server.modules += ( \"mod_magnet\" )
magnet.attract-response-start-to = ( \"$ROOT/etc/lighttpd/ratelimit-headers.lua\" )" \
    start_pool "$DA" authorizer "$DA/rl.conf" 3
UA="http://127.0.0.1:$LPORT"
r=$(req_http "$UA/l/x" 127.0.0.1); r=${r% *} # without DONE_MS
check "(a) the pool answers with the limit copied by mod_magnet (${r#* })" test "${r#* }" = "200 100000"
for ((i = 0; i < 50; i++)); do [ "$(filter_pids "$DA" | wc -w)" = 3 ] && break; sleep 0.1; done
PA_BEFORE=$(filter_pids "$DA" | sort | xargs)
check "(a) 3 filter processes ($PA_BEFORE)" test "$(echo "$PA_BEFORE" | wc -w)" = 3
hup_a() { kill -HUP $(filter_pids "$DA"); }
load_a() { req_http "$UA/l/x" "$1"; }
scenario a "$T/a.load" "$DA/filter.log" 3 3 "$DA/rl.conf" hup_a load_a
c=$(probe req_http "$UA/r/x" 127.0.0.11)
check "(a) a fresh client on /r after both reloads: 5/m ($c)" test "$c" = "200 200 200 200 200 429"
check "(a) the filter processes are the same ones (none restarted)" test "$(filter_pids "$DA" | sort | xargs)" = "$PA_BEFORE"
check "(a) no sanitizer report" no_sanitizer_report "$DA/filter.log"

# ---- (b) prefork daemon ------------------------------------------------------------------
DB=$T/b; mkdir -p "$DB"
conf_text b 100000/h 3/m > "$DB/rl.conf"
CONFS+=("$DB/rl.conf")
PB=$(pick_port)
touch "$DB/filter.log"
start_daemon "127.0.0.1:$PB" "$DB/rl.conf" 3 "$DB/filter.log" || finish
for ((i = 0; i < 50; i++)); do [ "$(pgrep -c -P "$DPID")" = 3 ] && break; sleep 0.1; done
WB_BEFORE=$(pgrep -P "$DPID" | sort | xargs)
check "(b) 3 workers ($WB_BEFORE)" test "$(echo "$WB_BEFORE" | wc -w)" = 3
r=$(req_fcgi "127.0.0.1:$PB" /l/x 192.0.2.1); r=${r% *} # without DONE_MS
check "(b) the daemon answers with the limit (${r#* })" test "${r#* }" = "200 100000"
hup_b() { kill -HUP "$DPID"; }
load_b() { req_fcgi "127.0.0.1:$PB" /l/x "$1"; }
scenario b "$T/b.load" "$DB/filter.log" 3 1 "$DB/rl.conf" hup_b load_b
check "(b) the master logged both SIGHUPs" test "$(count_lines "$DB/filter.log" "info: master $DPID: SIGHUP, reloading")" = 2
check "(b) the broken file: only the master refused it (1 line), no worker was signalled" \
    test "$(count_lines "$DB/filter.log" 'keeping the running configuration')" = 1 -a \
    "$(count_lines "$DB/filter.log" 'now in force')" = 3
c=$(probe req_fcgi "127.0.0.1:$PB" /r/x 192.0.2.11)
check "(b) a fresh client on /r after both reloads: 5/m ($c)" test "$c" = "200 200 200 200 200 429"
check "(b) the workers are the same ones (none restarted)" test "$(pgrep -P "$DPID" | sort | xargs)" = "$WB_BEFORE"
check "(b) no worker death logged" test "$(count_lines "$DB/filter.log" 'exited with status\|killed by signal')" = 0
check "(b) no sanitizer report" no_sanitizer_report "$DB/filter.log"

for l in "${REPORT[@]}"; do echo "$l"; done
finish
