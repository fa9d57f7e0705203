#!/usr/bin/env bash
# test_nginx.sh -- the filter behind nginx auth_request, with the shipped etc/nginx/auth-request.conf
#
# nginx (own config, 127.0.0.1, free port) asks the prefork daemon on a unix socket via
# auth_request for every request; 8 requests from one client give exactly 5 x 200 (the static
# page, RateLimit headers) then 3 x 429 with Retry-After and RateLimit, answered by the named
# location since auth_request itself would turn the 429 into 500. Bounded waits, cleanup by pid.
set -euo pipefail
NAME=test_nginx
source "$(dirname "$0")/lib/lib.sh"
need nginx curl

d=$T/N; mkdir -p "$d/www" "$d/tmp"
echo "hello from nginx" > "$d/www/index.html"
write_conf "$d/rl.conf" nginx 5/m ""
SOCK=$d/rl.sock
start_daemon "$SOCK" "$d/rl.conf" 2 "$d/filter.log"
chmod 666 "$SOCK" # nginx workers run as nobody; the recipe's 0660 assumes the group is shared
sed -e "s|fastcgi_pass 127.0.0.1:9000;|fastcgi_pass unix:$SOCK;|" \
    -e "s|include fastcgi_params;|include /etc/nginx/fastcgi_params;|" \
    "$ROOT/etc/nginx/auth-request.conf" > "$d/recipe.conf"
NP=$(pick_port)
cat > "$d/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    fastcgi_temp_path $d/tmp/fastcgi;
    proxy_temp_path $d/tmp/proxy;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$NP;
        root $d/www;
        include $d/recipe.conf;
    }
}
CONF
nginx -t -c "$d/nginx.conf" -p "$d" >/dev/null 2>"$d/t.err" || { fail "nginx -t: $(cat "$d/t.err")"; finish; }
nginx -c "$d/nginx.conf" -p "$d" 2>>"$d/nginx.stderr" &
PIDS+=("$!")
wait_port "$NP" 5 || { fail "nginx not listening on $NP"; finish; }

codes=""
for i in 1 2 3 4 5 6 7 8; do codes+="$(hcurl -o "$d/b$i" -D "$d/h$i" "http://127.0.0.1:$NP/index.html") "; done
check "8 requests -> 5 x 200 then 3 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 429 "
check "200 carries the page" grep -q "hello from nginx" "$d/b1"
check "200 RateLimit ($(hdr "$d/h1" RateLimit))" bash -c '[[ $1 =~ ^\"nginx\"\;r=4\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
check "429 Retry-After >= 1 ($(hdr "$d/h6" Retry-After))" test "$(hdr "$d/h6" Retry-After)" -ge 1
check "429 RateLimit r=0" bash -c '[[ $1 =~ ^\"nginx\"\;r=0\;t=[0-9]+$ ]]' _ "$(hdr "$d/h6" RateLimit)"
check "429 RateLimit-Policy" test "$(hdr "$d/h6" RateLimit-Policy)" = '"nginx";q=5;w=60'
check "429 body" grep -Eq '^Too Many Requests: retry in [0-9]+ s$' "$d/b6"
check "the filter logged the refusals" test "$(grep -c 'info: 429 client=127.0.0.1' "$d/filter.log")" = 3
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
finish
