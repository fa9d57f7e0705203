#!/usr/bin/env bash
# test_apache.sh -- the filter under Apache 2.4, with the shipped recipes etc/apache/*.conf
#
#   A  mod_authnz_fcgi -> the prefork daemon over TCP, the recipe included as its two files
#      say: authnz-fcgi-provider.conf at server level, authnz-fcgi-vhost.conf inside a
#      <VirtualHost 127.0.0.1:PORT> (the provider inside the VirtualHost is refused by
#      apache2 -t, which is why there are two files): 8 requests from one client give exactly
#      5 x 200 (the static page, RateLimit headers copied by mod_headers) then 3 x 429 with
#      Retry-After and the RateLimit headers; then, for that refused client, the admin
#      endpoints answer (health and stats JSON, the POST test's decision, Prometheus metrics)
#      and 20 health requests are all 200 without a decision (stats' requests unchanged); a
#      second VirtualHost without the include is not limited
#   B  mod_proxy_fcgi -> the daemon in proxy mode -> a lighttpd + CGI echo backend: a 1 MiB
#      binary POST (NUL bytes included) comes back identical; method, URI (byte for byte),
#      headers and X-Forwarded-For/Forwarded reach the backend; a 404 stays 404; a slow
#      backend gives 504, a stopped one 502; past the limit 429 without the backend
#   C  mod_cgi: the binary as a plain CGI program, one process per request sharing shared
#      memory: 7 requests give exactly 5 x 200 then 2 x 429
# Each Apache is started by hand (lib/apache.sh: apache2 -f CONF -DFOREGROUND, User www-data) on a
# free 127.0.0.1 port below 32768; every wait is bounded; everything is stopped by pid on exit.
set -euo pipefail
NAME=test_apache
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/apache.sh"
need apache2 lighttpd curl perl cmp python3
# ---- A: mod_authnz_fcgi, the two files as their comments say ---------------------------------
d=$T/A; mkdir -p "$d"
write_conf "$d/rl.conf" authnz 5/m ""
DP=$(pick_port)
start_daemon "127.0.0.1:$DP" "$d/rl.conf" 2 "$d/filter.log"
sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/authnz-fcgi-provider.conf" > "$d/provider.conf"
sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/authnz-fcgi-vhost.conf" > "$d/vhost.conf"
check "A: the provider file defines the provider" grep -q "^AuthnzFcgiDefineProvider authnz RL fcgi://127.0.0.1:$DP/" "$d/provider.conf"
AP=$(pick_port)
AP2=$(pick_port); while [ "$AP2" = "$AP" ]; do AP2=$(pick_port); done
# The provider at server level, the site part in one VirtualHost; another without it.
cat > "$d/recipe.conf" <<CONF
Include $d/provider.conf
Listen 127.0.0.1:$AP2
<VirtualHost 127.0.0.1:$AP>
    Include $d/vhost.conf
</VirtualHost>
<VirtualHost 127.0.0.1:$AP2>
</VirtualHost>
CONF
start_apache "$d" "$AP" "$d/recipe.conf" "authnz_fcgi headers proxy proxy_fcgi"
wait_port "$AP2" 10 || fail "A: apache2 not listening on the second VirtualHost's $AP2"
# The one-file way (everything inside the VirtualHost) is what Apache refuses.
printf '<VirtualHost 127.0.0.1:%s>\n    Include %s\n    Include %s\n</VirtualHost>\n' \
    "$AP" "$d/provider.conf" "$d/vhost.conf" > "$d/wrong.conf"
sed "s|^Include $d/recipe.conf\$|Include $d/wrong.conf|" "$d/httpd.conf" > "$d/httpd-wrong.conf"
check "A: the provider inside a VirtualHost is refused by apache2 -t" bash -c \
    '! apache2 -t -f "$1" >/dev/null 2>"$2" && grep -q "AuthnzFcgiDefineProvider cannot occur within <VirtualHost> section" "$2"' \
    _ "$d/httpd-wrong.conf" "$d/wrong.err"
codes=""
for i in 1 2 3 4 5 6 7 8; do
    codes+="$(hcurl -o "$d/b$i" -D "$d/h$i" "http://127.0.0.1:$AP/") "
done
check "A: authnz 8 requests -> 5 x 200 then 3 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 429 "
check "A: 200 carries the page" grep -q "hello from apache" "$d/b1"
check "A: 200 RateLimit copied by mod_headers ($(hdr "$d/h1" RateLimit))" bash -c '[[ $1 =~ ^\"authnz\"\;r=4\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
check "A: 200 RateLimit-Policy copied" test "$(hdr "$d/h1" RateLimit-Policy)" = '"authnz";q=5;w=60'
check "A: 200 X-RateLimit-Remaining: 4" test "$(hdr "$d/h1" X-RateLimit-Remaining)" = 4
check "A: 429 Retry-After >= 1 ($(hdr "$d/h6" Retry-After))" test "$(hdr "$d/h6" Retry-After)" -ge 1
check "A: 429 RateLimit r=0" bash -c '[[ $1 =~ ^\"authnz\"\;r=0\;t=[0-9]+$ ]]' _ "$(hdr "$d/h6" RateLimit)"
check "A: 429 body from the filter" grep -Eq '^Too Many Requests: retry in [0-9]+ s$' "$d/b6"
check "A: no mod_authnz_fcgi error (UserExpr resolved)" bash -c '! grep -q "authnz_fcgi:error" "$1"' _ "$d/error.log"

# The admin endpoints of the VirtualHost, for the client the limit now refuses.
U="http://127.0.0.1:$AP"
stat_requests() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$1" 2>/dev/null || echo "?"; }
c=$(hcurl -o "$d/stats1" "$U/api/health/rate-limiter/stats")
check "A: stats -> 200 JSON with the 8 decisions ($c, requests $(stat_requests "$d/stats1"))" \
    test "$c $(stat_requests "$d/stats1")" = "200 8"
c=$(hcurl -o "$d/health" -D "$d/hh" "$U/api/health/rate-limiter")
check "A: health -> 200 {\"status\":\"ok\" ($c)" bash -c '[ "$1" = 200 ] && grep -q "^{\"status\":\"ok\"" "$2"' _ "$c" "$d/health"
check "A: health is application/json" test "$(hdr "$d/hh" Content-Type)" = application/json
c=$(hcurl -o "$d/test" -X POST -d '{"client":"192.0.2.1","path":"/x"}' "$U/api/health/rate-limiter/test")
check "A: POST test -> 200 with its decision ($c)" bash -c '[ "$1" = 200 ] && grep -q "\"verdict\":\"allowed\"" "$2"' _ "$c" "$d/test"
c=$(hcurl -o "$d/metrics" -D "$d/hm" "$U/metrics")
check "A: metrics -> 200 Prometheus text ($c)" bash -c '[ "$1" = 200 ] && grep -q "^# TYPE ratelimit_requests_total counter" "$2"' _ "$c" "$d/metrics"
check "A: metrics is text/plain; version=0.0.4" bash -c '[[ $1 == "text/plain; version=0.0.4"* ]]' _ "$(hdr "$d/hm" Content-Type)"
codes=$(curl -s --noproxy '*' --max-time 60 -o /dev/null -w '%{http_code}\n' "$U/api/health/rate-limiter?[1-20]" | sort | uniq -c | xargs)
check "A: 20 health requests from the refused client all 200 ($codes)" test "$codes" = "20 200"
hcurl -o "$d/stats2" "$U/api/health/rate-limiter/stats" >/dev/null
check "A: ... none of them decided (requests $(stat_requests "$d/stats1") -> $(stat_requests "$d/stats2"))" \
    test "$(stat_requests "$d/stats2")" = 8
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(hcurl -o /dev/null "http://127.0.0.1:$AP2/") "; done
check "A: the VirtualHost without the include is not limited ($codes)" test "$codes" = "200 200 200 200 200 200 200 "

# ---- B: mod_proxy_fcgi -> proxy mode -> backend -----------------------------------------------
d=$T/B; mkdir -p "$d"
BP=$(pick_port)
start_backend "$d" "$BP"
write_conf "$d/rl.conf" proxied 10/m "proxy: { backend = \"http://127.0.0.1:$BP\"; connect_timeout_ms = 500; timeout_ms = 1000; };"
DP=$(pick_port)
start_daemon "127.0.0.1:$DP" "$d/rl.conf" 2 "$d/filter.log"
sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/proxy-fcgi.conf" > "$d/recipe.conf"
AP=$(pick_port)
start_apache "$d" "$AP" "$d/recipe.conf" "proxy proxy_fcgi"
U="http://127.0.0.1:$AP"

head -c 1048576 /dev/urandom > "$d/body"
printf 'a\0b\0\0c' >> "$d/body"
c=$(hcurl -o "$d/echo" -D "$d/h1" -X POST -H 'Content-Type: application/x-test' -H 'X-Custom: v1' \
    -H 'X-Forwarded-For: 198.51.100.9' --data-binary "@$d/body" "$U/echo.cgi")
check "B: POST 1 MiB binary -> 200 ($c)" test "$c" = 200
check "B: the body comes back byte for byte" cmp -s "$d/body" "$d/echo"
check "B: backend got POST" test "$(hdr "$d/h1" X-Echo-Method)" = POST
check "B: backend got Content-Type" test "$(hdr "$d/h1" X-Echo-Content-Type)" = application/x-test
check "B: backend got X-Custom" test "$(hdr "$d/h1" X-Req-X_CUSTOM)" = v1
check "B: X-Forwarded-For appended ($(hdr "$d/h1" X-Req-X_FORWARDED_FOR))" test "$(hdr "$d/h1" X-Req-X_FORWARDED_FOR)" = "198.51.100.9, 127.0.0.1"
check "B: Forwarded for=127.0.0.1;proto=http" test "$(hdr "$d/h1" X-Req-FORWARDED)" = "for=127.0.0.1;proto=http"
check "B: response carries RateLimit" bash -c '[[ $1 =~ ^\"proxied\"\;r=9\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
check "B: response carries X-RateLimit-Limit" test "$(hdr "$d/h1" X-RateLimit-Limit)" = 10
uri='/echo.cgi/a%20b/c?q=a%2Fb&r=%C3%A9;s=/../x&&'
c=$(hcurl --path-as-is -o /dev/null -D "$d/h2" -X PUT "$U$uri")
check "B: PUT passes ($c)" test "$c" = 200
check "B: method kept" test "$(hdr "$d/h2" X-Echo-Method)" = PUT
check "B: URI kept byte for byte ($(hdr "$d/h2" X-Echo-Uri))" test "$(hdr "$d/h2" X-Echo-Uri)" = "$uri"
c=$(hcurl -o /dev/null "$U/missing.html")
check "B: a backend 404 stays 404 ($c)" test "$c" = 404
c=$(hcurl -o /dev/null -D "$d/h4" "$U/echo.cgi?status=418")
check "B: a backend 418 stays 418 ($c)" test "$c" = 418
c=$(hcurl -o "$d/b5" "$U/echo.cgi?sleep=4")
check "B: a slow backend -> 504 ($c)" test "$c" = 504
check "B: 504 body" grep -q "Gateway Timeout" "$d/b5"
stop_pid "$BPID"
c=$(hcurl -o "$d/b6" "$U/echo.cgi")
check "B: backend down -> 502 ($c)" test "$c" = 502
check "B: 502 body" grep -q "Bad Gateway: the backend refused the connection" "$d/b6"
codes=""
for i in 1 2 3 4 5; do codes+="$(hcurl -o /dev/null -D "$d/hl" "$U/echo.cgi") "; done
check "B: requests 7..11 -> 502 x 4 then 429, the backend not asked ($codes)" test "$codes" = "502 502 502 502 429 "
check "B: 429 Retry-After" test "$(hdr "$d/hl" Retry-After)" -ge 1
check "B: 502 and 504 logged" bash -c 'grep -q "error: 502: backend" "$1" && grep -q "error: 504: backend" "$1"' _ "$d/filter.log"

# ---- C: mod_cgi ------------------------------------------------------------------------------
d=$T/C; mkdir -p "$d"
write_conf "$d/rl.conf" cgi 5/m ""
chmod 644 "$d/rl.conf"
sed -e "s|/etc/ratelimit-filter/ratelimit.conf|$d/rl.conf|" -e "s|/usr/local/bin/ratelimit-filter|$RL_FILTER|" \
    "$ROOT/etc/apache/cgi.conf" > "$d/recipe.conf"
AP=$(pick_port)
start_apache "$d" "$AP" "$d/recipe.conf" "cgi"
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(hcurl -o "$d/b$i" -D "$d/h$i" "http://127.0.0.1:$AP/limited/x?i=$i") "; done
check "C: CGI 7 requests -> 5 x 200 then 2 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 "
check "C: 200 carries RateLimit" bash -c '[[ $1 =~ ^\"cgi\"\;r=4\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
check "C: 429 Retry-After" test "$(hdr "$d/h6" Retry-After)" -ge 1

for f in "$T"/*/filter.log "$T"/*/error.log; do
    [ -e "$f" ] && check "no sanitizer report in $(basename "$(dirname "$f")")/$(basename "$f")" no_sanitizer_report "$f"
done
finish
