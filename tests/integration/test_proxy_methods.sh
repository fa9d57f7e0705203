#!/usr/bin/env bash
# test_proxy_methods.sh -- one filter process proxies a run of different methods and bodies in
# a row, each sent as its own
#
# The proxy keeps its connection and its request buffer for the life of the process and
# writes each request's head afresh (method, body length, target, headers), so nothing of one
# request may leak into the next. A lighttpd + echo.cgi backend; a front lighttpd spawning ONE
# filter process (max-procs 1: every request goes through the same handle). In a row:
# HEAD, GET, PUT with a body, DELETE, GET, POST with a body, HEAD, OPTIONS, POST without a
# body, GET, PATCH with a body, GET; each must reach the backend with its own method, body
# length and target (X-Echo-Method, X-Echo-Length, X-Echo-Uri), answer 200 and bring back the
# body it sent (a GET never the body before it); one connection to the backend for them all.
# About 3 s.
set -euo pipefail
NAME=test_proxy_methods
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl perl ss

B=$T/B; mkdir -p "$B"
BP=$(pick_port)
start_backend "$B" "$BP"
F=$T/F; mkdir -p "$F"
write_conf "$F/rl.conf" meth 100000/m "proxy: { backend = \"http://127.0.0.1:$BP\"; timeout_ms = 10000; };"
start_pool "$F" responder "$F/rl.conf" 1
U="http://127.0.0.1:$LPORT"
printf 'put-body\0with a NUL' > "$T/put"
printf 'post body, longer than the put one' > "$T/post"
printf 'p' > "$T/patch"

n=0
send() { # method, expected body length sent, curl options...
    local m=$1 len=$2 c got_m got_l got_u size
    shift 2
    n=$((n + 1))
    if [ "$m" = HEAD ]; then
        c=$(hcurl -o /dev/null -D "$T/h.$n" -I "$U/echo.cgi?n=$n")
    else
        c=$(hcurl -o "$T/out.$n" -D "$T/h.$n" -X "$m" "$@" "$U/echo.cgi?n=$n")
    fi
    got_m=$(hdr "$T/h.$n" X-Echo-Method) got_l=$(hdr "$T/h.$n" X-Echo-Length)
    got_u=$(hdr "$T/h.$n" X-Echo-Uri)
    check "#$n $m -> 200 ($c), the backend got $got_m with $got_l body bytes for $got_u" \
        test "$c" = 200 -a "$got_m" = "$m" -a "$got_l" = "$len" -a "$got_u" = "/echo.cgi?n=$n"
    if [ "$m" != HEAD ]; then
        size=$(stat -c %s "$T/out.$n")
        check "#$n $m: the body that came back is the one sent ($size bytes)" test "$size" = "$len"
    fi
}
send HEAD 0
send GET 0
send PUT "$(stat -c %s "$T/put")" --data-binary "@$T/put"
send DELETE 0
send GET 0
send POST "$(stat -c %s "$T/post")" --data-binary "@$T/post"
send HEAD 0
send OPTIONS 0
send POST 0 --data-binary ''
send GET 0
send PATCH 1 --data-binary "@$T/patch"
send GET 0
check "the PUT body came back byte for byte" cmp -s "$T/put" "$T/out.3"
conns=$(grep -c . <(ss -Htn state established "( dport = :$BP )") || true)
check "one filter process, one kept connection to the backend ($conns)" test "$conns" = 1
check "no sanitizer report" no_sanitizer_report "$F/filter.log"
finish
