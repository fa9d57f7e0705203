#!/usr/bin/env bash
# test_hostile.sh -- bad requests, table-driven, through lighttpd (authorizer pool) and as CGI
#
# Each row sends one hostile request and expects a status: lighttpd's own where lighttpd stops
# the request before the filter (431 for a header over its limit, 400 for bytes it refuses),
# the filter's where the request reaches it (200 allowed, 400 no usable REMOTE_ADDR, 414 a
# path over 4095 bytes). After every row a fresh client must still get 200 (the filter is
# answering), and at the end the filter processes are the ones from the start (no crash) and
# no log holds a sanitizer report. The lighttpd pool allows request headers up to 65535 bytes
# (server.max-request-field-size, its maximum) so that big headers do reach the filter.
#
# X-Forwarded-For from an untrusted peer (the first pool trusts no proxy: REMOTE_ADDR is the
# client) must not change the key: a client that spent its allowance stays refused with any
# X-Forwarded-For, and a second client naming the first in X-Forwarded-For is not refused.
#
# Trusted peers: two more pools trust 127.0.0.1/32 and 10.99.0.0/16, one reading
# X-Forwarded-For, one Forwarded, with a rule of 1/h. Each identity row first spends the
# expected key's one request (a request from 127.0.0.1 naming it, or from 127.0.0.1 bare for
# the peer itself), then sends the hostile header from 127.0.0.1: it must be refused (429)
# and the refusal logged with client=<the expected key>, the key MANUAL's walk gives (right to
# left: trusted hops skipped, the first untrusted one is the client; an unusable element stops
# the walk and the last accepted address, or the peer, is the client; 64 hops at most; a
# header over 8192 bytes is ignored). A wrong key would be a fresh one: 200, or another name
# in the log. From 127.0.0.3 (untrusted) the header changes nothing.
set -euo pipefail
NAME=test_hostile
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd curl perl

D=$T/p; mkdir -p "$D/www"; echo x > "$D/www/x"
write_conf "$D/rl.conf" hostile 3/h ""
LIGHTTPD_EXTRA='server.max-request-field-size = 65535' start_pool "$D" authorizer "$D/rl.conf"

# raw ADDR: send stdin as-is to lighttpd from ADDR; prints the status code (000: no answer).
raw() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0],
                                      LocalAddr => $ARGV[1], Timeout => 5) or do { print "000"; exit };
        binmode STDIN; local $/; my $req = <STDIN>; binmode $s; print $s $req;
        $SIG{ALRM} = sub { print "000"; exit }; alarm 5;
        my $line = <$s> // ""; print $line =~ m{^HTTP/1\.[01] (\d{3})} ? $1 : "000";' "$LPORT" "$1"
}
probe_n=0
row() { # description expected got; then a fresh client must get 200
    local p
    probe_n=$((probe_n + 1))
    p=$(hcurl -o /dev/null --interface "127.0.8.$probe_n" "http://127.0.0.1:$LPORT/x")
    check "$1: $3 (expected $2); the filter answers afterwards ($p)" test "$3" = "$2" -a "$p" = 200
}
U="http://127.0.0.1:$LPORT"
c=$(hcurl -o /dev/null --interface 127.0.8.250 "$U/x")
check "the pool answers ($c)" test "$c" = 200
PIDS_BEFORE=$(filter_pids "$D" | sort | tr '\n' ' ')
A=127.0.7.1

big() { head -c "$1" /dev/zero | tr '\0' a; }
hops() { local i; for ((i = 1; i <= $1; i++)); do printf '10.%d.%d.%d, ' $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255)); done; printf '192.0.2.1'; }

# ---- through lighttpd -------------------------------------------------------------------------
row "64 KiB header (lighttpd refuses over 65535)" 431 \
    "$(hcurl -o /dev/null --interface 127.0.7.10 -H "X-Big: $(big 65536)" "$U/x")"
row "60 KiB header reaches the filter" 200 \
    "$(hcurl -o /dev/null --interface 127.0.7.11 -H "X-Big: $(big 61440)" "$U/x")"
row "4000 X-Forwarded-For hops (~55 KiB), untrusted peer" 200 \
    "$(hcurl -o /dev/null --interface 127.0.7.12 -H "X-Forwarded-For: $(hops 4000)" "$U/x")"
row "invalid X-Forwarded-For and Forwarded values" 200 \
    "$(hcurl -o /dev/null --interface 127.0.7.13 -H 'X-Forwarded-For: 999.1.1.1, ::g, , "x' \
        -H 'Forwarded: for="[::1%eth0]:80";by=;for=unknown, for=_hidden' "$U/x")"
row "10 KiB API-key header" 200 \
    "$(hcurl -o /dev/null --interface 127.0.7.14 -H "X-Api-Key: $(big 10240)" -H "Authorization: Bearer $(big 10240)" "$U/x")"
row "path with %FF%FE (not UTF-8; lighttpd refuses the decoded bytes)" 400 \
    "$(hcurl -o /dev/null --interface 127.0.7.15 "$U/x%FF%FE?q=%FF")"
row "path with an encoded NUL (lighttpd refuses)" 400 \
    "$(hcurl -o /dev/null --interface 127.0.7.24 "$U/x%00y")"
row "raw 0xFF bytes in the path (lighttpd refuses)" 400 \
    "$(printf 'GET /x\xff\xfe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | raw 127.0.7.16)"
row "NUL byte in a header (lighttpd refuses)" 400 \
    "$(printf 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\nConnection: close\r\n\r\n' | raw 127.0.7.17)"
row "CTL bytes in a header value" 400 \
    "$(printf 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\001\033b\r\nConnection: close\r\n\r\n' | raw 127.0.7.18)"
row "header line without a colon" 400 \
    "$(printf 'GET /x HTTP/1.1\r\nHost: a\r\nno colon here\r\nConnection: close\r\n\r\n' | raw 127.0.7.19)"
row "path of 5000 bytes (the filter: 414)" 414 \
    "$(hcurl -o /dev/null --interface 127.0.7.20 "$U/$(big 5000)")"
row "path of 4095 bytes exactly (the filter's limit): allowed, then lighttpd's 404" 404 \
    "$(hcurl -o /dev/null --interface 127.0.7.21 "$U/$(big 4094)")"
row "method of 40 bytes (lighttpd: unknown method)" 501 \
    "$(hcurl -o /dev/null --interface 127.0.7.22 -X "$(big 40)" "$U/x")"
row "request line of garbage" 400 \
    "$(printf '\xff\xfe\xfd garbage\r\n\r\n' | raw 127.0.7.23)"

# X-Forwarded-For from an untrusted peer never changes the key.
codes=""
for i in 1 2 3 4; do codes+="$(hcurl -o /dev/null --interface "$A" "$U/x") "; done
check "client $A spends its 3/h ($codes)" test "$codes" = "200 200 200 429 "
row "$A with X-Forwarded-For: 192.0.2.7 (another client) stays refused" 429 \
    "$(hcurl -o /dev/null --interface "$A" -H 'X-Forwarded-For: 192.0.2.7' -H 'Forwarded: for=192.0.2.8' "$U/x")"
row "another client naming $A in X-Forwarded-For is not refused" 200 \
    "$(hcurl -o /dev/null --interface 127.0.7.2 -H "X-Forwarded-For: $A" "$U/x")"

# ---- trusted peers: the walk (a pool per header, 127.0.0.1/32 and 10.99.0.0/16 trusted) ------
tconf() { # file, name, header: trusted peers, a rule of 1/h
    cat > "$1" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-$2"; capacity = 1000; };
identity: { trusted_proxies = ["127.0.0.1/32", "10.99.0.0/16"]; header = "$3"; };
rules = ( { name = "$2"; path_prefix = "/"; limit = "1/h"; } );
CONF
    CONFS+=("$1")
}
DX=$T/x; mkdir -p "$DX/www"; echo x > "$DX/www/x"
tconf "$DX/rl.conf" trustxff x-forwarded-for
LIGHTTPD_EXTRA='server.max-request-field-size = 65535' start_pool "$DX" authorizer "$DX/rl.conf"
UX="http://127.0.0.1:$LPORT"
DF=$T/f; mkdir -p "$DF/www"; echo x > "$DF/www/x"
tconf "$DF/rl.conf" trustfwd forwarded
start_pool "$DF" authorizer "$DF/rl.conf"
UF="http://127.0.0.1:$LPORT"
for u in "$UX" "$UF"; do c=$(hcurl -o /dev/null --interface 127.0.8.251 "$u/x"); check "trusted pool $u answers ($c)" test "$c" = 200; done
XF_BEFORE=$(filter_pids "$DX" | sort | tr '\n' ' ')$(filter_pids "$DF" | sort | tr '\n' ' ')
declare -A SPENT=()
spend() { # pool x|f, an address of the key: its one request of 1/h, named by the trusted peer
    local u h v c
    if [ "$1" = x ]; then u=$UX h=X-Forwarded-For v=$2; else u=$UF h=Forwarded v="for=\"$2\""; fi
    [[ $2 == *:* ]] && [ "$1" = f ] && v="for=\"[$2]\""
    [ -z "${SPENT[$1 $2]:-}" ] || return 0
    SPENT[$1 $2]=1
    if [ "$2" = 127.0.0.1 ]; then
        c=$(hcurl -o /dev/null --interface 127.0.0.1 "$u/x")
    else
        c=$(hcurl -o /dev/null --interface 127.0.0.1 -H "$h: $v" "$u/x")
    fi
    [ "$c" = 200 ] || fail "$1: spending the key of $2: $c (expected 200)"
}
logged() { # file, fixed string, seconds: until the log holds it
    local i
    for ((i = 0; i < $3 * 20; i++)); do grep -qF -- "$2" "$1" && return 0; sleep 0.05; done
    return 1
}
tn=0
trow() { # description, pool x|f, expected key, an address of it, curl header args...
    local what=$1 pool=$2 key=$3 addr=$4 u d c p; shift 4
    if [ "$pool" = x ]; then u=$UX d=$DX; else u=$UF d=$DF; fi
    tn=$((tn + 1))
    spend "$pool" "$addr"
    c=$(hcurl -o /dev/null --interface 127.0.0.1 "$@" "$u/k/$tn")
    logged "$d/filter.log" "429 client=$key method=GET path=\"/k/$tn\"" 2 || c="$c, not logged as client=$key"
    probe_n=$((probe_n + 1))
    p=$(hcurl -o /dev/null --interface "127.0.8.$probe_n" "$u/x")
    check "trusted peer, $what: key $key: $c (expected 429 logged as $key); the filter answers afterwards ($p)" \
        test "$c" = 429 -a "$p" = 200
}
xrow() { local what=$1 key=$2 addr=$3 v=$4; trow "X-Forwarded-For $what" x "$key" "$addr" -H "X-Forwarded-For: $v"; }
frow() { local what=$1 key=$2 addr=$3 v=$4; trow "Forwarded $what" f "$key" "$addr" -H "Forwarded: $v"; }
thops() { # first, count: trusted hops 10.99.x.y numbered first.., oldest first
    local i s=""
    for ((i = $1; i < $1 + $2; i++)); do s+="10.99.$((i >> 8 & 255)).$((i & 255)), "; done
    printf '%s' "${s%, }"
}

xrow "the right-most untrusted hop" 203.0.113.7 203.0.113.7 "198.51.100.1, 203.0.113.7, 10.99.0.5"
xrow "a spoofed hop left of the client" 203.0.113.8 203.0.113.8 "6.6.6.6, 203.0.113.8"
xrow "every hop trusted: the left-most" 10.99.0.7 10.99.0.7 "10.99.0.7, 10.99.0.8"
xrow "two header lines (lighttpd joins them)" 203.0.113.19 203.0.113.19 "203.0.113.19" -H "X-Forwarded-For: 10.99.0.14"
xrow "spaces around hops" 203.0.113.18 203.0.113.18 "  203.0.113.18 ,10.99.0.13"
xrow "IPv4 with a port" 203.0.113.16 203.0.113.16 "203.0.113.16:4711, 10.99.0.17:80"
xrow "bare IPv6: its /64" 2001:db8:aa:1:: 2001:db8:aa:1::1 "2001:db8:aa:1::5"
xrow "bracketed IPv6 with a port: its /64" 2001:db8:aa:2:: 2001:db8:aa:2::1 "[2001:db8:aa:2::5]:443"
xrow "IPv4-mapped IPv6 is IPv4" 203.0.113.17 203.0.113.17 "::ffff:203.0.113.17"
xrow "garbage stops the walk (last accepted: a trusted hop)" 10.99.0.9 10.99.0.9 "203.0.113.11, garbage, 10.99.0.9"
xrow "garbage right-most: the peer" 127.0.0.1 127.0.0.1 "203.0.113.12, garbage"
xrow "an empty element stops the walk" 10.99.0.10 10.99.0.10 "203.0.113.13, , 10.99.0.10"
xrow "a trailing empty element: the peer" 127.0.0.1 127.0.0.1 "203.0.113.14,"
xrow "unknown stops the walk" 10.99.0.11 10.99.0.11 "unknown, 10.99.0.11"
xrow "unknown right-most: the peer" 127.0.0.1 127.0.0.1 "203.0.113.15, unknown"
xrow "an obfuscated _hidden stops the walk" 10.99.0.15 10.99.0.15 "_hidden, 10.99.0.15"
xrow "999.1.1.1: the peer" 127.0.0.1 127.0.0.1 "999.1.1.1"
xrow "IPv6 with a zone is unusable" 10.99.0.12 10.99.0.12 "fe80::1%eth0, 10.99.0.12"
xrow "IPv4 in brackets is unusable" 10.99.0.16 10.99.0.16 "[203.0.113.20]:80, 10.99.0.16"
xrow "63 trusted hops: the 64th from the right is examined and is the client" \
    203.0.113.21 203.0.113.21 "203.0.113.21, $(thops 1 63)"
xrow "64 trusted hops then the client: the walk stops at 64, the left-most examined" \
    10.99.1.1 10.99.1.1 "203.0.113.22, $(thops 257 64)"
V560="203.0.113.23, $(thops 513 560)"; v=$V560
check "560 trusted hops fit in 8192 bytes (${#v})" test "${#v}" -le 8192
xrow "560 trusted hops (${#v} bytes): the 64th from the right" \
    "10.99.$(((513 + 560 - 64) >> 8)).$(((513 + 560 - 64) & 255))" \
    "10.99.$(((513 + 560 - 64) >> 8)).$(((513 + 560 - 64) & 255))" "$v"
pad=$(big $((8192 - 13)))
v="$pad,203.0.113.24"
check "the boundary header is 8192 bytes (${#v})" test "${#v}" = 8192
xrow "a header of 8192 bytes exactly is read" 203.0.113.24 203.0.113.24 "$v"
xrow "a header of 8193 bytes is ignored: the peer" 127.0.0.1 127.0.0.1 "a$pad,203.0.113.25"
v=$(hops 4000)
xrow "4000 hops (${#v} bytes) from a trusted peer: ignored, the peer" 127.0.0.1 127.0.0.1 "$v"
r=$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' --interface 127.0.0.1 \
    -H "X-Forwarded-For: $v" "$UX/k/big" || true)
T_BIG=$(awk -v s="${r#* }" 'BEGIN {printf "%d", s * 1000}')
check "4000 hops from a trusted peer answered in ${T_BIG} ms (${r% *}, < 1000)" test "${r% *}" = 429 -a "$T_BIG" -lt 1000
r=$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' --interface 127.0.0.1 \
    -H "X-Forwarded-For: $V560" "$UX/k/walk" || true)
T_WALK=$(awk -v s="${r#* }" 'BEGIN {printf "%d", s * 1000}')
check "560 trusted hops answered in ${T_WALK} ms (${r% *}: the 64th hop's key is spent, < 1000)" test "${r% *}" = 429 -a "$T_WALK" -lt 1000
check "the over-long headers are logged as ignored" \
    grep -q 'warn: header x-forwarded-for of [0-9]* bytes ignored (at most 8192)' "$DX/filter.log"

frow "for=ADDR" 203.0.113.30 203.0.113.30 "for=203.0.113.30"
frow "quoted [IPv6]:port: its /64" 2001:db8:bb:1:: 2001:db8:bb:1::1 'for="[2001:db8:bb:1::1]:4711"'
frow "quoted [IPv6]: its /64" 2001:db8:bb:2:: 2001:db8:bb:2::1 'for="[2001:db8:bb:2::1]"'
frow "unquoted [IPv6] (accepted)" 2001:db8:bb:4:: 2001:db8:bb:4::1 'for=[2001:db8:bb:4::1], for=10.99.0.26'
frow "FOR=, an obfuscated port, other parameters" 203.0.113.31 203.0.113.31 'FOR="203.0.113.31:_p1";proto=http;by=10.99.0.1'
frow "the right-most untrusted element" 203.0.113.32 203.0.113.32 'for=198.51.100.2, for=203.0.113.32, for=10.99.0.20'
frow "unbracketed IPv6 is unusable" 10.99.0.21 10.99.0.21 'for=2001:db8:bb:3::1, for=10.99.0.21'
frow "for=unknown stops the walk" 10.99.0.22 10.99.0.22 'for=unknown, for=10.99.0.22'
frow "for=_hidden right-most: the peer" 127.0.0.1 127.0.0.1 'for=203.0.113.33, for=_hidden'
frow "two for= in an element are unusable" 10.99.0.24 10.99.0.24 'for=203.0.113.33;for=203.0.113.34, for=10.99.0.24'
frow "an element without for= is unusable" 10.99.0.25 10.99.0.25 'for=203.0.113.35, by=10.0.0.1, for=10.99.0.25'
frow "IPv6 with a zone is unusable" 10.99.0.27 10.99.0.27 'for="[2001:db8:bb:5::1%eth0]:80", for=10.99.0.27'
frow "an empty element stops the walk" 10.99.0.33 10.99.0.33 'for=203.0.113.39, , for=10.99.0.33'
frow "an unterminated quote: the peer" 127.0.0.1 127.0.0.1 'for="203.0.113.40, for=10.99.0.34'
frow "X-Forwarded-For is not read when Forwarded is configured" 127.0.0.1 127.0.0.1 'for=unknown' \
    -H 'X-Forwarded-For: 203.0.113.41'

# An untrusted peer (127.0.0.3) naming a spent key, or many hops: its own key, whatever it says.
for pool in x f; do
    if [ "$pool" = x ]; then u=$UX d=$DX; else u=$UF d=$DF; fi
    c="$(hcurl -o /dev/null --interface 127.0.0.3 -H 'X-Forwarded-For: 203.0.113.7' -H 'Forwarded: for=203.0.113.30' "$u/u1")"
    c+=" $(hcurl -o /dev/null --interface 127.0.0.3 -H "X-Forwarded-For: $(thops 1 100)" -H 'Forwarded: for=10.99.0.1' "$u/u2")"
    check "$pool: untrusted 127.0.0.3 naming spent keys: its own allowance, then refused ($c)" \
        test "$c" = "404 429"
    check "$pool: the refusal is logged as client=127.0.0.3" logged "$d/filter.log" '429 client=127.0.0.3 method=GET path="/u2"' 2
done

# ---- as CGI ------------------------------------------------------------------------------------
cgi_status() { # env...: the Status code of one CGI run (000: none)
    local s
    s=$(env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET "$@" \
        "$RL_FILTER" -c "${CGI_CONF:-$D/rl.conf}" 2>>"$T/cgi.log" </dev/null | tr -d '\r' | sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1)
    echo "${s:-000}"
}
crow() { # description expected env...
    local what=$1 want=$2 got; shift 2
    got=$(cgi_status "$@")
    check "CGI: $what: $got (expected $want)" test "$got" = "$want"
}
crow "no REMOTE_ADDR" 400 REQUEST_URI=/x
crow "empty REMOTE_ADDR" 400 REMOTE_ADDR= REQUEST_URI=/x
crow "REMOTE_ADDR 999.1.1.1" 400 REMOTE_ADDR=999.1.1.1 REQUEST_URI=/x
crow "REMOTE_ADDR 1.2.3.4x" 400 REMOTE_ADDR=1.2.3.4x REQUEST_URI=/x
crow "REMOTE_ADDR with a zone on IPv4" 400 'REMOTE_ADDR=1.2.3.4%eth0' REQUEST_URI=/x
crow "REMOTE_ADDR ::g" 400 REMOTE_ADDR=::g REQUEST_URI=/x
crow "REMOTE_ADDR of 100 bytes" 400 "REMOTE_ADDR=$(big 100)" REQUEST_URI=/x
crow "REMOTE_ADDR with a newline" 400 "REMOTE_ADDR=$(printf '127.0.0.1\nX: y')" REQUEST_URI=/x
crow "REMOTE_ADDR with 0xFF bytes" 400 "REMOTE_ADDR=$(printf '\xff\xfe')" REQUEST_URI=/x
crow "IPv6 with a zone" 200 'REMOTE_ADDR=fe80::1%eth0' REQUEST_URI=/x
crow "REQUEST_URI with raw 0xFF bytes (matched as bytes)" 200 REMOTE_ADDR=127.0.7.30 "REQUEST_URI=$(printf '/x\xff\xfe')"
crow "REQUEST_URI with raw CTL bytes (no canonical path)" 400 REMOTE_ADDR=127.0.7.35 "REQUEST_URI=$(printf '/x\xff\x01\x7f')"
crow "REQUEST_URI of 5000 bytes" 414 REMOTE_ADDR=127.0.7.31 "REQUEST_URI=/$(big 5000)"
crow "no REQUEST_URI, SCRIPT_NAME + PATH_INFO of 5000 bytes" 414 REMOTE_ADDR=127.0.7.32 "SCRIPT_NAME=/$(big 2500)" "PATH_INFO=/$(big 2500)"
crow "REQUEST_METHOD of 100 bytes" 400 REMOTE_ADDR=127.0.7.33 REQUEST_URI=/x "REQUEST_METHOD=$(big 100)"
crow "X-Forwarded-For of 100 KiB" 200 REMOTE_ADDR=127.0.7.34 REQUEST_URI=/x "HTTP_X_FORWARDED_FOR=$(hops 8000)"
crow "$A via CGI with X-Forwarded-For: still $A's key" 429 REMOTE_ADDR=$A REQUEST_URI=/x HTTP_X_FORWARDED_FOR=192.0.2.9
ccrow() { # description, expected key, env...: one CGI run with the trusted configuration
    # (REMOTE_ADDR 127.0.0.1); the expected key is spent first, so the run must be refused as it
    local what=$1 key=$2 got; shift 2
    CGI_CONF=$DX/rl.conf cgi_status REMOTE_ADDR=127.0.0.1 REQUEST_URI=/spend "HTTP_X_FORWARDED_FOR=$key" >/dev/null
    cn=$((cn + 1))
    got=$(CGI_CONF=$DX/rl.conf cgi_status REMOTE_ADDR=127.0.0.1 "REQUEST_URI=/c/$cn" "$@")
    grep -qF "429 client=$key method=GET path=\"/c/$cn\"" "$T/cgi.log" || got="$got, not logged as client=$key"
    check "CGI, trusted REMOTE_ADDR: $what: key $key: $got (expected 429)" test "$got" = 429
}
cn=0
ccrow "X-Forwarded-For of 100 KiB: ignored, the peer" 127.0.0.1 "HTTP_X_FORWARDED_FOR=$(hops 8000)"
ccrow "0xFF bytes right-most: the peer" 127.0.0.1 "HTTP_X_FORWARDED_FOR=$(printf '203.0.113.50, \xff\xfe')"
ccrow "0xFF and CTL bytes left of the client" 203.0.113.51 "HTTP_X_FORWARDED_FOR=$(printf '\xff\x01, 203.0.113.51')"
ccrow "a newline inside a hop stops the walk" 10.99.0.40 "HTTP_X_FORWARDED_FOR=$(printf '203.0.113.52\n, 10.99.0.40')"
check "the 400s are logged, escaped, one line each" \
    grep -q 'warn: 400: REMOTE_ADDR "127.0.0.1\\x0aX: y" is not an IP address' "$T/cgi.log"

PIDS_AFTER=$(filter_pids "$D" | sort | tr '\n' ' ')
XF_AFTER=$(filter_pids "$DX" | sort | tr '\n' ' ')$(filter_pids "$DF" | sort | tr '\n' ' ')
check "the filter processes are the ones from the start (no crash): $PIDS_AFTER" \
    test -n "$PIDS_BEFORE" -a "$PIDS_BEFORE" = "$PIDS_AFTER"
check "the trusted pools' filter processes are the ones from their start: $XF_AFTER" \
    test -n "$XF_BEFORE" -a "$XF_BEFORE" = "$XF_AFTER"
check "no sanitizer report in the pool's log" no_sanitizer_report "$D/filter.log"
check "no sanitizer report in the trusted pools' logs" bash -c '! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$@"' _ "$DX/filter.log" "$DF/filter.log"
check "no sanitizer report in the CGI runs' log" no_sanitizer_report "$T/cgi.log"
echo "FIGURE: hostile: $probe_n rows through lighttpd ($tn of them identity rows from a trusted peer), every one followed by a 200 for a fresh client; $FAILS failure(s)"
echo "FIGURE: hostile: a trusted peer's X-Forwarded-For of 4000 hops (47 KiB, ignored) answered in $T_BIG ms; 560 trusted hops (7.5 KiB, 64 walked) in $T_WALK ms"
finish
