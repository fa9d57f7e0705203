# cluster.sh -- a real Redis Cluster of 3 masters on 127.0.0.1 (source after lib.sh)
#
#   start_cluster [R]     3 masters and R (0, the default, or 1) replicas each: redis-server
#                         --cluster-enabled yes (cluster-require-full-coverage no: a master's
#                         death leaves the others serving) in $T/nI, joined with redis-cli
#                         --cluster create --cluster-replicas R; ready when every node says
#                         cluster_state:ok and every replica is in sync; ports in CPORTS (each
#                         with its bus port, +10000, free too), pids in CPIDS (and PIDS)
#                         With CLUSTER_PASS set: every node has requirepass and masterauth
#                         CLUSTER_PASS, and ccli and the create authenticate with it
#   ccli PORT ARGS...     redis-cli on one node, bounded to 10 s
#   cluster_seeds         the config list of seeds: "127.0.0.1:P1", "127.0.0.1:P2", ...
#   node_id PORT          the node's cluster id
#   slot_of KEY           the key's slot (CLUSTER KEYSLOT)
#   serves PORT SLOT      whether that node serves the slot

CPORTS=()
CPIDS=()
CLUSTER_PASS=${CLUSTER_PASS:-}
ccli() {
    local p=$1; shift
    if [ -n "$CLUSTER_PASS" ]; then
        REDISCLI_AUTH=$CLUSTER_PASS timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"
    else
        timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"
    fi
}

pick_cluster_port() { # a free port whose bus port (+10000) is free too, not already taken
    local p n q taken
    for ((n = 0; n < 50; n++)); do
        p=$(pick_port)
        taken=0
        for q in "${CPORTS[@]}"; do [ "$q" != "$p" ] || taken=1; done
        if [ "$taken" = 0 ] && port_free $((p + 10000)); then echo "$p"; return 0; fi
    done
    echo "no free port pair" >&2; return 1
}

start_cluster() { # [replicas per master, 0 or 1]
    local i p d ok reps=${1:-0} n=$((3 * (1 + ${1:-0}))) role auth=()
    [ -z "$CLUSTER_PASS" ] || auth=(--requirepass "$CLUSTER_PASS" --masterauth "$CLUSTER_PASS")
    for ((i = 1; i <= n; i++)); do
        d="$T/n$i"
        mkdir -p "$d"
        # A port taken by someone else between the pick and the bind: another one, 3 tries.
        for try in 1 2 3; do
            p=$(pick_cluster_port)
            rm -f "$d/nodes.conf"
            redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
                --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
                --cluster-require-full-coverage no \
                --save "" --appendonly no --dir "$d" --logfile "$d/redis.log" "${auth[@]}" \
                >/dev/null 2>&1 &
            PIDS+=($!)
            wait_port "$p" 10 && alive $! && break
            stop_pid $!
            [ "$try" != 3 ] || { fail "cluster node not listening on $p in 10 s"; finish; }
        done
        CPIDS+=($!)
        CPORTS+=("$p")
    done
    ${CLUSTER_PASS:+env REDISCLI_AUTH=$CLUSTER_PASS} timeout 30 redis-cli --cluster create \
        $(printf '127.0.0.1:%s ' "${CPORTS[@]}") \
        --cluster-replicas "$reps" --cluster-yes >"$T/create.out" 2>&1 ||
        { fail "redis-cli --cluster create: $(tail -n 3 "$T/create.out")"; finish; }
    for ((i = 0; i < 200; i++)); do
        ok=0
        for p in "${CPORTS[@]}"; do
            ccli "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || continue
            role=$(ccli "$p" ROLE 2>/dev/null | head -n 1)
            [ "$role" = master ] || ccli "$p" INFO replication | grep -q 'master_link_status:up' ||
                continue
            ok=$((ok + 1))
        done
        [ "$ok" = "$n" ] && return 0
        sleep 0.1
    done
    fail "the cluster is not ok (replicas in sync) in 20 s"
    finish
}

cluster_seeds() {
    local p out=""
    for p in "${CPORTS[@]}"; do out+="${out:+, }\"127.0.0.1:$p\""; done
    echo "$out"
}

serves() { # port slot: whether that node serves the slot (the ranges of its CLUSTER NODES line)
    local r a b
    for r in $(ccli "$1" CLUSTER NODES | awk '/myself/ {for (i = 9; i <= NF; i++) print $i}'); do
        [[ $r == \[* ]] && continue # a slot being migrated
        a=${r%-*}
        b=${r#*-}
        [ "$2" -ge "$a" ] && [ "$2" -le "$b" ] && return 0
    done
    return 1
}
node_id() { ccli "$1" CLUSTER MYID; }
slot_of() { ccli "${CPORTS[0]}" CLUSTER KEYSLOT "$1"; }

# Six users of a 5-per-window rule (path /u, the test's req) each get exactly 5 of 7, and
# their keys spread over MASTERS (>= 2) masters: the checks are named after $1.
cluster_users_exact() { # label
    local bad="" u n i p
    for u in u1 u2 u3 u4 u5 u6; do
        n=0
        for i in 1 2 3 4 5 6 7; do [ "$(req /u "$u")" = 200 ] && n=$((n + 1)); done
        [ "$n" = 5 ] || bad+=" $u:$n"
    done
    check "$1: 5 of 7 admitted for each of 6 users${bad:+ (got$bad)}" [ -z "$bad" ]
    MASTERS=0
    for p in "${CPORTS[@]}"; do
        [ "$(ccli "$p" --scan --pattern "${PREFIX}*:user:*" | wc -l)" -gt 0 ] && MASTERS=$((MASTERS + 1))
    done
    check "$1: the users' keys are on $MASTERS masters (>= 2)" [ "$MASTERS" -ge 2 ]
}
