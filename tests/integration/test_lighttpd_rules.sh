#!/usr/bin/env bash
# test_lighttpd_rules.sh -- rules, keys, identity and access lists through a real lighttpd
#
# One lighttpd on a free 127.0.0.1 port with the filter as its authorizer, and a config with:
# a global per-client rule, a catastrophic path_regex rule, a per-route rule (/login, status 503 and its own body), an API-key
# rule (/api/, keyed by X-Api-Key, 401 without one), a dry-run rule (/dry), X-Forwarded-For
# trusted from 127.0.0.1 only, and a deny list. curl connects from 127.0.0.1 (a trusted proxy:
# its X-Forwarded-For names the client) or from 127.0.0.2 (untrusted: the header is ignored).
# Needs RL_FILTER, lighttpd and curl. Bounded waits; lighttpd stopped by pid in the EXIT trap.
set -euo pipefail

: "${RL_FILTER:?set RL_FILTER to the absolute path of ratelimit-filter}"
for tool in lighttpd curl; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/deps)"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/rl-rules.XXXXXX")
FAILS=0
LPID=""
cleanup() {
    if [ -n "$LPID" ]; then
        kill "$LPID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$LPID" 2>/dev/null || true
    fi
    "$RL_FILTER" --shm-remove -c "$T/rl.conf" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p=$((20000 + RANDOM % 12000)) n
    for ((n = 0; n < 500; n++)); do
        if port_free "$p" && ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return 0
        fi
        p=$((p + 1)); [ "$p" -lt 32768 ] || p=20000
    done
    echo "no free port" >&2; return 1
}
hdr() { tr -d '\r' < "$1" | sed -n "s/^$2: //Ip" | head -n 1; }

mkdir -p "$T/www/api"
for f in index.html login dry other api/x; do echo "backend $f" > "$T/www/$f"; done
cat > "$T/rl.conf" <<CONF
shm: { name = "/rltest-rules-$$-$RANDOM"; capacity = 1000; };
identity: { trusted_proxies = ["127.0.0.1/32"]; header = "x-forwarded-for"; };
access: { deny = ["198.51.100.0/24"]; };
rules = (
  { name = "global"; limit = "6/m"; },
  { name = "login"; path = "/login"; methods = ["GET", "POST"]; limit = "2/m"; status = 503;
    body = "login: slow down\n"; },
  { name = "api"; path_prefix = "/api/"; key = "header:X-Api-Key"; on_missing_key = "refuse";
    missing_key_status = 401; limit = "3/m"; },
  { name = "dry"; path = "/dry"; limit = "1/m"; dry_run = true; },
  { name = "evil"; path_regex = "^/re/(a+)+\$"; limit = "1/m"; }
);
CONF
LPORT=$(pick_port)
cat > "$T/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $LPORT
server.document-root = "$T/www"
server.pid-file = "$T/lighttpd.pid"
server.errorlog = "$T/error.log"
server.breakagelog = "$T/filter.log"
index-file.names = ( "index.html" )
server.modules += ( "mod_fastcgi" )
fastcgi.server = ( "/" => ((
    "bin-path" => "$RL_FILTER -c $T/rl.conf",
    "socket" => "$T/rl.sock",
    "mode" => "authorizer",
    "check-local" => "disable",
    "max-procs" => 2
)))
CONF
lighttpd -tt -f "$T/lighttpd.conf" >/dev/null 2>"$T/tt.err" || { fail "lighttpd config: $(cat "$T/tt.err")"; exit 1; }
lighttpd -D -f "$T/lighttpd.conf" 2>>"$T/lighttpd.stderr" &
LPID=$!
for ((i = 0; i < 50; i++)); do port_free "$LPORT" || break; sleep 0.1; done
port_free "$LPORT" && { fail "lighttpd not listening on $LPORT in 5 s"; exit 1; }

# req FROM XFF PATH [curl args...]: prints the status; the last headers and body are in
# $T/h and $T/b (it runs in a subshell: nothing else survives it).
req() {
    local from=$1 xff=$2 path=$3; shift 3
    local args=(-s --noproxy '*' --max-time 5 -o "$T/b" -D "$T/h" -w '%{http_code}'
                --interface "$from")
    [ -z "$xff" ] || args+=(-H "X-Forwarded-For: $xff")
    curl "${args[@]}" "$@" "http://127.0.0.1:$LPORT$path" || true
}
codes() { # count, req args...: the statuses, space-separated
    local n=$1 out="" i; shift
    for ((i = 0; i < n; i++)); do out+="$(req "$@") "; done
    echo "${out% }"
}

# Per-route rule under a global one, clients named by X-Forwarded-For from a trusted proxy.
c=$(codes 3 127.0.0.1 203.0.113.1 /login)
check "per-route: /login 2 x 200 then 503 ($c)" test "$c" = "200 200 503"
check "per-route: the rule's body" grep -qx "login: slow down" "$T/b"
check "per-route: Retry-After on the 503" test "$(hdr "$T/h" Retry-After)" -ge 1
check "per-route: the global rule was not charged by the refusal" test "$(codes 4 127.0.0.1 203.0.113.1 /other)" = "200 200 200 200"
check "global: 7th request of the client -> 429" test "$(req 127.0.0.1 203.0.113.1 /other)" = 429
check "X-Forwarded-For: another client behind the proxy is separate" test "$(codes 2 127.0.0.1 203.0.113.2 /login)" = "200 200"
check "X-Forwarded-For: rightmost untrusted hop is the client" test "$(req 127.0.0.1 "203.0.113.2, 203.0.113.3" /login)" = 200
check "X-Forwarded-For: a spoofed left hop does not help" test "$(req 127.0.0.1 "6.6.6.6, 203.0.113.2" /login)" = 503

# Untrusted peer: its X-Forwarded-For is ignored, whatever it says.
c="$(req 127.0.0.2 203.0.113.20 /login) $(req 127.0.0.2 203.0.113.21 /login) $(req 127.0.0.2 203.0.113.22 /login)"
check "untrusted peer: X-Forwarded-For ignored, one bucket ($c)" test "$c" = "200 200 503"

# API key.
check "api: no key -> 401" test "$(req 127.0.0.1 203.0.113.30 /api/x)" = 401
check "api: 401 body" grep -qx "Unauthorized" "$T/b"
c=$(codes 4 127.0.0.1 203.0.113.30 /api/x -H "X-Api-Key: k1")
check "api: key k1 3 x 200 then 429 ($c)" test "$c" = "200 200 200 429"
check "api: the key, not the client: k1 from another client is refused" test "$(req 127.0.0.1 203.0.113.31 /api/x -H "x-api-key: k1")" = 429
check "api: key k2 is separate" test "$(req 127.0.0.1 203.0.113.30 /api/x -H "X-Api-Key: k2")" = 200

# Deny list, through the proxy and directly.
check "deny-listed client -> 403" test "$(req 127.0.0.1 198.51.100.7 /)" = 403
check "403 body" grep -qx "Forbidden" "$T/b"

# Dry run: never refuses, but says it would have.
c=$(codes 3 127.0.0.1 203.0.113.40 /dry)
check "dry run: 3 x 200 ($c)" test "$c" = "200 200 200"
check "dry run: refusals logged" grep -Eq 'info: dry-run refusal client=203\.0\.113\.40 method=GET path="/dry" rule="dry"' "$T/filter.log"
check "refusals log the client behind the proxy and the status" grep -Eq 'info: 503 client=203\.0\.113\.1 method=GET path="/login" rule="login"' "$T/filter.log"
# A catastrophic path_regex against a path the client chose: the match stops at its limit, the
# rule does not match (the request is decided, nothing hangs), and the filter logs it at most
# once a minute per process however often it happens. (No file under /re/: allowed is 404.)
long="/re/$(printf 'a%.0s' $(seq 3000))b"
c=$(codes 3 127.0.0.1 203.0.113.50 "$long")
check "regex limit: 3 x allowed, the rule did not match ($c)" test "$c" = "404 404 404"
n=$(grep -c 'rule "evil": path_regex stopped at its match limit' "$T/filter.log" || true)
check "regex limit: logged at most once per process (2 processes: $n line(s))" test "$n" -ge 1 -a "$n" -le 2
c=$(codes 2 127.0.0.1 203.0.113.51 /re/aaa)
check "regex: an ordinary match of the same rule is limited ($c)" test "$c" = "404 429"
check "no sanitizer report" bash -c '! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$1"' _ "$T/filter.log"

if [ "$FAILS" -ne 0 ]; then
    echo "test_lighttpd_rules: $FAILS check(s) failed"
    tail -n 30 "$T/filter.log" "$T/error.log" 2>/dev/null || true
    exit 1
fi
echo "test_lighttpd_rules: all checks passed"
