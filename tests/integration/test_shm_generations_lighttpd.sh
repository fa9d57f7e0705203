#!/usr/bin/env bash
# test_shm_generations_lighttpd.sh -- no configuration change takes a lighttpd-spawned pool
# down, and a spent client stays spent across each (the change matrix of lib/generations.sh:
# redis on/off, rule added, renamed, name lengthened, sliding_log added, capacity changed),
# carried by SIGHUP to the filter processes, by a lighttpd restart, and by a second lighttpd
# started on the new configuration while the first still runs. Two filter processes each.
set -euo pipefail
NAME=test_shm_generations_lighttpd
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
source "$(dirname "$0")/lib/generations.sh"
need lighttpd curl pgrep

SRV_KIND=l
declare -A SRV_PID SRV_PORT

srv_pids() { filter_pids "$T/$1"; }
srv_start() { # id
    local i
    start_pool "$T/$1" authorizer "$T/$1/rl.conf" 2
    SRV_PID[$1]=$LPID
    SRV_PORT[$1]=$LPORT
    for ((i = 0; i < 100; i++)); do [ "$(srv_pids "$1" | wc -w)" = 2 ] && return 0; sleep 0.1; done
    fail "$1: lighttpd did not keep 2 filter processes: $(tail -n 3 "$T/$1/filter.log")"
    return 1
}
srv_stop() { # id
    local p
    stop_pid "${SRV_PID[$1]}"
    for p in $(srv_pids "$1"); do stop_pid "$p"; done
}
srv_hup() { # id: each filter process
    # shellcheck disable=SC2046 # one word per pid
    gen_hup "$1" $(srv_pids "$1")
}
srv_req() { # id path ip
    curl -s --noproxy '*' --max-time 10 --interface "$3" -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:${SRV_PORT[$1]}$2" || echo 000
}

gen_matrix reload
gen_matrix restart
gen_matrix start
finish
