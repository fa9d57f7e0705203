#!/usr/bin/env bash
# test_security.sh -- Redis credentials never reach a log; admin endpoints (when they exist)
#
# A redis-server with requirepass and an ACL user; three lighttpd authorizer pools: one with a
# wrong password, one with the right password (default user), one with an ACL user and a wrong
# password. Each takes 10 requests, and the CLI checks (-t) run on each configuration. Then
# every log this test produced (filters, lighttpd, Redis, -t output) is searched for every
# password: none may appear. The wrong-password pools still answer (shared memory decides)
# and say why in the log ("auth failed"), without the password.
#
# Admin endpoints: two more pools in the responder role (right password; ACL user) allow admin
# only to 127.0.0.2/32. From 127.0.0.1 -- bare, or naming 127.0.0.2 in X-Forwarded-For, which
# an untrusted peer cannot -- health, stats, metrics and POST test are 403; from 127.0.0.2
# they are 200. What they answered is searched for every password and the ACL user's too.
set -euo pipefail
NAME=test_security
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli curl

GOOD="s3cret-$RUN_ID-good"
BAD="s3cret-$RUN_ID-wrong"
USERPW="s3cret-$RUN_ID-user"
start_redis --requirepass "$GOOD"
REDISCLI_AUTH=$GOOD rcli ACL SETUSER rluser on ">$USERPW" '~*' '&*' +@all >/dev/null

pool() { # name, redis credentials (config text)[, role, more config text]
    local d=$T/$1
    mkdir -p "$d/www"; echo x > "$d/www/x"
    cat > "$d/rl.conf" <<CONF
shm: { name = "/rltest-$RUN_ID-$1"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "rltest:$RUN_ID:";
         connect_timeout_ms = 2000; command_timeout_ms = 2000; $2 }; # generous: not what is tested
${4:-}
rules = ( { name = "sec"; path_prefix = "/"; limit = "100/m"; } );
CONF
    CONFS+=("$d/rl.conf")
    "$RL_FILTER" -t -c "$d/rl.conf" > "$d/t.log" 2>&1 || true
    start_pool "$d" "${3:-authorizer}" "$d/rl.conf"
    local codes="" i
    for i in 1 2 3 4 5 6 7 8 9 10; do codes+="$(hcurl -o /dev/null "http://127.0.0.1:$LPORT/x") "; done
    check "$1: 10 requests answered ($codes)" test "$codes" = "$(printf '200 %.0s' {1..10})"
}
pool wrong "password = \"$BAD\";"
pool right "password = \"$GOOD\";"
pool acl "user = \"rluser\"; password = \"$BAD\";"
pool acluser "user = \"rluser\"; password = \"$USERPW\";"
ADM='admin: { allow = ["127.0.0.2/32"]; };'
pool admright "password = \"$GOOD\";" responder "$ADM"
PORT_RIGHT=$LPORT
pool admacl "user = \"rluser\"; password = \"$USERPW\";" responder "$ADM"
PORT_ACL=$LPORT

# ---- admin endpoints: 403 outside admin.allow, 200 inside; no credential in what they say ----
H=/api/health/rate-limiter
admin_get() { # port, from, path, out[, curl args...]
    local port=$1 from=$2 path=$3 out=$4; shift 4
    hcurl -o "$out" --interface "$from" "$@" "http://127.0.0.1:$port$path"
}
TESTREQ='{"client":"192.0.2.1","path":"/x","method":"GET"}'
for p in admright admacl; do
    if [ "$p" = admright ]; then port=$PORT_RIGHT; else port=$PORT_ACL; fi
    out=$T/$p/admin; mkdir -p "$out"
    n=0
    for path in "$H" "$H/stats" /metrics "$H/test"; do
        n=$((n + 1))
        args=(); [ "$path" != "$H/test" ] || args=(-X POST -H 'Content-Type: application/json' --data "$TESTREQ")
        c=$(admin_get "$port" 127.0.0.1 "$path" "$out/out$n.body" "${args[@]}")
        check "$p: 127.0.0.1 outside admin.allow: ${args[0]:+POST }$path -> 403 ($c $(cat "$out/out$n.body"))" \
            test "$c $(cat "$out/out$n.body")" = '403 {"error":"forbidden"}'
        c=$(admin_get "$port" 127.0.0.1 "$path" "$out/xff$n.body" -H 'X-Forwarded-For: 127.0.0.2' \
            -H 'Forwarded: for=127.0.0.2' "${args[@]}")
        check "$p: 127.0.0.1 naming 127.0.0.2 in X-Forwarded-For (untrusted): $path -> 403 ($c)" test "$c" = 403
        c=$(admin_get "$port" 127.0.0.2 "$path" "$out/in$n.body" "${args[@]}")
        check "$p: 127.0.0.2 inside admin.allow: ${args[0]:+POST }$path -> 200 ($c)" test "$c" = 200
    done
    check "$p: health from inside is ok, Redis configured" \
        grep -q '"status":"ok".*"configured":true' "$out/in1.body"
    check "$p: stats from inside counted the 10 requests" grep -q '"requests":10,' "$out/in2.body"
    check "$p: metrics from inside say Redis is up" grep -qx 'ratelimit_redis_up 1' "$out/in3.body"
    check "$p: test from inside decided" grep -q '"verdict":"allowed"' "$out/in4.body"
    check "$p: the 403s are logged" grep -q "warn: admin: 403 client=127.0.0.1 path=\"$H\" not in admin.allow" "$T/$p/filter.log"
    leaks=""
    for pw in "$GOOD" "$BAD" "$USERPW" rluser; do
        f=$(grep -lF -- "$pw" "$out"/* || true)
        [ -z "$f" ] || leaks+="$pw in $f; "
    done
    check "$p: no password (nor the ACL user's name) in what health, stats, metrics, test answered" test -z "$leaks"
    [ -z "$leaks" ] || echo "  leaked: $leaks"
done

check "wrong password: the filter says auth failed" grep -q 'auth failed' "$T/wrong/filter.log"
check "ACL user, wrong password: the filter says auth failed" grep -q 'auth failed' "$T/acl/filter.log"
check "right password: Redis decides (the key is in Redis)" \
    test "$(REDISCLI_AUTH=$GOOD rcli eval "return #redis.call('keys', ARGV[1])" 0 "rltest:$RUN_ID:{127.0.0.1}:sec:*")" = 1
check "right password: no Redis error in the log" bash -c '! grep -q "redis" "$1"' _ "$T/right/filter.log"
check "ACL user: no Redis error in the log" bash -c '! grep -q "redis" "$1"' _ "$T/acluser/filter.log"

logs=$(find "$T" -type f \( -name '*.log' -o -name '*.stderr' \) | sort)
nlogs=$(echo "$logs" | grep -c .)
leaks=""
for pw in "$GOOD" "$BAD" "$USERPW"; do
    # shellcheck disable=SC2086
    f=$(grep -lF -- "$pw" $logs || true)
    [ -z "$f" ] || leaks+="$pw in $f; "
done
check "no password in any of the $nlogs logs" test -z "$leaks"
[ -z "$leaks" ] || echo "  leaked: $leaks"
for p in wrong right acl acluser admright admacl; do
    check "$p: no sanitizer report" no_sanitizer_report "$T/$p/filter.log"
done
echo "FIGURE: admin: 4 endpoints x 2 pools: 16 x 403 outside admin.allow (8 of them naming an allowed client in X-Forwarded-For), 8 x 200 inside; no credential in any answer"
echo "FIGURE: credentials: 3 passwords (right, wrong, ACL user) searched in $nlogs logs: ${leaks:-none found}"
finish
