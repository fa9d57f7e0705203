#!/usr/bin/env bash
# test_lighttpd_proxy.sh -- lighttpd mod_fastcgi in responder mode, the filter proxying to a
# backend, with the shipped etc/lighttpd/proxy.conf
#
# A lighttpd + CGI echo backend; a front lighttpd spawning the filter (bin-path) in responder
# mode. Proves: a 1 MiB binary POST comes back identical; the request URI reaches the backend
# byte for byte; a 10 MiB upload comes back identical; a chunked backend answer of 3 MiB comes
# through byte for byte; a 404 stays 404; RateLimit headers on proxied answers; with a limit of 10,
# 7 more GETs give exactly 200 x 5 then 429 x 2; refused requests never reach the backend.
set -euo pipefail
NAME=test_lighttpd_proxy
source "$(dirname "$0")/lib/lib.sh"
need lighttpd curl perl cmp

d=$T/L; mkdir -p "$d"
BP=$(pick_port)
start_backend "$d" "$BP"
write_conf "$d/rl.conf" lproxy 10/m "proxy: { backend = \"http://127.0.0.1:$BP\"; timeout_ms = 5000; };"
FP=$(pick_port)
{
    echo "server.bind = \"127.0.0.1\""
    echo "server.port = $FP"
    echo "server.document-root = \"$d\""
    echo "server.pid-file = \"$d/front.pid\""
    echo "server.errorlog = \"$d/front.log\""
    sed -e "s|/usr/local/bin/ratelimit-filter -c /etc/ratelimit-filter/ratelimit.conf|$RL_FILTER -c $d/rl.conf|" \
        -e "s|/run/lighttpd/ratelimit-filter.sock|$d/rl.sock|" \
        -e "s|/var/log/lighttpd/ratelimit-filter.log|$d/filter.log|" \
        -e 's|"max-procs"   => 4|"max-procs"   => 2|' "$ROOT/etc/lighttpd/proxy.conf"
} > "$d/front.conf"
lighttpd -tt -f "$d/front.conf" >/dev/null 2>"$d/tt.err" || { fail "lighttpd -tt: $(cat "$d/tt.err")"; finish; }
lighttpd -D -f "$d/front.conf" 2>>"$d/front.stderr" &
PIDS+=("$!")
wait_port "$FP" 5 || { fail "front lighttpd not listening on $FP"; finish; }
U="http://127.0.0.1:$FP"

head -c 1048576 /dev/urandom > "$d/body"
printf '\0\0end' >> "$d/body"
c=$(hcurl -o "$d/echo" -D "$d/h1" --data-binary "@$d/body" -H 'Content-Type: application/x-bin' "$U/echo.cgi")
check "POST 1 MiB binary -> 200 ($c)" test "$c" = 200
check "the body comes back byte for byte" cmp -s "$d/body" "$d/echo"
check "RateLimit on the proxied answer" bash -c '[[ $1 =~ ^\"lproxy\"\;r=9\;t=[0-9]+$ ]]' _ "$(hdr "$d/h1" RateLimit)"
uri='/echo.cgi/p%20q?a=b%20c&d=%C3%A9;e=/x'
hcurl -o /dev/null -D "$d/h2" "$U$uri" >/dev/null
check "URI byte for byte ($(hdr "$d/h2" X-Echo-Uri))" test "$(hdr "$d/h2" X-Echo-Uri)" = "$uri"
head -c 10485760 /dev/urandom > "$d/big"
c=$(hcurl -o "$d/bigecho" --max-time 60 --data-binary "@$d/big" -H 'Content-Type: application/x-bin' "$U/echo.cgi")
check "POST 10 MiB binary -> 200 ($c)" test "$c" = 200
check "the 10 MiB body comes back byte for byte" cmp -s "$d/big" "$d/bigecho"
perl -e 'my $p = join("", map { chr(($_ * 31 + 7) % 256) } 0 .. 7918); my $n = 3145728;
         for (my $l = $n; $l > 0; $l -= 7919) { print substr($p, 0, $l < 7919 ? $l : 7919) }' > "$d/gen.want"
curl -s --noproxy '*' --max-time 10 -o /dev/null -D "$d/hgb" "http://127.0.0.1:$BP/echo.cgi?gen=3145728"
check "the backend answers chunked ($(hdr "$d/hgb" Transfer-Encoding))" test "$(hdr "$d/hgb" Transfer-Encoding)" = chunked
c=$(hcurl -o "$d/gen.got" "$U/echo.cgi?gen=3145728")
check "chunked 3 MiB answer through the proxy -> 200 ($c), byte for byte" cmp -s "$d/gen.want" "$d/gen.got"
c=$(hcurl -o /dev/null "$U/nothing-here")
check "backend 404 stays 404 ($c)" test "$c" = 404
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(hcurl -o /dev/null -D "$d/hl" "$U/static.txt") "; done
check "7 more GETs -> 5 x 200 then 2 x 429 ($codes)" test "$codes" = "200 200 200 200 200 429 429 "
check "429 Retry-After" test "$(hdr "$d/hl" Retry-After)" -ge 1
stop_pid "$BPID"
c=$(hcurl -o "$d/b9" "$U/echo.cgi")
check "backend stopped: still 429, the backend is not asked ($c)" test "$c" = 429
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
finish
