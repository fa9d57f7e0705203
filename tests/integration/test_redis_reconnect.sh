#!/usr/bin/env bash
# test_redis_reconnect.sh -- a Redis restart while the pool is idle costs no fallback decision
#
# A lighttpd pool of 4 filter processes (responder, max-procs 4: lighttpd gives each its own
# socket, rl.sock-0 .. rl.sock-3), each spoken to directly with cgi-fcgi so that every process
# is asked. Each process decides once in Redis (and keeps its connection), then redis-server is
# SIGKILLed and, with no request in between, restarted on the same port. The first request to
# every process after that must be decided by Redis: the rule's limit is 1000/m and
# redis.hosts = 10, so X-RateLimit-Limit says 1000 when Redis decided and 100 when shared
# memory did (this host's share). No process may log "deciding from shared memory".
# Three rounds; prints, per round, the time from Redis accepting connections to the last
# process having answered from Redis (goal <= 1 s; checked against a generous 6 s here). The
# deadlines are generous too (2 s): the test is about the reconnect, not the deadline, and a
# loaded machine could take more than 50 ms to reconnect and reload the script (a fallback).
set -euo pipefail
NAME=test_redis_reconnect
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli cgi-fcgi pgrep
PROCS=4
ROUNDS=3

start_redis
PREFIX="rltest:$RUN_ID:"
d=$T/p; mkdir -p "$d/www"
cat > "$d/rl.conf" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-reconnect"; capacity = 1000; };
redis: { enabled = true; host = "127.0.0.1"; port = $RPORT; prefix = "$PREFIX"; hosts = 10;
         connect_timeout_ms = 2000; command_timeout_ms = 2000;
         breaker_failures = 3; breaker_open_ms = 250; };
rules = ( { name = "r"; path_prefix = "/"; limit = "1000/m"; algorithm = "sliding_window"; } ); # keys live ~2 periods (a GCRA key of one request expires in 60 ms)
CONF
CONFS+=("$d/rl.conf")
start_pool "$d" responder "$d/rl.conf" "$PROCS"
for ((i = 0; i < PROCS; i++)); do
    wait_file "$d/rl.sock-$i" 5 || { fail "no socket $d/rl.sock-$i"; finish; }
done

ask() { # proc, client: "END_MS STATUS LIMIT" of one request to that process
    local out code lim
    out=$(env -i REQUEST_METHOD=GET REQUEST_URI=/ "REMOTE_ADDR=$2" SERVER_PROTOCOL=HTTP/1.1 \
        timeout 5 cgi-fcgi -bind -connect "$d/rl.sock-$1" 2>/dev/null | tr -d '\r' || true)
    code=$(echo "$out" | sed -n 's/^Status: \([0-9]*\).*/\1/p' | head -n 1)
    lim=$(echo "$out" | sed -n 's/^X-RateLimit-Limit: //p' | head -n 1)
    echo "$(now_ms) ${code:-200} ${lim:--}"
}
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null; }

for ((i = 0; i < PROCS; i++)); do
    set -- $(ask "$i" "192.0.2.$((i + 1))")
    check "process $i decides in Redis before the restart (status $2, limit $3)" test "$3" = 1000
done

worst=0
for ((round = 1; round <= ROUNDS; round++)); do
    kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
    sleep 0.3 # idle: no request reaches the pool while Redis is away
    # Not start_redis: its wait_port polls every 100 ms; find the moment Redis accepts to
    # within a few ms.
    redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$T" \
        --logfile "$T/redis.log" >/dev/null 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    for ((n = 0; n < 1000; n++)); do accepting && break; sleep 0.005; done
    accepting || { fail "redis-server not accepting on $RPORT after its restart"; finish; }
    up=$(now_ms)
    asks=()
    for ((i = 0; i < PROCS; i++)); do
        ask "$i" "198.51.100.$((round * 10 + i))" > "$T/round$round-$i" &
        asks+=("$!")
    done
    for j in "${asks[@]}"; do wait "$j" || true; done
    last=0 redis=0
    for ((i = 0; i < PROCS; i++)); do
        set -- $(cat "$T/round$round-$i")
        if [ "$3" = 1000 ]; then redis=$((redis + 1)); fi
        if [ "$1" -gt "$last" ]; then last=$1; fi
    done
    took=$((last - up))
    if [ "$took" -gt "$worst" ]; then worst=$took; fi
    check "round $round: the first decision of each of $PROCS processes after the restart is Redis' ($redis of $PROCS)" \
        test "$redis" = "$PROCS"
    check "round $round: every process back on Redis within 6 s of Redis accepting ($took ms)" \
        test "$took" -lt 6000
    echo "FIGURE: Redis restarted (round $round): $redis of $PROCS idle pool processes decided their next request in Redis, the last answer ${took} ms after Redis accepted connections"
done
keys=$(rcli eval "return #redis.call('keys', ARGV[1])" 0 "${PREFIX}{198.51.100.*}:*")
check "the last round's clients have their keys in Redis ($keys)" test "$keys" = "$PROCS"
check "no process fell back to shared memory" \
    bash -c "! grep -q 'deciding from shared memory' '$d/filter.log'"
check "no sanitizer report" no_sanitizer_report "$d/filter.log"
echo "FIGURE: Redis restart while the pool was idle: worst ${worst} ms from Redis accepting connections to every process deciding in Redis ($ROUNDS rounds, $PROCS processes)"
finish
