#!/usr/bin/env bash
# test_nginx.sh -- the filter behind nginx auth_request, with the shipped etc/nginx/auth-request.conf
#
# nginx (own config, 127.0.0.1, free port) asks the prefork daemon on a unix socket via
# auth_request for every request; 8 requests from one client give exactly 5 x 200 (the static
# page, RateLimit and X-RateLimit-* headers) then 3 x 429, answered by the named location
# since auth_request itself would turn the 429 into 500. The refusal is then compared with
# lighttpd's: a lighttpd authorizer pool on the same configuration (so the same shared-memory
# table: the client is already refused there) must give the same Content-Type, the same
# rate-limit headers (digits aside: the seconds may have moved on) and the same body. Last,
# what the recipe cannot carry over, as the MANUAL lists it: problem+json, a rule's own
# status and body, the deny list's 403.
# Bounded waits, cleanup by pid.
set -euo pipefail
NAME=test_nginx
source "$(dirname "$0")/lib/lib.sh"
need nginx lighttpd curl

# The prefork daemon on $1/rl.sock with $1/rl.conf, and nginx in front of it with the
# recipe, serving $1/www on a free port: NP.
serve() {
    local d=$1
    mkdir -p "$d/www" "$d/tmp"
    echo "hello from nginx" > "$d/www/index.html"
    start_daemon "$d/rl.sock" "$d/rl.conf" 2 "$d/filter.log" || finish
    chmod 666 "$d/rl.sock" # nginx workers run as nobody; the recipe's 0660 assumes a shared group
    sed -e "s|fastcgi_pass 127.0.0.1:9000;|fastcgi_pass unix:$d/rl.sock;|" \
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
}

d=$T/N
mkdir -p "$d"
write_conf "$d/rl.conf" nginx 5/m ""
serve "$d"

codes=""
for i in 1 2 3 4 5 6 7 8; do codes+="$(hcurl -o "$d/b$i" -D "$d/h$i" "http://127.0.0.1:$NP/index.html") "; done
check "8 requests -> 5 x 200 then 3 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 429 "
check "200 carries the page" grep -q "hello from nginx" "$d/b1"
check "200 RateLimit ($(hdr "$d/h1" RateLimit))" bash -c '[[ $1 =~ ^\"nginx\"\;r=4\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
check "200 X-RateLimit-Limit: 5" test "$(hdr "$d/h1" X-RateLimit-Limit)" = 5
check "200 X-RateLimit-Remaining: 4" test "$(hdr "$d/h1" X-RateLimit-Remaining)" = 4
check "200 keeps the page's Content-Type ($(hdr "$d/h1" Content-Type))" test "$(hdr "$d/h1" Content-Type)" = text/html
check "429 Retry-After >= 1 ($(hdr "$d/h6" Retry-After))" test "$(hdr "$d/h6" Retry-After)" -ge 1
check "429 RateLimit r=0" bash -c '[[ $1 =~ ^\"nginx\"\;r=0\;t=[0-9]+$ ]]' _ "$(hdr "$d/h6" RateLimit)"
check "429 RateLimit-Policy" test "$(hdr "$d/h6" RateLimit-Policy)" = '"nginx";q=5;w=60'
check "429 body" grep -Eq '^Too Many Requests: retry in [0-9]+ s$' "$d/b6"
check "429 Content-Type: $(hdr "$d/h6" Content-Type)" test "$(hdr "$d/h6" Content-Type)" = "text/plain; charset=utf-8"
check "429 X-RateLimit-Limit: 5" test "$(hdr "$d/h6" X-RateLimit-Limit)" = 5
check "429 X-RateLimit-Remaining: 0" test "$(hdr "$d/h6" X-RateLimit-Remaining)" = 0
v=$(hdr "$d/h6" X-RateLimit-Reset)
check "429 X-RateLimit-Reset >= 1 ($v)" test "${v:-0}" -ge 1
check "429 Cache-Control: no-store" test "$(hdr "$d/h6" Cache-Control)" = no-store

# ---- the same refusal from lighttpd --------------------------------------------------------
# A lighttpd FastCGI authorizer pool on the same configuration: the same shared-memory table,
# so this client is refused there too, and the two answers can be set side by side.
LP=$(pick_port)
cp "$ROOT/etc/lighttpd/ratelimit-headers.lua" "$d/copy.lua"
cat > "$d/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $LP
server.document-root = "$d/www"
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/lighttpd-error.log"
server.breakagelog = "$d/lighttpd-filter.log"
server.modules += ( "mod_fastcgi", "mod_magnet" )
magnet.attract-response-start-to = ( "$d/copy.lua" )
fastcgi.server = ( "/" => (( "bin-path" => "$RL_FILTER -c $d/rl.conf", "socket" => "$d/l.sock",
    "mode" => "authorizer", "check-local" => "disable", "max-procs" => 1 )))
CONF
lighttpd -D -f "$d/lighttpd.conf" 2>>"$d/lighttpd.stderr" &
PIDS+=("$!")
wait_port "$LP" 5 || { fail "lighttpd not listening on $LP"; finish; }
code=$(hcurl -o "$d/lb" -D "$d/lh" "http://127.0.0.1:$LP/index.html")
check "lighttpd refuses the same client too ($code)" test "$code" = 429
same() { # header: nginx's value is lighttpd's, the seconds aside (they may have moved on)
    local n l
    n=$(hdr "$d/h6" "$1" | sed -E "$2"); l=$(hdr "$d/lh" "$1" | sed -E "$2")
    check "429 $1 as lighttpd's (nginx \"$n\", lighttpd \"$l\")" test -n "$l" -a "$n" = "$l"
}
for h in Content-Type RateLimit-Policy X-RateLimit-Limit X-RateLimit-Remaining Cache-Control; do
    same "$h" ""
done
same RateLimit 's/;t=[0-9]+$/;t=N/'
same Retry-After 's/^[1-9][0-9]*$/N/'
same X-RateLimit-Reset 's/^[1-9][0-9]*$/N/'
check "429 body as lighttpd's (seconds aside)" test "$(sed -E 's/[0-9]+/N/g' "$d/b6")" = "$(sed -E 's/[0-9]+/N/g' "$d/lb")"
check "no sanitizer report (lighttpd's filter)" no_sanitizer_report "$d/lighttpd-filter.log"

# ---- what nginx cannot carry over (MANUAL.md, "Running under nginx") ----------------------
e=$T/L
mkdir -p "$e"
cat > "$e/rl.conf" <<CONF
# written by $NAME: refusals nginx does not pass on as the filter gives them
shm: { name = "/rltest-$RUN_ID-limits"; capacity = 1000; };
headers: { problem_json = true; };
access: { deny = [ "127.0.0.9/32" ]; };
rules = ( { name = "pj"; path_prefix = "/p"; limit = "1/m"; },
          { name = "st"; path_prefix = "/s"; limit = "1/m"; status = 503; body = "custom\\n"; } );
CONF
CONFS+=("$e/rl.conf")
serve "$e"
hcurl -o /dev/null "http://127.0.0.1:$NP/p" >/dev/null
code=$(hcurl -o "$e/pb" -D "$e/ph" "http://127.0.0.1:$NP/p")
check "problem_json: still 429 text/plain with the default body ($code, $(hdr "$e/ph" Content-Type))" \
    bash -c '[ "$1" = 429 ] && [ "$2" = "text/plain; charset=utf-8" ] && grep -Eq "^Too Many Requests: retry in [0-9]+ s$" "$3"' \
    _ "$code" "$(hdr "$e/ph" Content-Type)" "$e/pb"
hcurl -o /dev/null "http://127.0.0.1:$NP/s" >/dev/null
code=$(hcurl -o "$e/sb" "http://127.0.0.1:$NP/s")
check "a rule's status 503 and body: nginx answers 500 ($code)" test "$code" = 500
code=$(hcurl -o "$e/db" -D "$e/dh" --interface 127.0.0.9 "http://127.0.0.1:$NP/p")
check "deny-listed: nginx's own 403 page ($code, $(hdr "$e/dh" Content-Type))" \
    test "$code $(hdr "$e/dh" Content-Type)" = "403 text/html"
check "no sanitizer report (second daemon)" no_sanitizer_report "$e/filter.log"

check "the filter logged the refusals" test "$(grep -c 'info: 429 client=127.0.0.1' "$d/filter.log")" = 3
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
finish
