#!/usr/bin/env bash
# test_shm_generations_daemon.sh -- no configuration change takes the --listen prefork daemon
# down, and a spent client stays spent across each (the change matrix of lib/generations.sh:
# redis on/off, rule added, renamed, name lengthened, sliding_log added, capacity changed),
# carried by SIGHUP to the master, by a daemon restart, and by a second daemon started on the
# new configuration while the first still runs. Two workers each; requests by cgi-fcgi.
set -euo pipefail
NAME=test_shm_generations_daemon
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
source "$(dirname "$0")/lib/generations.sh"
need cgi-fcgi pgrep

SRV_KIND=d
declare -A SRV_PID SRV_PORT

srv_pids() { pgrep -P "${SRV_PID[$1]}" || true; }
srv_start() { # id
    local i
    SRV_PORT[$1]=$(pick_port)
    start_daemon "127.0.0.1:${SRV_PORT[$1]}" "$T/$1/rl.conf" 2 "$T/$1/filter.log" || return 1
    SRV_PID[$1]=$DPID
    for ((i = 0; i < 100; i++)); do [ "$(srv_pids "$1" | wc -w)" = 2 ] && return 0; sleep 0.1; done
    fail "$1: the daemon did not keep 2 workers: $(tail -n 3 "$T/$1/filter.log")"
    return 1
}
srv_stop() { stop_pid "${SRV_PID[$1]}"; }
srv_hup() { gen_hup "$1" "${SRV_PID[$1]}"; } # the master reloads, then signals each worker
srv_req() { # id path ip
    local out code
    out=$(env -i REQUEST_METHOD=GET "REQUEST_URI=$2" "REMOTE_ADDR=$3" SERVER_PROTOCOL=HTTP/1.1 \
        timeout 10 cgi-fcgi -bind -connect "127.0.0.1:${SRV_PORT[$1]}" 2>/dev/null | tr -d '\r' || true)
    code=$(echo "$out" | sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1)
    echo "${code:-000}"
}

gen_matrix reload
gen_matrix restart
gen_matrix start
finish
