#!/usr/bin/env bash
# test_paths.sh -- canonical paths and uncharged admin paths, through the shipped recipes
#
# Config: "login" (path_prefix "/login", 2/m, path_case_insensitive) and "site" (every path,
# 20/m), clients told apart by X-Forwarded-For from the trusted 127.0.0.1.
#   L  lighttpd from etc/lighttpd/authorizer.conf (its http-parseopts, the authorizer pool and
#      the admin responder mount), serving a static file "login", with
#      server.force-lowercase-filenames (a server that serves paths case-insensitively)
#   A  Apache from etc/apache/authnz-fcgi-provider.conf and authnz-fcgi-vhost.conf, both at
#      server level (the main server), in front of the prefork daemon, same file
#   D  ratelimit-filter --decide
#   C  the binary as a plain CGI program (REQUEST_URI from the environment; and without it,
#      SCRIPT_NAME + PATH_INFO, normalised but not decoded again)
# For each alias of /login in the table, a fresh client sends: the alias, /login, the alias.
# The third is never 200 (the limit holds), at most two of the three are; aliases the server
# is known to serve as /login must be served (so they are real aliases). Then 100 health
# requests from one client through L and through A are all answered 200 by the endpoint with
# its JSON, and the pool's decision count does not move (the authorizer never decided them);
# paths next to or under an admin path are decided exactly once and served by the site.
# Bounded waits; everything started is stopped by pid on exit.
set -euo pipefail
NAME=test_paths
source "$(dirname "$0")/lib/lib.sh"
need lighttpd apache2 curl python3
MODS=/usr/lib/apache2/modules

conf() { # file, shm suffix, more shm settings
    cat > "$1" <<CONF
shm: { name = "/rltest-$RUN_ID-$2"; capacity = 1000; ${3:-} };
identity: { trusted_proxies = ["127.0.0.1/32"]; };
rules = (
  { name = "login"; path_prefix = "/login"; limit = "2/m"; path_case_insensitive = true; },
  { name = "site"; path_prefix = "/"; limit = "20/m"; }
);
CONF
    CONFS+=("$1")
}
site() { # dir
    mkdir -p "$1/www"
    echo "login page" > "$1/www/login"
    echo "index page" > "$1/www/index.html"
}

# ---- L: lighttpd, the authorizer recipe ------------------------------------------------------
d=$T/L; site "$d"; conf "$d/rl.conf" L
LP=$(pick_port)
{
    echo "server.bind = \"127.0.0.1\""
    echo "server.port = $LP"
    echo "server.document-root = \"$d/www\""
    echo "server.pid-file = \"$d/lighttpd.pid\""
    echo "server.errorlog = \"$d/error.log\""
    echo "server.force-lowercase-filenames = \"enable\""
    echo "index-file.names = ( \"index.html\" )"
    sed -e "s|/usr/local/bin/ratelimit-filter -c /etc/ratelimit-filter/ratelimit.conf|$RL_FILTER -c $d/rl.conf|" \
        -e "s|/run/lighttpd/|$d/|" \
        -e "s|/var/log/lighttpd/ratelimit-filter.log|$d/filter.log|" \
        -e "s|/etc/ratelimit-filter/ratelimit-headers.lua|$ROOT/etc/lighttpd/ratelimit-headers.lua|" \
        -e "s|\"max-procs\"\( *\)=> [0-9]*|\"max-procs\"\1=> 1|" \
        "$ROOT/etc/lighttpd/authorizer.conf"
} > "$d/lighttpd.conf"
grep -q "$d/ratelimit-admin.sock" "$d/lighttpd.conf" || { fail "L: the recipe has no admin mount"; finish; }
lighttpd -tt -f "$d/lighttpd.conf" >/dev/null 2>"$d/tt.err" || {
    fail "L: lighttpd rejected the recipe: $(cat "$d/tt.err")"; finish; }
lighttpd -D -f "$d/lighttpd.conf" 2>>"$d/lighttpd.stderr" &
PIDS+=("$!")
wait_port "$LP" 10 || { fail "L: lighttpd not listening on $LP"; finish; }

# ---- A: Apache, the mod_authnz_fcgi recipe ---------------------------------------------------
a=$T/A; site "$a"; conf "$a/rl.conf" A
DP=$(pick_port)
start_daemon "127.0.0.1:$DP" "$a/rl.conf" 2 "$a/filter.log" || finish
sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/authnz-fcgi-provider.conf" > "$a/provider.conf"
sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/authnz-fcgi-vhost.conf" > "$a/recipe.conf"
AP=$(pick_port)
{
    echo "ServerName 127.0.0.1"
    echo "Listen 127.0.0.1:$AP"
    echo "PidFile $a/httpd.pid"
    echo "DefaultRuntimeDir $a"
    echo "ErrorLog $a/error.log"
    echo "LogLevel warn"
    echo "User www-data"
    echo "Group www-data"
    echo "Timeout 10"
    for m in mpm_prefork authz_core authn_core authz_user mime dir alias env authnz_fcgi \
        headers proxy proxy_fcgi; do
        echo "LoadModule ${m}_module $MODS/mod_$m.so"
    done
    echo "DocumentRoot $a/www"
    echo "DirectoryIndex index.html"
    echo "TypesConfig /etc/mime.types"
    echo "<Directory $a/www>"
    echo "    Require all granted"
    echo "</Directory>"
    echo "Include $a/provider.conf"
    echo "Include $a/recipe.conf"
} > "$a/httpd.conf"
apache2 -t -f "$a/httpd.conf" >/dev/null 2>"$a/t.err" || {
    fail "A: apache2 rejected the recipe: $(cat "$a/t.err")"; finish; }
# Its own session: on SIGTERM Apache signals its whole process group.
setsid apache2 -f "$a/httpd.conf" -DFOREGROUND 2>>"$a/apache.stderr" &
PIDS+=("$!")
wait_port "$AP" 10 || { fail "A: apache2 not listening on $AP: $(tail -n 3 "$a/error.log")"; finish; }

# shm.user: run as root, --decide creates no segment without one (test_shm_owner.sh).
D=$T/D; mkdir -p "$D"; conf "$D/rl.conf" D "user = \"$(id -un)\";"

# ---- the table -----------------------------------------------------------------------------
# target | served as /login by lighttpd (1: must be) | by Apache (1: must be)
# A target starting with '!' is sent as the raw request target (curl --request-target).
ALIASES=(
    "//login|1|1"
    "/./login|1|1"
    "/a/../login|1|1"
    "/../login|1|0"
    "//./a/..//login|1|1"
    "/%6cogin|1|1"
    "/%6C%6F%67%69%6E|1|1"
    "/%2e%2e/login|1|0"
    "/x/%2e%2e/login|1|1"
    "/.%2e/login|1|0"
    "/login?x=1|1|1"
    "/LOGIN|1|0"
    "/Login|1|0"
    "/login/|1|0"
    "/login;x|0|0"
    "/login%3bx|0|0"
    "/login%2f..|0|0"
    "/%2flogin|0|0"
    "/login%00|0|0"
    "/login%zz|0|0"
    "!/login#x|1|0"
)
XFF_N=0
code_of() { # server port, target, client, out file
    local t=$2
    if [ "${t:0:1}" = "!" ]; then
        hcurl -o "$4" -H "X-Forwarded-For: $3" --request-target "${t:1}" "http://127.0.0.1:$1/"
    else
        hcurl -o "$4" --path-as-is -H "X-Forwarded-For: $3" "http://127.0.0.1:$1$t"
    fi
}
run_table() { # tag, port, column (2 lighttpd, 3 apache)
    local tag=$1 port=$2 col=$3 row t must c1 c2 c3 n ok=0
    for row in "${ALIASES[@]}" "!http://127.0.0.1:$port/login|1|1"; do
        IFS='|' read -r t lserved aserved <<<"$row"
        must=$([ "$col" = 2 ] && echo "$lserved" || echo "$aserved")
        XFF_N=$((XFF_N + 1))
        local client="192.0.2.$XFF_N"
        c1=$(code_of "$port" "$t" "$client" "$T/$tag.b1")
        c2=$(code_of "$port" /login "$client" "$T/$tag.b2")
        c3=$(code_of "$port" "$t" "$client" "$T/$tag.b3")
        n=0
        for c in $c1 $c2 $c3; do [ "$c" = 200 ] && n=$((n + 1)); done
        if [ "$c3" = 200 ] || [ "$n" -gt 2 ]; then
            fail "$tag: $t, /login, $t -> $c1 $c2 $c3: the limit of 2 did not hold"
            continue
        fi
        if [ "$must" = 1 ] && { [ "$c1" != 200 ] || ! grep -qx "login page" "$T/$tag.b1"; }; then
            fail "$tag: $t is not served as /login ($c1: $(head -c 80 "$T/$tag.b1"))"
            continue
        fi
        ok=$((ok + 1))
        echo "  $tag: $t, /login, $t -> $c1 $c2 $c3"
    done
    check "$tag: the limit of /login holds for all $((${#ALIASES[@]} + 1)) aliases ($ok held)" \
        test "$ok" = $((${#ALIASES[@]} + 1))
}

run_table L "$LP" 2
run_table A "$AP" 3
check "L: a raw /login%2f.. is refused by lighttpd (400), as by the filter" \
    test "$(hcurl -o /dev/null --path-as-is "http://127.0.0.1:$LP/login%2f..")" = 400

# ---- D: --decide ----------------------------------------------------------------------------
decide() { # target, client: "allowed status"
    "$RL_FILTER" --decide -c "$D/rl.conf" --client "$2" --path "$1" 2>>"$D/decide.err" |
        python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(str(d["allowed"]).lower(), d["status"])'
}
ok=0; i=0
for row in "${ALIASES[@]}" "!http://example.com/login|1|1"; do
    IFS='|' read -r t _ _ <<<"$row"
    t=${t#!}
    i=$((i + 1))
    r1=$(decide "$t" "198.51.100.$i"); r2=$(decide /login "198.51.100.$i"); r3=$(decide "$t" "198.51.100.$i")
    if [ "${r3%% *}" = false ]; then ok=$((ok + 1)); else fail "D: $t, /login, $t -> $r1 / $r2 / $r3"; fi
done
check "D: --decide refuses the third request for all $i aliases ($ok)" test "$ok" = "$i"
check "D: --decide says bad-path 400 for %2F" bash -c \
    '"$1" --decide -c "$2" --client 198.51.100.250 --path /login%2f.. | grep -q "\"verdict\":\"bad-path\",\"status\":400"' \
    _ "$RL_FILTER" "$D/rl.conf"

# ---- C: plain CGI ---------------------------------------------------------------------------
cgi() { # target, client: the status code
    env -i REQUEST_URI="$1" REMOTE_ADDR="$2" REQUEST_METHOD=GET GATEWAY_INTERFACE=CGI/1.1 \
        "$RL_FILTER" -c "$D/rl.conf" </dev/null 2>>"$D/cgi.err" | tr -d '\r' |
        sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1
}
ok=0; i=0
for row in "${ALIASES[@]}" "!http://example.com/login|1|1"; do
    IFS='|' read -r t _ _ <<<"$row"
    t=${t#!}
    i=$((i + 1))
    c1=$(cgi "$t" "203.0.113.$i"); c2=$(cgi /login "203.0.113.$i"); c3=$(cgi "$t" "203.0.113.$i")
    if [ -n "$c3" ] && [ "$c3" != 200 ]; then ok=$((ok + 1)); else fail "C: $t, /login, $t -> $c1 $c2 $c3"; fi
done
check "C: CGI refuses the third request for all $i aliases ($ok)" test "$ok" = "$i"
check "C: CGI answers 400 to an encoded slash" test "$(cgi /login%2f.. 203.0.113.250)" = 400
# Without REQUEST_URI the path is SCRIPT_NAME + PATH_INFO, which the server decoded already:
# normalised, not decoded a second time.
cgi_halves() { # script name, path info, client
    env -i SCRIPT_NAME="$1" PATH_INFO="$2" REMOTE_ADDR="$3" REQUEST_METHOD=GET \
        GATEWAY_INTERFACE=CGI/1.1 "$RL_FILTER" -c "$D/rl.conf" </dev/null 2>>"$D/cgi.err" |
        tr -d '\r' | sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1
}
codes="$(cgi_halves /x/.. //login 203.0.113.251) $(cgi /login 203.0.113.251) $(cgi_halves /login /. 203.0.113.251)"
check "C: SCRIPT_NAME + PATH_INFO is normalised: /x/.. //login, /login, /login /. -> $codes" \
    test "$codes" = "200 200 429"
check "C: ... and not decoded again (/%6cogin there is not /login)" \
    test "$(cgi_halves /%6cogin "" 203.0.113.251)" = 200

# ---- admin paths are never charged ----------------------------------------------------------
requests() { # port: the pool's decision count
    hcurl -o "$T/stats.json" "http://127.0.0.1:$1/api/health/rate-limiter/stats" >/dev/null
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$T/stats.json"
}
health100() { # tag, port
    local tag=$1 port=$2 before after codes good
    before=$(requests "$port")
    mkdir -p "$T/$tag-h"
    codes=$(curl -s --noproxy '*' --max-time 60 -o "$T/$tag-h/#1.json" -w '%{http_code}\n' \
        "http://127.0.0.1:$port/api/health/rate-limiter?[1-100]" | sort | uniq -c | xargs)
    check "$tag: 100 health requests from one client all 200 ($codes)" test "$codes" = "100 200"
    good=$(python3 -c 'import glob,json,sys
n=0
for f in glob.glob(sys.argv[1] + "/*.json"):
    try: n += json.load(open(f))["status"] in ("ok", "degraded")
    except Exception: pass
print(n)' "$T/$tag-h")
    check "$tag: all 100 answered by the endpoint (its JSON: $good)" test "$good" = 100
    after=$(requests "$port")
    check "$tag: no decision was made for them (requests $before -> $after)" test "$before" = "$after"
    check "$tag: an alias of the health path is served by the endpoint too" \
        bash -c 'c=$(curl -s --noproxy "*" --max-time 10 --path-as-is -o "$2" -w "%{http_code}" "$1"); [ "$c" = 200 ] && grep -q "\"status\"" "$2"' \
        _ "http://127.0.0.1:$port/api//health/./rate-limiter" "$T/$tag-alias.json"
}
health100 L "$LP"
health100 A "$AP"

# A path next to an admin path, or under one, is not an admin path: decided exactly once (not
# a second time by the admin responder) and served by the site (404 here).
near_admin() { # tag, port
    local tag=$1 port=$2 b p c codes=""
    b=$(requests "$port")
    for p in /api/health/rate-limiterX /api/health/rate-limiter/x /metricsX /metrics/x \
        /api/health/rate-limiter/../../../login-x; do
        c=$(hcurl -o /dev/null --path-as-is "http://127.0.0.1:$port$p")
        codes+="$c "
    done
    check "$tag: near-admin paths are served by the site ($codes)" test "$codes" = "404 404 404 404 404 "
    check "$tag: ... each decided once ($b -> $(requests "$port"))" test "$(requests "$port")" = $((b + 5))
}
near_admin L "$LP"
near_admin A "$AP"

for f in "$d/filter.log" "$a/filter.log"; do
    check "no sanitizer report in $(basename "$(dirname "$f")")/filter.log" no_sanitizer_report "$f"
done
finish
