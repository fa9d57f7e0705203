# generations.sh -- the configuration-change matrix of the shared-memory table, for one server
#
# Source after lib.sh and faults.sh. The test defines, for a server instance ID (a directory
# $T/ID holding its configuration rl.conf and its log filter.log):
#   srv_start ID     start it on ID's rl.conf (fails the test when it does not answer)
#   srv_stop ID      stop it and every filter process of it
#   srv_hup ID       SIGHUP as MANUAL.md says for that deployment; waits (bounded) until each
#                    process logged the reload
#   srv_req ID PATH IP   one request from client IP: prints its status code
#   srv_pids ID      the processes that hold the table
# then runs gen_matrix MODE for MODE in reload, restart and start.
#
# A chain of edits, each applied to the previous configuration (one shm.name per chain):
#   1 base        rule "api" 2/h (gcra), capacity 1000: slots of 2 state words
#   2 redis on    redis.enabled (unreachable: port 1; on_redis_down "shm", the default, so
#                 shared memory decides and the spent client must stay spent): 3 words
#   3 redis off   fits the larger slots as they are
#   4 rule added  "other" on /other
#   5 renamed     "other" -> "other2"
#   6 lengthened  "other2" -> a 60-character name: longer keys
#   7 algorithm   a first sliding_log rule (100/h: 52 state words)
#   8 capacity    1000 -> 3000
# Client 127.0.0.50 is spent under "api" (200 200 429) at step 1; after every edit, whatever
# MODE carried it (SIGHUP; stop then start; a new instance started while the old one still
# runs, then the old one stopped), it must still be refused, a fresh client admitted, -t must
# have said whether the state is kept (the table fits) or carried to a new generation, the log
# must show exactly one replacement of the table when -t said so (none otherwise), and no
# process may still hold a replaced generation (reload) nor a maker's private name be left.
# At the end of each chain, -t must count the live state it keeps, and say that a changed
# limit starts the rule's clients fresh.

GEN_LONG=a_rule_name_lengthened_to_sixty_characters_xxxxxxxxxxxxxxxxxx

# SIGHUP to PIDS, then wait (10 s) until ID's log shows two more reloads: both tests run two
# filter processes (the daemon's workers, lighttpd's max-procs), each logging its own.
gen_hup() { # id pids...
    local id=$1 n i
    shift
    n=$(grep -c 'now in force' "$T/$id/filter.log" || true)
    kill -HUP "$@"
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -c 'now in force' "$T/$id/filter.log" || true)" -ge $((n + 2)) ] && return 0
        sleep 0.05
    done
    return 1
}

gen_conf() { # file step chain
    local step=$2 cap=1000 redis="" other="" log=""
    [ "$step" -lt 8 ] || cap=3000
    [ "$step" != 2 ] || redis="redis: { enabled = true; host = \"127.0.0.1\"; port = 1; };"
    case $step in
    4) other=other ;;
    5) other=other2 ;;
    6 | 7 | 8) other=$GEN_LONG ;;
    esac
    [ -z "$other" ] || other=", { name = \"$other\"; path_prefix = \"/other\"; limit = \"50/h\"; }"
    [ "$step" -lt 7 ] ||
        log=", { name = \"log\"; path_prefix = \"/log\"; limit = \"100/h\"; algorithm = \"sliding_log\"; }"
    cat > "$1" <<CONF
# written by $NAME, chain $3, step $step
shm: { name = "/rltest-$RUN_ID-$3"; capacity = $cap; };
$redis
rules = ( { name = "api"; path_prefix = "/api"; limit = "2/h"; }$other$log );
CONF
}

GEN_STEPS=("" base "redis on" "redis off" "rule added" "rule renamed" "name lengthened"
    "algorithm added" "capacity changed")
# What -t must say before each step is applied: the table is replaced (state carried) or fits.
GEN_PLAN=("" "does not exist yet" "carries its live entries over" "fits" "fits" "fits"
    "carries its live entries over" "carries its live entries over" "carries its live entries over")

gen_instance() { # id: a fresh instance directory with the files lighttpd serves
    mkdir -p "$T/$1/www/api" "$T/$1/www/other" "$T/$1/www/log"
    echo a > "$T/$1/www/api/x"
    echo o > "$T/$1/www/other/x"
    echo l > "$T/$1/www/log/x"
    touch "$T/$1/filter.log"
}

# Nobody of ID maps a generation that lost its name.
gen_no_stale_mapping() { # id chain
    local p
    for p in $(srv_pids "$1"); do
        if grep -q "/dev/shm/rltest-$RUN_ID-$2 (deleted)" "/proc/$p/maps" 2>/dev/null; then
            return 1
        fi
    done
    return 0
}

gen_matrix() { # mode
    local mode=$1 chain="$SRV_KIND-$1" cur=${SRV_KIND}${1}0 next step plan out rc s c i
    local serial=0 replaced=0 n want
    gen_instance "$cur"
    gen_conf "$T/$cur/rl.conf" 1 "$chain"
    CONFS+=("$T/$cur/rl.conf")
    out=$("$RL_FILTER" -t -c "$T/$cur/rl.conf" 2>&1) || true
    check "$chain 1 base: -t says ${GEN_PLAN[1]}" grep -q -- "${GEN_PLAN[1]}" <<< "$out"
    srv_start "$cur" || return 0
    s="$(srv_req "$cur" /api/x 127.0.0.50) $(srv_req "$cur" /api/x 127.0.0.50) $(srv_req "$cur" /api/x 127.0.0.50)"
    check "$chain 1 base: client 127.0.0.50 spent ($s)" test "$s" = "200 200 429"
    for ((step = 2; step <= 8; step++)); do
        plan=${GEN_PLAN[step]}
        next=$cur
        if [ "$mode" = start ]; then
            serial=$((serial + 1))
            next=${SRV_KIND}${mode}$serial
            gen_instance "$next"
            CONFS+=("$T/$next/rl.conf")
        fi
        gen_conf "$T/$next/rl.conf" "$step" "$chain"
        rc=0
        out=$("$RL_FILTER" -t -c "$T/$next/rl.conf" 2>&1) || rc=$?
        check "$chain $step ${GEN_STEPS[step]}: -t exits 0 and says '$plan'" \
            bash -c '[ "$1" = 0 ] && grep -q -- "$2" <<< "$3"' _ "$rc" "$plan" "$out"
        case $mode in
        reload)
            srv_hup "$cur" || fail "$chain $step: not every process logged the reload: $(tail -n 3 "$T/$cur/filter.log")"
            ;;
        restart)
            srv_stop "$cur"
            srv_start "$cur" || return 0
            ;;
        start)
            srv_start "$next" || return 0
            ;;
        esac
        s=$(srv_req "$next" /api/x 127.0.0.50)
        c=$(srv_req "$next" /api/x "127.0.0.$((100 + step))")
        # Exactly one process replaced the table, when -t said it would; none otherwise.
        n=$(cat "$T"/${SRV_KIND}${mode}*/filter.log | grep -c "replaced generation .* live entries carried over" || true)
        want=$replaced
        [ "$plan" = fits ] || want=$((replaced + 1))
        check "$chain $step: the log shows $((n - replaced)) replacement(s) of the table, $((want - replaced)) expected" test "$n" = "$want"
        replaced=$n
        check "$chain $step ${GEN_STEPS[step]}: the spent client is still refused ($s), a fresh one admitted ($c)" \
            test "$s" = 429 -a "$c" = 200
        if [ "$mode" = reload ]; then
            check "$chain $step: every process moved off a replaced generation" gen_no_stale_mapping "$cur" "$chain"
        fi
        if [ "$mode" = start ]; then
            s=$(srv_req "$cur" /api/x 127.0.0.50)
            check "$chain $step: the old instance, still running, refuses the spent client too ($s)" test "$s" = 429
            srv_stop "$cur"
            cur=$next
        fi
        check "$chain $step: no process failed to open the stores" \
            bash -c '! grep -h "cannot open the limiter\|keeping the running configuration\|exited with status" "$@"' _ "$T"/${SRV_KIND}${mode}*/filter.log
    done
    # The one change that does reset a rule: its limit (its keys carry another fingerprint).
    out=$("$RL_FILTER" -t -c "$T/$cur/rl.conf" 2>&1) || true
    check "$chain: -t counts the live state it keeps" grep -q 'rule "api": [0-9]* live entries, kept' <<< "$out"
    sed -i 's|limit = "2/h"|limit = "3/h"|' "$T/$cur/rl.conf"
    out=$("$RL_FILTER" -t -c "$T/$cur/rl.conf" 2>&1) || true
    check "$chain: -t says a changed limit starts the rule's clients fresh" \
        grep -q 'rule "api": [0-9]* live entries under another limit or algorithm are not read' <<< "$out"
    sed -i 's|limit = "3/h"|limit = "2/h"|' "$T/$cur/rl.conf"
    check "$chain: no private name of a maker left in /dev/shm" \
        bash -c '! ls /dev/shm | grep -q -- "^rltest-$1-$2\.new-"' _ "$RUN_ID" "$chain"
    srv_stop "$cur"
    "$RL_FILTER" --shm-remove -c "$T/$cur/rl.conf" >/dev/null 2>&1 || true
    check "$chain: nothing of the chain left in /dev/shm after --shm-remove" \
        bash -c '! ls /dev/shm | grep -q -- "^rltest-$1-$2"' _ "$RUN_ID" "$chain"
    for i in "$T"/${SRV_KIND}${mode}*/filter.log; do
        check "$chain: no sanitizer report in ${i#"$T"/}" no_sanitizer_report "$i"
    done
}
