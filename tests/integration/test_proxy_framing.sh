#!/usr/bin/env bash
# test_proxy_framing.sh -- proxy mode against a backend that answers with every framing HTTP/1.1
# allows, and some it does not, on one kept connection
#
# A scripted backend (lib/framing_backend.py, one answer per query) behind ONE filter process
# (lighttpd, max-procs 1), in a row: Content-Length; interim 100 and 103 answers before the
# final one (not passed on); a chunked body with extensions and a trailer; a body framed by
# the connection's close; an HTTP/1.0 answer; "Connection: close"; HEAD with a Content-Length
# and no body; 204. Each must reach the client with its status and exact body. The connection
# is kept across the answers that allow it and a new one is opened after those that end it.
# A kept connection the backend closed without saying so is replaced without the client
# noticing, for a GET and for a POST whose body must still arrive whole. An upload of 16 MiB
# to a backend that sends "100 Continue" and then waits before it reads arrives whole (the
# interim answer, taken while the body is still going out, must not stop it); one the backend
# refuses at once (413, then it closes) gets that 413. A garbage answer and one with two
# different Content-Lengths are 502s. About 5 s.
set -euo pipefail
NAME=test_proxy_framing
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl python3

start_scripted_backend framing_backend
F=$T/F; mkdir -p "$F"
write_conf "$F/rl.conf" framing 100000/m "proxy: { backend = \"http://127.0.0.1:$BP\"; timeout_ms = 10000; };"
start_pool "$F" responder "$F/rl.conf" 1
U="http://127.0.0.1:$LPORT/x"

n=0
get() { # query, expected status, expected body, curl options...
    local q=$1 want=$2 body=$3 c got
    shift 3
    n=$((n + 1))
    c=$(hcurl -o "$T/out.$n" -D "$T/h.$n" "$@" "$U?$q")
    got=$(cat "$T/out.$n")
    check "#$n ?$q -> $want ($c), body \"$body\" (\"$got\")" test "$c" = "$want" -a "$got" = "$body"
}
C0=$(grep -c '^conn ' "$BLOG" || true) # wait_port's own
conns() { echo $(($(grep -c '^conn ' "$BLOG" || true) - C0)); }

get cl 200 hello
get interim 200 after-interim
check "the interim answers are not passed on" test -z "$(grep -i '^Link:' "$T/h.$n" || true)"
get chunked 200 "chunked body"
get cl 200 hello
check "one connection for the four answers ($(conns))" test "$(conns)" = 1
get until-close 200 "until close"
get http10 200 http10
get conn-close 200 conn-close
get cl 200 hello
check "a new connection after each of the three that end it ($(conns))" test "$(conns)" = 4
c=$(hcurl -o /dev/null -D "$T/head.h" -I "$U?cl")
check "HEAD -> 200 ($c) with the backend's head (its Content-Length: 1000 and no body)" \
    test "$c" = 200 -a "$(hdr "$T/head.h" X-Mode)" = head -a "$(hdr "$T/head.h" Content-Length)" = 1000
get nocontent 204 ""
get cl 200 hello
check "the HEAD and 204 kept the connection ($(conns))" test "$(conns)" = 4

get idle-close 200 idle-close
sleep 0.3
get cl 200 hello
check "a GET on a connection closed meanwhile went on a new one ($(conns))" test "$(conns)" = 5
get idle-close 200 idle-close
sleep 0.3
head -c 3000 /dev/urandom | base64 -w0 > "$T/post"
c=$(hcurl -o "$T/post.out" -X POST --data-binary "@$T/post" "$U?echo")
check "a POST on a connection closed meanwhile: 200 ($c), its body whole, on a new connection ($(conns))" \
    test "$c" = 200 -a "$(cmp -s "$T/post" "$T/post.out" && echo same)" = same -a "$(conns)" = 6
get echo 200 ""
check "Host is the client's: $(hdr "$T/h.$n" X-Host)" test "$(hdr "$T/h.$n" X-Host)" = "127.0.0.1:$LPORT"

head -c 16777216 /dev/urandom > "$T/big"
want="16777216 $(sha256sum "$T/big" | cut -d' ' -f1)"
c=$(hcurl --max-time 30 -o "$T/big.out" -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/big" "$U?continue-upload")
check "16 MiB upload after an interim 100 Continue: 200 ($c), the backend got it whole" \
    test "$c" = 200 -a "$(cat "$T/big.out")" = "$want"
c=$(hcurl --max-time 30 -o "$T/big.out" -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/big" "$U?refuse-upload")
check "16 MiB upload refused at once by the backend: its 413 ($c)" \
    test "$c" = 413 -a "$(cat "$T/big.out")" = "too large"
get cl 200 hello

get garbage 502 "Bad Gateway: the backend failed"
get two-cl 502 "Bad Gateway: the backend failed"
get cl 200 hello
check "the 502s are logged" grep -q "error: 502: backend .* failed for \"/x?garbage\": the backend's answer is not HTTP" "$F/filter.log"
check "the backend got each request once ($(grep -c '^req ' "$BLOG"))" \
    test "$(grep -c '^req ' "$BLOG")" = 22
check "no sanitizer report" no_sanitizer_report "$F/filter.log"
finish
