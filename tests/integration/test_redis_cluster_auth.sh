#!/usr/bin/env bash
# test_redis_cluster_auth.sh -- a Redis Cluster whose nodes require a password
#
# Three masters with requirepass and masterauth (lib/cluster.sh, CLUSTER_PASS), and three
# lighttpd pools (authorizer, 1 process each) on them:
#   right   redis.password = the cluster's: users u1..u6 (rule keyed by X-User, 5/h,
#           on_redis_down "closed", so a 200 was decided by the cluster), 7 requests each:
#           exactly 5 admitted per user, their keys on at least 2 masters (every node was
#           authenticated: its own connection, its own AUTH); a request of two rules in two
#           slots (team 5/h by X-Team, user 2/h by X-User) refunded across masters: users
#           a1, a2, a3 of one team, 4 requests each, admitted 2, 2 and 1
#   wrong   a wrong redis.password: the rule on_redis_down "closed" refuses every request, the
#           rule on_redis_down "shm" admits from shared memory (its 3/h, exactly); the log
#           says "auth failed: WRONGPASS" for the cluster's slot map, and the stats (read from
#           a responder on the same configuration) name seeds with the time of their last error
#   none    no redis.password: the log says NOAUTH
# No log holds either password.
set -euo pipefail
NAME=test_redis_cluster_auth
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
CLUSTER_PASS="clu-$RUN_ID-pw"
source "$(dirname "$0")/lib/cluster.sh"
need lighttpd redis-server redis-cli curl

start_cluster
BADPW="clu-$RUN_ID-wrong"
PREFIX="rltest:$RUN_ID:"

pool() { # name, redis credentials (config text): starts it, LPORT
    local d=$T/$1
    mkdir -p "$d/www"
    for f in u t f; do echo "$f" > "$d/www/$f"; done
    cat > "$d/rl.conf" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-clauth-$1"; capacity = 1000; };
redis: { enabled = true; cluster = [ $(cluster_seeds) ]; prefix = "$PREFIX"; $2
         connect_timeout_ms = 500; command_timeout_ms = 1000; };
rules = (
  { name = "user";  path_prefix = "/u"; key = "header:X-User"; limit = "5/h"; on_redis_down = "closed"; },
  { name = "team";  path_prefix = "/t"; key = "header:X-Team"; limit = "5/h"; on_redis_down = "closed"; },
  { name = "tuser"; path_prefix = "/t"; key = "header:X-User"; limit = "2/h"; on_redis_down = "closed"; },
  { name = "fb";    path_prefix = "/f"; key = "header:X-User"; limit = "3/h"; on_redis_down = "shm"; }
);
CONF
    CONFS+=("$d/rl.conf")
    conf_ok "$d/rl.conf" "$1"
    start_pool "$d" authorizer "$d/rl.conf" 1
}
req() { # path, user, [team]: prints the status
    local h=(-H "X-User: $2")
    [ -z "${3:-}" ] || h+=(-H "X-Team: $3")
    hcurl -o /dev/null "${h[@]}" "http://127.0.0.1:$LPORT$1"
}

# ---- right -----------------------------------------------------------------------------------
pool right "password = \"$CLUSTER_PASS\";"
cluster_users_exact right
for u in a1 a2 a3; do
    [ "$(slot_of "$u")" != "$(slot_of T1)" ] || { fail "right: $u and T1 share a slot"; finish; }
done
got=""
for u in a1 a2 a3; do
    n=0
    for i in 1 2 3 4; do [ "$(req /t "$u" T1)" = 200 ] && n=$((n + 1)); done
    got+="$n "
done
check "right: team over two slots refunded on authenticated masters: 2 2 1 (got ${got% })" \
    [ "${got% }" = "2 2 1" ]

# ---- wrong, none -----------------------------------------------------------------------------
pool wrong "password = \"$BADPW\";"
codes=""
for i in 1 2 3; do codes+="$(req /u w1) "; done
check "wrong: on_redis_down closed refuses every request ($codes)" [ "$codes" = "429 429 429 " ]
codes=""
for i in 1 2 3 4; do codes+="$(req /f w1) "; done
check "wrong: on_redis_down shm decides from shared memory, 3/h exactly ($codes)" \
    [ "$codes" = "200 200 200 429 " ]
check "wrong: the log says the cluster refused the password" \
    grep -q "redis cluster: slot map: redis 127.0.0.1:[0-9]*: auth failed: WRONGPASS" "$T/wrong/filter.log"
# The authorizer only lets admin paths through: a responder on the same configuration (so the
# same statistics segment) answers them, as the MANUAL's "Admin behind an authorizer" has it.
WPORT=$LPORT
start_pool "$T/wrongadm" responder "$T/wrong/rl.conf" 1
hcurl -o "$T/wrong/stats.json" "http://127.0.0.1:$LPORT/api/health/rate-limiter/stats" >/dev/null
LPORT=$WPORT
errs=$(python3 -c 'import json,sys
print(sum(1 for n in json.load(open(sys.argv[1]))["redis"]["nodes"] if n["kind"] == "cluster" and (n["last_error_ms"] or 0) > 0))' "$T/wrong/stats.json" 2>/dev/null || echo 0)
check "wrong: the stats name seeds with the time of their last error ($errs)" [ "$errs" -ge 1 ]
pool none ""
check "none: on_redis_down closed refuses ($(req /u n1))" [ "$(req /u n1)" = 429 ]
check "none: the log says the cluster wants AUTH" grep -q "NOAUTH" "$T/none/filter.log"
check "no log holds a password" bash -c '! cat "$3"/{right,wrong,none}/{filter,error}.log \
    "$3"/{right,wrong,none}/lighttpd.stderr 2>/dev/null | grep -qF -e "$1" -e "$2"' _ "$CLUSTER_PASS" "$BADPW" "$T"
for d in right wrong none; do
    check "no sanitizer report in the $d pool's log" no_sanitizer_report "$T/$d/filter.log"
done
finish
