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
# TODO(admin endpoints): when /api/health/rate-limiter, stats and /metrics land, add: a client
# outside the admin CIDRs gets 403 (or 404) from each, one inside gets 200.
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

pool() { # name, redis credentials (config text)
    local d=$T/$1
    mkdir -p "$d/www"; echo x > "$d/www/x"
    cat > "$d/rl.conf" <<CONF
shm: { name = "/rltest-$RUN_ID-$1"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "rltest:$RUN_ID:";
         connect_timeout_ms = 200; command_timeout_ms = 200; $2 };
rules = ( { name = "sec"; path_prefix = "/"; limit = "100/m"; } );
CONF
    CONFS+=("$d/rl.conf")
    "$RL_FILTER" -t -c "$d/rl.conf" > "$d/t.log" 2>&1 || true
    start_pool "$d" authorizer "$d/rl.conf"
    local codes="" i
    for i in 1 2 3 4 5 6 7 8 9 10; do codes+="$(hcurl -o /dev/null "http://127.0.0.1:$LPORT/x") "; done
    check "$1: 10 requests answered ($codes)" test "$codes" = "$(printf '200 %.0s' {1..10})"
}
pool wrong "password = \"$BAD\";"
pool right "password = \"$GOOD\";"
pool acl "user = \"rluser\"; password = \"$BAD\";"
pool acluser "user = \"rluser\"; password = \"$USERPW\";"

check "wrong password: the filter says auth failed" grep -q 'auth failed' "$T/wrong/filter.log"
check "ACL user, wrong password: the filter says auth failed" grep -q 'auth failed' "$T/acl/filter.log"
check "right password: Redis decides (the key is in Redis)" \
    test "$(REDISCLI_AUTH=$GOOD rcli exists "rltest:$RUN_ID:{127.0.0.1}:sec")" = 1
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
for p in wrong right acl acluser; do
    check "$p: no sanitizer report" no_sanitizer_report "$T/$p/filter.log"
done
echo "FIGURE: credentials: 3 passwords (right, wrong, ACL user) searched in $nlogs logs: ${leaks:-none found}"
finish
