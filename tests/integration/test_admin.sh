#!/usr/bin/env bash
# test_admin.sh -- the admin endpoints, problem+json and SIGHUP reload, through lighttpd
#
# A lighttpd spawns a pool of 3 filters in the responder role (mod_fastcgi, bin-path) with
# Redis enabled; a second lighttpd (1 filter) allows admin only to 127.0.0.2. Proves: health
# is ok, names the stores and never the password; admin paths refuse an address outside
# admin.allow (403 {"error":"forbidden"}) and answer one inside (curl --interface 127.0.0.2);
# a wrong method is 405 with Allow; 7 parallel requests on a 5/m rule over the pool are 5 x 200
# and 2 x 429 and the stats say allowed 5, refused 2; the refusals are problem+json; the
# metrics parse (HELP/TYPE for every sample, cumulative buckets, +Inf = _count); POST test
# decides in a sandbox (a burst after it still gets the full allowance); Redis killed ->
# health degraded within 5 s, restarted -> ok within 5 s; a new limit + SIGHUP applies while
# a background loop of requests sees no failure; a broken file + SIGHUP is logged and the old
# configuration keeps serving.
set -euo pipefail
NAME=test_admin
source "$(dirname "$0")/lib/lib.sh"
need lighttpd redis-server curl python3 pgrep

RPORT=$(pick_port)
RPID=""
start_redis() {
    redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$T" \
        --logfile "$T/redis.log" >/dev/null 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    wait_port "$RPORT" 5 || { fail "redis-server not listening on $RPORT in 5 s"; finish; }
}
start_redis

d=$T/A; mkdir -p "$d"
conf_text() { # the /r rule's limit
    cat <<CONF
shm: { name = "/rltest-$RUN_ID-admin"; capacity = 1000; };
redis: { enabled = true; port = $RPORT; prefix = "rl:$RUN_ID:"; breaker_open_ms = 200;
         connect_timeout_ms = 2000; command_timeout_ms = 2000; };
headers: { problem_json = true; };
rules = ( { name = "burst"; path_prefix = "/b"; limit = "5/m"; },
          { name = "reload"; path_prefix = "/r"; limit = "$1"; } );
CONF
}
conf_text 3/m > "$d/rl.conf"
CONFS+=("$d/rl.conf")
write_conf "$d/rl2.conf" other 100/m 'admin: { allow = ["127.0.0.2/32"]; };'

start_front() { # dir name, port, config, procs
    cat > "$d/$1.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $2
server.document-root = "$d"
server.pid-file = "$d/$1.pid"
server.errorlog = "$d/$1-lighttpd.log"
server.breakagelog = "$d/$1-filter.log"
server.modules += ( "mod_fastcgi" )
fastcgi.server = ( "/" => ((
    "bin-path" => "$RL_FILTER -c $3",
    "socket" => "$d/$1.sock",
    "mode" => "responder",
    "check-local" => "disable",
    "max-procs" => $4
)))
CONF
    lighttpd -D -f "$d/$1.conf" 2>>"$d/$1.stderr" &
    PIDS+=("$!")
    wait_port "$2" 5 || { fail "lighttpd $1 not listening on $2"; finish; }
}
FP=$(pick_port); start_front f1 "$FP" "$d/rl.conf" 3
FP2=$(pick_port); start_front f2 "$FP2" "$d/rl2.conf" 1
U="http://127.0.0.1:$FP"
H=/api/health/rate-limiter
jget() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$@"; }

# ---- health, access, methods ---------------------------------------------------------------
c=$(hcurl -o "$d/health" -D "$d/hh" "$U$H")
check "health 200 ($c)" test "$c" = 200
check "health status ok" test "$(jget "$d/health" status)" = ok
check "health: redis configured, breaker closed, port" test "$(jget "$d/health" backend redis configured) $(jget "$d/health" backend redis state) $(jget "$d/health" backend redis port)" = "true closed $RPORT"
check "health: shm name and capacity" test "$(jget "$d/health" backend shm name) $(jget "$d/health" backend shm capacity)" = "/rltest-$RUN_ID-admin 1000"
check "health: no password field" bash -c '! grep -qi password "$1"' _ "$d/health"
check "health: application/json, no-store" test "$(hdr "$d/hh" Content-Type) $(hdr "$d/hh" Cache-Control)" = "application/json no-store"
c=$(hcurl -o "$d/m405" -D "$d/h405" -X DELETE "$U$H")
check "DELETE health -> 405 ($c) Allow: GET" test "$c $(hdr "$d/h405" Allow)" = "405 GET"
c=$(hcurl -o "$d/m405" -D "$d/h405" "$U$H/test")
check "GET test -> 405 ($c) Allow: POST" test "$c $(hdr "$d/h405" Allow)" = "405 POST"
U2="http://127.0.0.1:$FP2"
for p in "$H" "$H/stats" /metrics; do
    c=$(hcurl -o "$d/f403" "$U2$p")
    check "127.0.0.1 outside admin.allow: $p -> 403 ($c)" test "$c $(cat "$d/f403")" = '403 {"error":"forbidden"}'
done
c=$(hcurl -o "$d/f403" -X POST --data '{}' "$U2$H/test")
check "127.0.0.1 outside admin.allow: POST test -> 403 ($c)" test "$c" = 403
c=$(hcurl -o "$d/ok2" --interface 127.0.0.2 "$U2$H")
check "127.0.0.2 inside admin.allow: health -> 200 ($c)" test "$c $(jget "$d/ok2" status)" = "200 ok"

# ---- a burst over the pool: statistics and problem+json ---------------------------------
for i in 1 2 3 4 5 6 7; do echo "$i"; done |
    xargs -P 7 -I{} curl -s --noproxy '*' --max-time 10 -o "$d/b{}.body" -D "$d/b{}.h" -w '%{http_code}\n' "$U/b/x" > "$d/burst.codes"
check "7 parallel requests on 5/m -> 5 x 200, 2 x 429 ($(sort "$d/burst.codes" | uniq -c | xargs))" test "$(grep -c 200 "$d/burst.codes") $(grep -c 429 "$d/burst.codes")" = "5 2"
hcurl -o "$d/stats" "$U$H/stats" >/dev/null
check "stats: burst allowed 5, refused 2 ($(jget "$d/stats" rules 0))" test "$(jget "$d/stats" rules 0 rule) $(jget "$d/stats" rules 0 allowed) $(jget "$d/stats" rules 0 refused)" = "burst 5 2"
check "stats: requests 7, latency count 7" test "$(jget "$d/stats" requests) $(jget "$d/stats" latency_us count)" = "7 7"
r=$(grep -l '^HTTP/1.1 429' "$d"/b*.h | head -n 1)
check "429 is application/problem+json" test "$(hdr "$r" Content-Type)" = application/problem+json
b=${r%.h}.body
check "problem+json: status 429, title, instance, retry_after" test "$(jget "$b" status) $(jget "$b" title) $(jget "$b" instance) $(jget "$b" type)" = "429 Too Many Requests /b/x about:blank"
check "problem+json: detail names the retry" bash -c '[[ $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"detail\"])" "$1") =~ retry\ in\ [0-9]+\ s ]]' _ "$b"

# ---- metrics -----------------------------------------------------------------------------
c=$(hcurl -o "$d/metrics" -D "$d/hm" "$U/metrics")
check "metrics 200 text/plain version 0.0.4 ($c)" bash -c '[ "$1" = 200 ] && [[ $2 == text/plain\;\ version=0.0.4* ]]' _ "$c" "$(hdr "$d/hm" Content-Type)"
check "metrics parse: every sample has HELP and TYPE; buckets cumulative; +Inf = _count" python3 - "$d/metrics" <<'PY'
import re, sys
help_, type_, samples = set(), {}, []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "): help_.add(line.split()[2]); continue
    if line.startswith("# TYPE "): type_[line.split()[2]] = line.split()[3]; continue
    m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? (-?[0-9.e+-]+)', line)
    if not m: sys.exit("bad line: %r" % line)
    samples.append((m.group(1), m.group(2) or "", float(m.group(3))))
for name, labels, v in samples:
    base = re.sub(r'_(bucket|sum|count)$', '', name) if name.startswith("ratelimit_decision_seconds") else name
    if base not in help_ or base not in type_: sys.exit("no HELP/TYPE for " + name)
b = [v for n, l, v in samples if n == "ratelimit_decision_seconds_bucket"]
if b != sorted(b) or len(b) != 18: sys.exit("buckets %r" % b)
cnt = [v for n, l, v in samples if n == "ratelimit_decision_seconds_count"][0]
if b[-1] != cnt: sys.exit("+Inf %s != count %s" % (b[-1], cnt))
if type_["ratelimit_decision_seconds"] != "histogram": sys.exit("histogram type")
PY
check "metrics: burst allowed 5" grep -qx 'ratelimit_requests_total{rule="burst",decision="allowed"} 5' "$d/metrics"
check "metrics: burst refused 2" grep -qx 'ratelimit_requests_total{rule="burst",decision="refused"} 2' "$d/metrics"
check "metrics: redis up, shm capacity" bash -c 'grep -qx "ratelimit_redis_up 1" "$1" && grep -qx "ratelimit_shm_capacity 1000" "$1"' _ "$d/metrics"

# ---- POST test: a sandbox, real state untouched --------------------------------------------
codes=""
for i in 1 2 3 4 5; do
    hcurl -o "$d/t$i" -X POST -H 'Content-Type: application/json' \
        --data '{"client":"127.0.0.1","path":"/r/x","method":"GET","headers":{"X-A":"b"}}' "$U$H/test" >/dev/null
    codes+="$(jget "$d/t$i" allowed) "
done
check "POST test decides (rule reload, client 127.0.0.1)" test "$(jget "$d/t1" rules 0 rule) $(jget "$d/t1" client) $(jget "$d/t1" rules 0 limit)" = "reload 127.0.0.1 3"
c=$(hcurl -o "$d/tbad" -X POST --data 'not json' "$U$H/test")
check "POST test with a bad body -> 400 ($c)" test "$c" = 400
codes=""
for i in 1 2 3 4; do codes+="$(hcurl -o /dev/null "$U/r/x") "; done
check "after 5 test decisions the real key still has 3 ($codes)" test "$codes" = "200 200 200 429 "

# ---- Redis down and back -----------------------------------------------------------------
poll_health() { # wanted status, seconds -> 0 when seen in time
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(hcurl -o "$d/hp" "$U$H" >/dev/null; jget "$d/hp" status 2>/dev/null)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
# Deadlines are generous (2 s, not what this test is about: a killed Redis refuses at once), and
# so are the polls (up to 50 tries): a loaded machine must not turn a slow answer into a
# fallback or a missed poll into a failure.
kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
check "Redis killed: health degraded within 5 s" poll_health degraded 5
start_redis
check "Redis back: health ok within 5 s" poll_health ok 5

# ---- SIGHUP reload -----------------------------------------------------------------------
fpids() { pgrep -f -- "$RL_FILTER -c $d/rl.conf" | xargs; }
check "3 filter processes in the pool ($(fpids))" test "$(fpids | wc -w)" = 3
: > "$d/loop.codes"
( end=$((SECONDS + 3)); while [ $SECONDS -lt $end ]; do
      curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}\n' "$U/ok" >> "$d/loop.codes" || echo fail >> "$d/loop.codes"
  done ) &
LOOP=$!
sleep 0.5
conf_text 6/m > "$d/rl.conf"
kill -HUP $(fpids)
sleep 0.5
kill -HUP $(fpids)   # a second HUP while requests flow: harmless
wait "$LOOP"
n=$(wc -l < "$d/loop.codes"); bad=$(grep -vc '^200$' "$d/loop.codes" || true)
check "requests during the reloads: $n answered, $bad not 200" test "$n" -gt 10 -a "$bad" = 0
for ((i = 0; i < 100; i++)); do [ "$(grep -c 'reload: .* now in force' "$d/f1-filter.log")" -ge 6 ] && break; sleep 0.1; done # up to 10 s: a loaded machine
check "every process reloaded, twice ($(grep -c 'now in force' "$d/f1-filter.log"))" test "$(grep -c 'reload: .* now in force' "$d/f1-filter.log")" -ge 6
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(hcurl -o /dev/null --interface 127.0.0.4 "$U/r/x") "; done
check "the new limit 6/m applies ($codes)" test "$codes" = "200 200 200 200 200 200 429 "
echo 'rules = ( { name = "broken"; limit = "0/s"; } );' > "$d/rl.conf"
kill -HUP $(fpids)
for ((i = 0; i < 20; i++)); do [ "$(grep -c 'keeping the running configuration' "$d/f1-filter.log")" -ge 3 ] && break; sleep 0.1; done
check "invalid config + HUP: logged by each process" test "$(grep -c "error: reload: $d/rl.conf:1: .*: keeping the running configuration" "$d/f1-filter.log")" -ge 3
codes=""
for i in 1 2 3 4 5 6 7; do codes+="$(hcurl -o /dev/null --interface 127.0.0.5 "$U/r/x") "; done
check "the old configuration keeps serving ($codes)" test "$codes" = "200 200 200 200 200 200 429 "
conf_text 6/m > "$d/rl.conf"   # for the cleanup's --shm-remove
check "no sanitizer report" no_sanitizer_report "$d/f1-filter.log"
finish
