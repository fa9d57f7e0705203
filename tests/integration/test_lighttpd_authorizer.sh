#!/usr/bin/env bash
# test_lighttpd_authorizer.sh -- the filter as a lighttpd 1.4 FastCGI authorizer, end to end
#
# Starts, in a temporary directory and on free 127.0.0.1 ports below 32768, a redis-server
# and (one per scenario) a lighttpd serving a static index.html behind the filter:
#   A  shared memory only        8 requests from one client: 5 x 200, then 3 x 429 with
#                                Retry-After, RateLimit-Policy, RateLimit, X-RateLimit-*, body;
#                                on a 200, mod_magnet copies the Variable-RATELIMIT_* values
#                                into response headers
#   B  Redis enabled and up      the same, and the keys exist in Redis
#   C  Redis enabled but killed  the same, decided from shared memory
#   and `-t` on a good and a bad configuration; the filter's stderr in server.breakagelog;
#   the bin-path socket named NAME-0, NAME-1; the filters exit when lighttpd stops.
# Needs RL_FILTER (absolute path of the binary), lighttpd with mod_magnet (package
# lighttpd-modules-lua), redis-server, redis-cli and curl. Every wait is bounded; everything
# started is stopped by pid in the EXIT trap. Prints PASS/FAIL per check; exits 1 on any FAIL.
set -euo pipefail

NAME=test_lighttpd_authorizer
source "$(dirname "$0")/lib/lib.sh"  # $T, $ROOT, $RUN_ID, PIDS, CONFS, checks, ports, waits
need lighttpd redis-server redis-cli curl

# ---- Redis -------------------------------------------------------------------------------
RPORT=$(pick_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --daemonize yes \
    --pidfile "$T/redis.pid" --logfile "$T/redis.log" --dir "$T" >/dev/null
for ((i = 0; i < 50; i++)); do [ -s "$T/redis.pid" ] && break; sleep 0.1; done
[ -s "$T/redis.pid" ] || { fail "redis-server wrote no pid file in 5 s"; exit 1; }
RPID=$(cat "$T/redis.pid")
PIDS+=("$RPID")
wait_port "$RPORT" 5 || { fail "redis-server not listening on $RPORT in 5 s"; exit 1; }
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }

# ---- one filter configuration --------------------------------------------------------------
write_conf() { # dir, rule name, redis enabled (true/false), prefix
    cat > "$1/rl.conf" <<CONF
# written by test_lighttpd_authorizer.sh
shm: { name = "/rltest-$RUN_ID-$2"; capacity = 1000; };
redis: { enabled = $3; host = "127.0.0.1"; port = $RPORT; prefix = "$4";
         connect_timeout_ms = 2000; command_timeout_ms = 2000; }; # generous: not what is tested
rules = (
  { name = "$2"; path_prefix = "/"; limit = "5/m"; burst = 5; }
);
CONF
    CONFS+=("$1/rl.conf")
}

# ---- one lighttpd with the filter as authorizer --------------------------------------------
LPID=""
LPORT=""
start_lighttpd() { # dir
    local d=$1
    mkdir -p "$d/www"
    echo "hello from the backend" > "$d/www/index.html"
    # the recipe users get: etc/lighttpd/ratelimit-headers.lua
    cp "$ROOT/etc/lighttpd/ratelimit-headers.lua" "$d/copy.lua"
    LPORT=$(pick_port)
    cat > "$d/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $LPORT
server.document-root = "$d/www"
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/error.log"
# lighttpd 1.4 gives FastCGI children its own stderr, not server.errorlog: without this the
# filter's log lines go to the terminal (-D) or /dev/null (daemon).
server.breakagelog = "$d/filter.log"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
server.modules += ( "mod_fastcgi", "mod_magnet" )
magnet.attract-response-start-to = ( "$d/copy.lua" )
fastcgi.server = ( "/" => ((
    "bin-path" => "$RL_FILTER -c $d/rl.conf",
    "socket" => "$d/rl.sock",
    "mode" => "authorizer",
    "check-local" => "disable",
    "max-procs" => 2
)))
CONF
    lighttpd -tt -f "$d/lighttpd.conf" >/dev/null 2>"$d/tt.err" || {
        fail "lighttpd rejected $d/lighttpd.conf: $(cat "$d/tt.err")"; return 1; }
    lighttpd -D -f "$d/lighttpd.conf" 2>>"$d/lighttpd.stderr" &
    LPID=$!
    PIDS+=("$LPID")
    if ! wait_port "$LPORT" 5; then
        fail "lighttpd not listening on $LPORT in 5 s: $(tail -n 5 "$d/error.log" 2>/dev/null)"
        return 1
    fi
}

# 8 requests from one client; prints the status codes; headers/bodies in $1/h<i>, $1/b<i>.
burst() {
    local d=$1 i codes=""
    for i in 1 2 3 4 5 6 7 8; do
        codes+="$(curl -s --noproxy '*' --max-time 5 -o "$d/b$i" -D "$d/h$i" \
            -w '%{http_code}' "http://127.0.0.1:$LPORT/" || true) "
    done
    echo "${codes% }"
}

check_refusal() { # dir, rule name, scenario
    local d=$1 name=$2 s=$3 h="$1/h6" v
    v=$(hdr "$h" Retry-After)
    check "$s: 429 Retry-After >= 1 ($v)" test "${v:-0}" -ge 1
    v=$(hdr "$h" RateLimit-Policy)
    check "$s: 429 RateLimit-Policy: $v" test "$v" = "\"$name\";q=5;w=60"
    v=$(hdr "$h" RateLimit)
    check "$s: 429 RateLimit: $v" bash -c '[[ $1 =~ ^\"$2\"\;r=0\;t=([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ]' _ "$v" "$name"
    check "$s: 429 X-RateLimit-Limit: 5" test "$(hdr "$h" X-RateLimit-Limit)" = 5
    check "$s: 429 X-RateLimit-Remaining: 0" test "$(hdr "$h" X-RateLimit-Remaining)" = 0
    v=$(hdr "$h" X-RateLimit-Reset)
    check "$s: 429 X-RateLimit-Reset >= 1 ($v)" test "${v:-0}" -ge 1
    check "$s: 429 Cache-Control: no-store" test "$(hdr "$h" Cache-Control)" = no-store
    check "$s: 429 Content-Type text/plain" bash -c '[[ $1 == text/plain* ]]' _ "$(hdr "$h" Content-Type)"
    check "$s: 429 body \"$(cat "$d/b6")\"" grep -Eq '^Too Many Requests: retry in [0-9]+ s$' "$d/b6"
}

check_allowed_headers() { # dir, rule name, scenario: what mod_magnet copied on the first 200
    local h="$1/h1" name=$2 s=$3
    check "$s: 200 body is the backend's" grep -q "hello from the backend" "$1/b1"
    check "$s: 200 RateLimit-Policy copied by mod_magnet" test "$(hdr "$h" RateLimit-Policy)" = "\"$name\";q=5;w=60"
    check "$s: 200 RateLimit copied by mod_magnet ($(hdr "$h" RateLimit))" bash -c '[[ $1 =~ ^\"$2\"\;r=4\;t=[0-9]+$ ]]' _ "$(hdr "$h" RateLimit)" "$name"
    check "$s: 200 X-RateLimit-Remaining: 4" test "$(hdr "$h" X-RateLimit-Remaining)" = 4
}

stop_lighttpd_and_check() { # dir, scenario
    local d=$1 s=$2 kids
    kids=$(pgrep -P "$LPID" 2>/dev/null | tr '\n' ' ' || true)
    stop_pid "$LPID"
    local gone=1 k
    for k in $kids; do wait_gone "$k" 5 || gone=0; done
    check "$s: filter processes ($kids) exit with lighttpd" test "$gone" = 1
    check "$s: no sanitizer report in the filter's log" bash -c '! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$1"' _ "$d/filter.log"
}

scenario() { # letter, rule name, redis enabled, description
    local d="$T/$1" s="$1 ($4)" codes
    mkdir -p "$d"
    write_conf "$d" "$2" "$3" "rltest:$RUN_ID:$1:"
    start_lighttpd "$d" || return 0
    codes=$(burst "$d")
    check "$s: 8 requests -> 5 x 200 then 3 x 429 ($codes)" \
        test "$codes" = "200 200 200 200 200 429 429 429"
    check_refusal "$d" "$2" "$s"
    check_allowed_headers "$d" "$2" "$s"
}

# ---- -t ----------------------------------------------------------------------------------
mkdir -p "$T/t"
write_conf "$T/t" tcheck false "rltest:"
if "$RL_FILTER" -t -c "$T/t/rl.conf" 2>"$T/t/good.err"; then rc=0; else rc=$?; fi
check "-t good config exits 0" test "$rc" = 0
check "-t good config says \"test is successful\"" grep -q "configuration file $T/t/rl.conf test is successful" "$T/t/good.err"
printf '# bad\nrules = (\n  { name = "bad"; limit = "0/m"; }\n);\n' > "$T/t/bad.conf"
if "$RL_FILTER" -t -c "$T/t/bad.conf" 2>"$T/t/bad.err"; then rc=0; else rc=$?; fi
check "-t bad config exits 1" test "$rc" = 1
check "-t bad config prints file:line ($(head -n 1 "$T/t/bad.err"))" grep -q "^ratelimit-filter: $T/t/bad.conf:3: " "$T/t/bad.err"

# ---- A: shared memory only -----------------------------------------------------------------
scenario A shm-only false "shared memory"
check "A: bin-path socket named NAME-0 and NAME-1 (max-procs 2)" test -S "$T/A/rl.sock-0" -a -S "$T/A/rl.sock-1" -a ! -e "$T/A/rl.sock"
check "A: the filter's refusal log lines reach server.breakagelog" \
    grep -Eq '^ratelimit-filter\[[0-9]+\]: info: 429 client=127\.0\.0\.1 method=GET path="/" rule="shm-only"' "$T/A/filter.log"
check "A: decided from shared memory (backend=shm in the log)" grep -q 'backend=shm' "$T/A/filter.log"
stop_lighttpd_and_check "$T/A" A

# ---- B: Redis enabled and running ------------------------------------------------------------
scenario B with-redis true "Redis up"
keys=$(rcli --scan --pattern "rltest:$RUN_ID:B:*" | wc -l)
check "B: keys exist in Redis ($keys under rltest:$RUN_ID:B:)" test "$keys" -ge 1
check "B: decided by Redis (backend=redis in the log)" grep -q 'backend=redis' "$T/B/filter.log"
stop_lighttpd_and_check "$T/B" B

# ---- C: Redis enabled but down ------------------------------------------------------------
stop_pid "$RPID"
check "C: redis-server stopped" bash -c '! ps -o stat= -p "$1" 2>/dev/null | grep -qv "^Z"' _ "$RPID"
scenario C redis-down true "Redis down"
check "C: decided from shared memory (backend=shm in the log)" grep -q 'backend=shm' "$T/C/filter.log"
check "C: the fallback is logged" grep -q 'warn: deciding from shared memory' "$T/C/filter.log"
stop_lighttpd_and_check "$T/C" C

if [ "$FAILS" -ne 0 ]; then
    echo "test_lighttpd_authorizer: $FAILS check(s) failed (logs were in $T)"
    for f in "$T"/*/filter.log "$T"/*/error.log; do [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
    exit 1
fi
echo "test_lighttpd_authorizer: all checks passed"
