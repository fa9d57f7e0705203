#!/usr/bin/env bash
# test_cli.sh -- the filter's command line, exit codes, and plain CGI mode (no web server)
#
# Options and exit codes (0 ok, 1 configuration, 2 usage, 3 runtime), -t output, --shm-remove,
# then single CGI requests from the environment with stdin not a socket: 5 x 200 then 429 for
# one client, 400 without/with a bogus REMOTE_ADDR, 414 for an over-long path, a body that never
# comes given up after fastcgi.read_timeout_ms; --decide (JSON
# lines: a 3/m rule and --count 5, dry run, deny list, X-Forwarded-For, API-key header, usage
# errors). Needs RL_FILTER.
set -euo pipefail

: "${RL_FILTER:?set RL_FILTER to the absolute path of ratelimit-filter}"
T=$(mktemp -d "${TMPDIR:-/tmp}/rl-cli.XXXXXX")
SHM="/rltest-cli-$$-$RANDOM"
FAILS=0
cleanup() {
    "$RL_FILTER" --shm-remove -c "$T/rl.conf" >/dev/null 2>&1 || true
    "$RL_FILTER" --shm-remove -c "$T/other.conf" >/dev/null 2>&1 || true
    "$RL_FILTER" --shm-remove -c "$T/decide.conf" >/dev/null 2>&1 || true
    rm -f "/dev/shm$SHM-junk" "/dev/shm$SHM-junk-stats"
    for c in fp-strict rd-open body; do "$RL_FILTER" --shm-remove -c "$T/$c.conf" >/dev/null 2>&1 || true; done
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
rc_of() { local rc=0; "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?; echo "$rc"; }
expect_rc() { # description, expected, command...
    local what=$1 want=$2 got; shift 2
    got=$(rc_of "$@")
    if [ "$got" = "$want" ]; then pass "$what (exit $got)"; else fail "$what: exit $got, want $want: $(head -c 300 "$T/err")"; fi
}
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

cat > "$T/rl.conf" <<CONF
shm: { name = "$SHM"; capacity = 100; };
rules = ( { name = "cli"; path_prefix = "/"; limit = "5/m"; burst = 5; } );
CONF
printf 'rules = (\n  { name = "x"; limit = "5/m"; bogus = 1; }\n);\n' > "$T/bad.conf"

expect_rc "-h" 0 "$RL_FILTER" -h
check "-h prints the usage" grep -q '^Usage: ratelimit-filter' "$T/out"
expect_rc "--help" 0 "$RL_FILTER" --help
expect_rc "-V" 0 "$RL_FILTER" -V
check "-V prints the version" grep -Eq '^ratelimit-filter [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"
expect_rc "unknown option" 2 "$RL_FILTER" --nope
expect_rc "-c without a file" 2 "$RL_FILTER" -c
expect_rc "stray argument" 2 "$RL_FILTER" -c "$T/rl.conf" extra
expect_rc "-t with --shm-remove" 2 "$RL_FILTER" -t --shm-remove -c "$T/rl.conf"
expect_rc "-t good" 0 "$RL_FILTER" -t -c "$T/rl.conf"
check "-t good message" grep -qx "ratelimit-filter: configuration file $T/rl.conf test is successful" "$T/err"
expect_rc "-t bad" 1 "$RL_FILTER" -t -c "$T/bad.conf"
check "-t bad names file:line" grep -q "^ratelimit-filter: $T/bad.conf:2: " "$T/err"
expect_rc "-t missing file" 1 "$RL_FILTER" -t -c "$T/none.conf"
expect_rc "RATELIMIT_CONFIG is the default" 0 env RATELIMIT_CONFIG="$T/rl.conf" "$RL_FILTER" -t
check "RATELIMIT_CONFIG file was the one tested" grep -q "configuration file $T/rl.conf test" "$T/err"
# A variable goes through the file's checks between the redis keys: a cluster has only db 0,
# whether db comes from the file or from RATE_LIMIT_REDIS_DB.
cat > "$T/cluster.conf" <<CONF
shm: { name = "$SHM"; capacity = 100; };
redis: { enabled = true; cluster = [ "127.0.0.1:7000" ]; };
rules = ( { name = "cli"; path_prefix = "/"; limit = "5/m"; burst = 5; } );
CONF
expect_rc "-t a cluster config" 0 "$RL_FILTER" -t -c "$T/cluster.conf"
expect_rc "-t a cluster config with RATE_LIMIT_REDIS_DB=2" 1 env RATE_LIMIT_REDIS_DB=2 "$RL_FILTER" -t -c "$T/cluster.conf"
check "RATE_LIMIT_REDIS_DB on a cluster refused as the file's db" grep -qx \
    'ratelimit-filter: environment RATE_LIMIT_REDIS_DB: invalid value "2": a cluster has only db 0 (db is 2)' "$T/err"
expect_rc "serving with a bad config" 1 env -i REMOTE_ADDR=10.1.1.1 REQUEST_URI=/ "$RL_FILTER" -c "$T/bad.conf"
check "bad config logged as error" grep -Eq '^ratelimit-filter\[[0-9]+\]: error: ' "$T/err"

cgi() { # REMOTE_ADDR ("" = unset), REQUEST_URI: prints the Status line's code
    local env=(env -i REQUEST_METHOD=GET "REQUEST_URI=$2" SCRIPT_NAME=/x)
    [ -z "$1" ] || env+=("REMOTE_ADDR=$1")
    "${env[@]}" "$RL_FILTER" -c "$T/rl.conf" </dev/null >"$T/cgi.out" 2>>"$T/cgi.err" || echo "rc=$?"
    tr -d '\r' < "$T/cgi.out" | sed -n 's/^Status: \([0-9]*\).*/\1/p'
}
codes=""
for i in 1 2 3 4 5 6; do codes+="$(cgi 192.0.2.7 "/p?q=$i") "; done
check "CGI: 6 requests -> 5 x 200 then 429 ($codes)" test "$codes" = "200 200 200 200 200 429 "
check "CGI: 429 carries Retry-After" grep -q '^Retry-After: [1-9]' "$T/cgi.out"
check "CGI: 429 body" grep -Eq '^Too Many Requests: retry in [0-9]+ s$' "$T/cgi.out"
check "CGI: refusal logged" grep -Eq '^ratelimit-filter\[[0-9]+\]: info: 429 client=192\.0\.2\.7 method=GET path="/p" rule="cli"' "$T/cgi.err"
check "CGI: other client still allowed" test "$(cgi 2001:db8::1 /)" = 200
check "CGI: responder 200 has RateLimit headers" grep -q '^RateLimit: "cli";r=4;t=' "$T/cgi.out"
check "CGI: no REMOTE_ADDR -> 400" test "$(cgi "" /)" = 400
check "CGI: bogus REMOTE_ADDR -> 400" test "$(cgi "not-an-address" /)" = 400
check "CGI: over-long REMOTE_ADDR -> 400" test "$(cgi "$(printf '1%.0s' {1..80})" /)" = 400
check "CGI: 400s logged as warn" test "$(grep -c ': warn: 400: ' "$T/cgi.err")" = 3
check "CGI: 5000-byte path -> 414" test "$(cgi 192.0.2.8 "/$(printf 'a%.0s' {1..5000})")" = 414

# A client that says CONTENT_LENGTH and then sends nothing (stdin a FIFO this process also
# holds open for writing, so no end ever comes): the body's wait is bounded by
# fastcgi.read_timeout_ms, not held for good. `timeout` only keeps a broken build bounded.
cat > "$T/body.conf" <<CONF
shm: { name = "$SHM-body"; capacity = 100; };
fastcgi: { read_timeout_ms = 1000; };
rules = ( { name = "b"; path_prefix = "/"; limit = "5/m"; } );
CONF
mkfifo "$T/silent"
T0=$(date +%s%N)
rc=0
timeout -s KILL 30 env -i REQUEST_METHOD=POST REQUEST_URI=/api/health/rate-limiter/test SCRIPT_NAME=/x \
    REMOTE_ADDR=127.0.0.1 CONTENT_LENGTH=100 "$RL_FILTER" -c "$T/body.conf" \
    3<>"$T/silent" <"$T/silent" >"$T/silent.out" 2>"$T/silent.err" || rc=$?
MS=$((($(date +%s%N) - T0) / 1000000))
check "CGI: a body that never comes -> given up after $MS ms (read_timeout_ms 1000; rc $rc, not 137)" \
    test "$rc" != 137 -a "$MS" -ge 900 -a "$MS" -lt 20000
check "CGI: ... logged against read_timeout_ms" \
    grep -q 'no more of the request.s body within 1000 ms (fastcgi.read_timeout_ms)' "$T/silent.err"

# --decide: real decisions through shared memory, one JSON line each. shm.user: run as root,
# --decide creates no segment without one (test_shm_owner.sh).
ME=$(id -un)
cat > "$T/decide.conf" <<CONF
shm: { name = "$SHM-d"; capacity = 100; user = "$ME"; };
identity: { trusted_proxies = ["127.0.0.1/32"]; };
access: { deny = ["198.51.100.0/24"]; };
rules = (
  { name = "three"; path = "/three"; limit = "3/m"; },
  { name = "dry"; path = "/dry"; limit = "1/m"; dry_run = true; },
  { name = "key"; path = "/key"; key = "header:X-Api-Key"; on_missing_key = "refuse";
    missing_key_status = 401; limit = "1/m"; }
);
CONF
decide() { "$RL_FILTER" --decide -c "$T/decide.conf" "$@" 2>"$T/err"; }
out=$(decide --client 203.0.113.1 --path /three --count 5) || fail "--decide exit $?"
check "--decide --count 5 prints 5 lines" test "$(printf '%s\n' "$out" | wc -l)" = 5
check "--decide: 3 allowed then 2 refused" test "$(printf '%s\n' "$out" | grep -o '^{"allowed":[a-z]*' | cut -d: -f2 | tr '\n' ' ')" = "true true true false false "
check "--decide: JSON fields" bash -c 'printf "%s\n" "$1" | head -n 1 | grep -q "^{\"allowed\":true,\"backend\":\"shm\",\"retry_after_ms\":0,\"rules\":\[{\"rule\":\"three\",\"allowed\":true,\"dry_run\":false,\"limit\":3,\"remaining\":2,\"reset_ms\":20000,\"retry_after_ms\":0}\]"' _ "$out"
check "--decide: refusal has retry_after_ms" bash -c 'printf "%s\n" "$1" | tail -n 1 | grep -Eq "\"retry_after_ms\":[1-9][0-9]*,\"rules\""' _ "$out"
check "--decide: JSON parses" bash -c 'printf "%s\n" "$1" | python3 -c "import json,sys; [json.loads(l) for l in sys.stdin]"' _ "$out"
out=$(decide --client 203.0.113.1 --path /dry --count 2)
check "--decide: dry run refuses but allows" bash -c 'printf "%s\n" "$1" | tail -n 1 | grep -q "^{\"allowed\":true,.*\"rule\":\"dry\",\"allowed\":false,\"dry_run\":true"' _ "$out"
out=$(decide --client 127.0.0.1 --path /three --header "X-Forwarded-For: 198.51.100.9")
check "--decide: deny-listed behind a trusted proxy" bash -c 'printf "%s\n" "$1" | grep -q "\"verdict\":\"deny-listed\",\"status\":403,\"client\":\"198.51.100.9\""' _ "$out"

# Rule fingerprint (keys.c): a state written under one limit is never read under another.
fpconf() { printf 'shm: { name = "%s"; capacity = 100; user = "%s"; };\nrules = ( { name = "fp"; limit = "%s"; } );\n' "$SHM-fp" "$ME" "$1" > "$T/fp-$2.conf"; }
fpconf 3/h strict; fpconf 10/h loose
fpd() { "$RL_FILTER" --decide -c "$T/fp-$1.conf" --client 203.0.113.5 --path / --count "$2" 2>>"$T/err"; }
out=$(fpd strict 4)
check "fingerprint: 3/h spent (3 allowed, 1 refused)" test "$(printf '%s\n' "$out" | grep -c '^{"allowed":true')" = 3
out=$(fpd loose 1)
check "fingerprint: 10/h on the same name starts its own state (remaining 9)" bash -c 'printf "%s\n" "$1" | grep -q "\"rule\":\"fp\",\"allowed\":true,\"dry_run\":false,\"limit\":10,\"remaining\":9"' _ "$out"
out=$(fpd strict 1)
check "fingerprint: back at 3/h, the spent state still refuses" bash -c 'printf "%s\n" "$1" | grep -q "^{\"allowed\":false,\"backend\":\"shm\""' _ "$out"
out=$(fpd loose 9)
check "fingerprint: 10/h never read the 3/h state (9 more allowed)" test "$(printf '%s\n' "$out" | grep -c '^{"allowed":true')" = 9

# --decide names the decision's real source: Redis unreachable (port 1), per on_redis_down.
for mode in open closed; do
    printf 'shm: { name = "%s"; capacity = 100; user = "%s"; };\nredis: { enabled = true; host = "127.0.0.1"; port = 1; };\nrules = ( { name = "d"; limit = "3/h"; on_redis_down = "%s"; } );\n' "$SHM-rd" "$ME" "$mode" > "$T/rd-$mode.conf"
    out=$("$RL_FILTER" --decide -c "$T/rd-$mode.conf" --client 203.0.113.6 --path / 2>>"$T/err")
    check "--decide: Redis down, on_redis_down $mode -> backend fail-$mode" bash -c 'printf "%s\n" "$1" | grep -q "\"backend\":\"fail-$2\""' _ "$out" "$mode"
done
out=$(decide --client 127.0.0.1 --path /three --header "X-Forwarded-For: 203.0.113.50")
check "--decide: X-Forwarded-For from a trusted proxy names the client" bash -c 'printf "%s\n" "$1" | grep -q "\"client\":\"203.0.113.50\""' _ "$out"
out=$(decide --client 203.0.113.7 --path /three --header "X-Forwarded-For: 203.0.113.50")
check "--decide: X-Forwarded-For from anyone else is ignored" bash -c 'printf "%s\n" "$1" | grep -q "\"client\":\"203.0.113.7\""' _ "$out"
out=$(decide --client 203.0.113.1 --path /key)
check "--decide: missing key -> 401" bash -c 'printf "%s\n" "$1" | grep -q "\"verdict\":\"missing-key\",\"status\":401"' _ "$out"
out=$(decide --client 203.0.113.1 --path /key --header "x-api-key: k" --count 2)
check "--decide: keyed by header" test "$(printf '%s\n' "$out" | grep -o '^{"allowed":[a-z]*' | cut -d: -f2 | tr '\n' ' ')" = "true false "
expect_rc "--decide without --path" 2 "$RL_FILTER" --decide -c "$T/decide.conf" --client 1.2.3.4
expect_rc "--client without --decide" 2 "$RL_FILTER" -c "$T/decide.conf" --client 1.2.3.4
expect_rc "--decide --count 0" 2 "$RL_FILTER" --decide -c "$T/decide.conf" --client 1.2.3.4 --path / --count 0
expect_rc "--decide bad --header" 2 "$RL_FILTER" --decide -c "$T/decide.conf" --client 1.2.3.4 --path / --header nocolon
expect_rc "--decide with -t" 2 "$RL_FILTER" --decide -t -c "$T/decide.conf" --client 1.2.3.4 --path /
expect_rc "--decide bad config" 1 "$RL_FILTER" --decide -c "$T/bad.conf" --client 1.2.3.4 --path /
"$RL_FILTER" --shm-remove -c "$T/decide.conf" >/dev/null 2>&1 || true

# The segment exists now; a configuration with the same name but another capacity is not
# refused: -t says the table will be replaced, carrying its live entries, and it serves.
sed "s/capacity = 100;/capacity = 200;/" "$T/rl.conf" > "$T/other.conf"
expect_rc "-t, another capacity" 0 "$RL_FILTER" -t -c "$T/other.conf"
check "-t says the table is replaced by a new generation" grep -q "exists but has capacity 100, the configuration 200: a start or reload replaces it by generation 2 .* carries its live entries over" "$T/err"
expect_rc "another capacity serves (a new generation)" 0 env -i REMOTE_ADDR=10.1.1.1 REQUEST_URI=/ "$RL_FILTER" -c "$T/other.conf"
expect_rc "-t, the capacity it has now" 0 "$RL_FILTER" -t -c "$T/other.conf"
check "-t says it fits" grep -q "exists (generation 2, capacity 200, .*) and fits" "$T/err"
# What would stop a start stops -t, with the same reason: a foreign object under the name.
printf 'shm: { name = "%s-junk"; capacity = 100; };\nrules = ( { name = "d"; limit = "3/h"; } );\n' "$SHM" > "$T/junk.conf"
head -c 4096 /dev/zero | tr "\\0" x > "/dev/shm$SHM-junk"
expect_rc "-t, a foreign object under shm.name -> 3" 3 "$RL_FILTER" -t -c "$T/junk.conf"
check "-t names it" grep -q "is not a rate-limit table .*a start would fail" "$T/err"
expect_rc "a start on it -> 3" 3 env -i REMOTE_ADDR=10.1.1.1 REQUEST_URI=/ "$RL_FILTER" -c "$T/junk.conf"
rm -f "/dev/shm$SHM-junk"
# The same for a statistics segment the start would refuse (another build's, or junk).
head -c 16 /dev/zero | tr "\\0" x > "/dev/shm$SHM-junk-stats"
expect_rc "-t, statistics the start would refuse -> 3" 3 "$RL_FILTER" -t -c "$T/junk.conf"
check "-t names the statistics segment" grep -q "$SHM-junk-stats.: exists with 16 bytes, statistics take .*a start would fail" "$T/err"
expect_rc "a start on them -> 3" 3 env -i REMOTE_ADDR=10.1.1.1 REQUEST_URI=/ "$RL_FILTER" -c "$T/junk.conf"
rm -f "/dev/shm$SHM-junk-stats"
expect_rc "--shm-remove" 0 "$RL_FILTER" --shm-remove -c "$T/rl.conf"
check "--shm-remove says removed" grep -q "removed shared memory $SHM" "$T/err"
expect_rc "--shm-remove again (nothing left)" 0 "$RL_FILTER" --shm-remove -c "$T/rl.conf"
expect_rc "--shm-remove with a bad config" 1 "$RL_FILTER" --shm-remove -c "$T/bad.conf"

if [ "$FAILS" -ne 0 ]; then echo "test_cli: $FAILS check(s) failed"; exit 1; fi
echo "test_cli: all checks passed"
