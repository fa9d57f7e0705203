#!/usr/bin/env bash
# test_proxy_xff.sh -- X-Forwarded-For through the proxy responder, trusted and untrusted peers
#
# A lighttpd + CGI echo backend; a front lighttpd spawning 2 filters as responders that
# forward to it, with identity.trusted_proxies = ["127.0.0.1/32"] and a rule of 2/m. curl
# connects from 127.0.0.1 (trusted: its X-Forwarded-For names the client) or 127.0.0.2 (not
# trusted: the header names nobody). Proves: from the trusted peer two clients named in
# X-Forwarded-For each get their own 2 (then 429, logged with that client), and the backend
# receives their X-Forwarded-For with the peer appended (and Forwarded: for=PEER); with two
# hops the right-most untrusted one is the client; from the untrusted peer three different
# X-Forwarded-For values share the peer's one allowance, and the backend still gets the header
# as sent plus the peer.
set -euo pipefail
NAME=test_proxy_xff
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl perl

B=$T/backend; mkdir -p "$B"
BP=$(pick_port)
start_backend "$B" "$BP"
F=$T/front; mkdir -p "$F/www"
write_conf "$F/rl.conf" xff 2/m "proxy: { backend = \"http://127.0.0.1:$BP\"; timeout_ms = 5000; };
identity: { trusted_proxies = [\"127.0.0.1/32\"]; header = \"x-forwarded-for\"; };"
start_pool "$F" responder "$F/rl.conf"
U="http://127.0.0.1:$LPORT"

req() { # id, from, X-Forwarded-For: the status; the answer's headers in $T/h.ID
    hcurl -o /dev/null -D "$T/h.$1" --interface "$2" -H "X-Forwarded-For: $3" "$U/echo.cgi?n=$1"
}
seen() { hdr "$T/h.$1" X-Req-X_FORWARDED_FOR; } # what the backend received, request N
logged() { # fixed string: within 2 s in the filters' log
    local i
    for ((i = 0; i < 40; i++)); do grep -qF -- "$1" "$F/filter.log" && return 0; sleep 0.05; done
    return 1
}

# ---- trusted peer: each named client has its own allowance ---------------------------------
c1="$(req 1 127.0.0.1 203.0.113.1) $(req 2 127.0.0.1 203.0.113.1)"
c2="$(req 3 127.0.0.1 203.0.113.2) $(req 4 127.0.0.1 203.0.113.2)"
c1+=" $(req 5 127.0.0.1 203.0.113.1)"
c2+=" $(req 6 127.0.0.1 203.0.113.2)"
check "trusted: client 203.0.113.1 gets its 2 ($c1)" test "$c1" = "200 200 429"
check "trusted: client 203.0.113.2 gets its own 2 ($c2)" test "$c2" = "200 200 429"
check "trusted: the refusals name each client" \
    bash -c "$(declare -f logged); F=$F; logged '429 client=203.0.113.1 ' && logged '429 client=203.0.113.2 '"
check "trusted: the backend got X-Forwarded-For with the peer appended ($(seen 1))" \
    test "$(seen 1)" = "203.0.113.1, 127.0.0.1"
check "trusted: and for the second client ($(seen 3))" test "$(seen 3)" = "203.0.113.2, 127.0.0.1"
check "trusted: the backend got Forwarded: for=127.0.0.1;proto=http ($(hdr "$T/h.1" X-Req-FORWARDED))" \
    test "$(hdr "$T/h.1" X-Req-FORWARDED)" = "for=127.0.0.1;proto=http"
check "trusted: a refused request never reached the backend" test -z "$(seen 5)"
c=$(req 7 127.0.0.1 "198.51.100.9, 203.0.113.6")
check "trusted, two hops: the right-most untrusted one is the client (fresh allowance: $c)" test "$c" = 200
check "trusted, two hops: the backend got them both and the peer ($(seen 7))" \
    test "$(seen 7)" = "198.51.100.9, 203.0.113.6, 127.0.0.1"
c="$(req 8 127.0.0.1 "6.6.6.6, 203.0.113.6") $(req 9 127.0.0.1 "7.7.7.7, 203.0.113.6")"
check "trusted, two hops: another left hop does not make another client ($c)" test "$c" = "200 429"

# ---- untrusted peer: one shared allowance, whatever it says --------------------------------
c="$(req 10 127.0.0.2 203.0.113.3) $(req 11 127.0.0.2 203.0.113.4) $(req 12 127.0.0.2 203.0.113.5)"
check "untrusted: three X-Forwarded-For clients share the peer's 2 ($c)" test "$c" = "200 200 429"
check "untrusted: the refusal names the peer" logged '429 client=127.0.0.2 '
check "untrusted: the backend got the header as sent plus the peer ($(seen 10))" \
    test "$(seen 10)" = "203.0.113.3, 127.0.0.2"
c=$(hcurl -o /dev/null --interface 127.0.0.2 "$U/echo.cgi")
check "untrusted: without the header too, the same spent allowance ($c)" test "$c" = 429
# ---- one header, two spellings: the backend gets only the value the decision read ----------
# lighttpd passes both "X-Key" and "X_Key" as HTTP_X_KEY; the limiter reads the first, so the
# backend must not get the second as another X-Key line (a key-based limit stepped around).
c=$(hcurl -o /dev/null -D "$T/h.20" -H "X-Forwarded-For: 203.0.113.20" -H "X-Key: first" \
    -H "X_Key: second" "$U/echo.cgi?n=20")
check "two spellings of one header: admitted ($c), the backend got only the first ($(hdr "$T/h.20" X-Req-X_KEY))" \
    test "$c" = 200 -a "$(hdr "$T/h.20" X-Req-X_KEY)" = first
check "  ... the second is logged as dropped" \
    logged 'request parameter HTTP_X_KEY is not the first of its header'
check "no sanitizer report" no_sanitizer_report "$F/filter.log"
finish
