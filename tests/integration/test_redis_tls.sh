#!/usr/bin/env bash
# test_redis_tls.sh -- the TLS recipe: stunnel4 in client mode in front of a TLS-only Redis
#
# A throwaway CA and server certificate (openssl, for 127.0.0.1), a redis-server that speaks
# TLS only (--port 0 --tls-port), and stunnel4 in client mode on 127.0.0.1 (verifying the
# server's chain and address) forwarding plain connections to it. A lighttpd pool (authorizer,
# 2 processes) with redis.host/port = the tunnel, rules on_redis_down = "closed":
#   1 exact      7 requests against 5/h: exactly 5 admitted, the key in the TLS Redis
#   2 no tunnel  the filter pointed at the TLS port itself: no decision (it speaks plain RESP)
#   3 cost       --decide --count 2000 through the tunnel and straight to a plain redis-server:
#                FIGURE of both times (no bound: the machine is shared)
set -euo pipefail
NAME=test_redis_tls
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/faults.sh"
need lighttpd redis-server redis-cli curl stunnel4 openssl

# ---- certificates ----------------------------------------------------------------------------
C="$T/certs"
mkdir -p "$C"
{
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rltest CA" \
        -keyout "$C/ca.key" -out "$C/ca.crt"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$C/redis.key" \
        -out "$C/redis.csr"
    printf 'subjectAltName = IP:127.0.0.1\n' > "$C/ext.cnf"
    openssl x509 -req -in "$C/redis.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
        -days 2 -extfile "$C/ext.cnf" -out "$C/redis.crt"
} >"$T/openssl.log" 2>&1 || { fail "openssl: $(tail -n 3 "$T/openssl.log")"; finish; }

# ---- TLS-only Redis, and the tunnel ----------------------------------------------------------
TPORT=$(pick_port)
mkdir -p "$T/tls"
redis-server --bind 127.0.0.1 --port 0 --tls-port "$TPORT" --tls-cert-file "$C/redis.crt" \
    --tls-key-file "$C/redis.key" --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients no \
    --save "" --appendonly no --dir "$T/tls" --logfile "$T/tls/redis.log" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$TPORT" 5 || { fail "TLS redis-server not listening on $TPORT"; finish; }
tcli() { timeout 5 redis-cli --tls --cacert "$C/ca.crt" -h 127.0.0.1 -p "$TPORT" "$@"; }

SPORT=$(pick_port)
cat > "$T/stunnel.conf" <<CONF
foreground = yes
pid =
output = $T/stunnel.log
[redis]
client = yes
accept = 127.0.0.1:$SPORT
connect = 127.0.0.1:$TPORT
verifyChain = yes
CAfile = $C/ca.crt
checkIP = 127.0.0.1
CONF
stunnel4 "$T/stunnel.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SPORT" 5 || { fail "stunnel4 not listening on $SPORT: $(tail -n 3 "$T/stunnel.log")"; finish; }

start_redis # a plain one, for the cost comparison (faults.sh: $RPORT)

PREFIX="rltest:$RUN_ID:"
ME=$(id -un) # shm.user: --decide run as root creates no segment without one
conf() { # file port
    cat > "$1" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-$(basename "$1" .conf)"; capacity = 1000; user = "$ME"; };
redis: { enabled = true; host = "127.0.0.1"; port = $2; prefix = "$PREFIX";
         connect_timeout_ms = 500; command_timeout_ms = 1000; };
rules = (
  { name = "t"; path_prefix = "/t"; limit = "5/h"; on_redis_down = "closed"; },
  { name = "c"; path_prefix = "/c"; limit = "1000000/s"; on_redis_down = "closed"; }
);
CONF
    CONFS+=("$1")
}
conf "$T/tunnel.conf" "$SPORT"
conf "$T/direct.conf" "$TPORT"
conf "$T/plain.conf" "$RPORT"

# ---- 1 exact ---------------------------------------------------------------------------------
D="$T/pool"
mkdir -p "$D/www"
echo t > "$D/www/t"
start_pool "$D" authorizer "$T/tunnel.conf"
n=0
for i in 1 2 3 4 5 6 7; do
    [ "$(hcurl -o /dev/null "http://127.0.0.1:$LPORT/t")" = 200 ] && n=$((n + 1))
done
check "exact: 5 of 7 admitted through the tunnel (got $n)" [ "$n" = 5 ]
check "exact: the key is in the TLS Redis" \
    [ "$(tcli --scan --pattern "${PREFIX}*" 2>/dev/null | wc -l)" -ge 1 ]

# ---- 2 no tunnel -----------------------------------------------------------------------------
out=$("$RL_FILTER" --decide -c "$T/direct.conf" --client 192.0.2.1 --path /t 2>&1 || true)
check "no tunnel: straight to the TLS port, Redis does not decide (fail-closed)" \
    grep -q '"backend":"fail-closed"' <<<"$out"

# ---- 3 cost ----------------------------------------------------------------------------------
decide_ms() { # conf: ms for 2000 decisions, and every one made by Redis
    local t0 t1 out
    t0=$(now_ms)
    out=$("$RL_FILTER" --decide -c "$1" --client 192.0.2.2 --path /c --count 2000 2>/dev/null)
    t1=$(now_ms)
    [ "$(grep -c '^{"allowed":true,"backend":"redis"' <<<"$out")" = 2000 ] || { echo "-1"; return; }
    echo $((t1 - t0))
}
ms_tls=$(decide_ms "$T/tunnel.conf")
ms_plain=$(decide_ms "$T/plain.conf")
check "cost: 2000 decisions admitted through the tunnel ($ms_tls ms)" [ "$ms_tls" -ge 0 ]
check "cost: 2000 decisions admitted on plain Redis ($ms_plain ms)" [ "$ms_plain" -ge 0 ]
echo "FIGURE tls: 2000 sequential decisions in one process: $ms_tls ms through stunnel4 + TLS, $ms_plain ms plain"
check "no sanitizer report in the filter's log" no_sanitizer_report "$D/filter.log"
finish
