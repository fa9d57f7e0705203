#!/usr/bin/env bash
# test_stack.sh -- scripts/stack up|status|down in all four combinations
#
# For lighttpd/authorizer, lighttpd/proxy, apache/authorizer and apache/proxy, each on free
# 127.0.0.1 ports with --procs 2 and the demo configuration, in one temporary RL_STACK_DIR:
#   - `up` exits 0 and writes the URL; the page (authorizer) or the echo CGI behind the
#     filter (proxy) answers;
#   - `scripts/burst -n 15 -c 3 -k 1 --limit 10/m URL` exits 0: exactly 10 admitted, 5 x 429,
#     headers coherent. The same client (127.0.1.1) in every combination, so each exact count
#     also proves the previous `down` removed the shared memory;
#   - `status` exits 0 and shows every component running and 2 filter processes (3 under
#     lighttpd authorizer: the recipe's admin responder mount);
#   - `down` exits 0; then `status` exits 1, no process the stack started (pid files and
#     their children, taken before `down`) is left, nothing listens on its ports, the
#     shared-memory segment is gone, and a second `down` exits 0.
# And the errors: a busy --port, a second `up`, --mode proxy with a --config lacking
# proxy.backend: exit 1 with a clear message, nothing left running.
# RL_FILTER runs under lighttpd and as Apache's daemon, so the sanitizer build is exercised.
set -euo pipefail
NAME=test_stack
source "$(dirname "$0")/lib/lib.sh"
need lighttpd apache2 curl perl ss
source "$(dirname "$0")/lib/stack.sh"

none_alive() { local p; for p in "$@"; do alive "$p" && return 1; done; return 0; }
none_listening() { local p; for p in "$@"; do port_free "$p" || return 1; done; return 0; }

combo() { # server, mode
    local s=$1 m=$2 tag="$1/$2" P BP FP url rc pids shm
    read -r P BP FP <<< "$(distinct_ports 3)"
    local args=(up --no-build --server "$s" --mode "$m" --port "$P" --procs 2)
    [ "$m" = proxy ] && args+=(--backend-port "$BP")
    [ "$s" = apache ] && args+=(--filter-port "$FP")
    rc=0; "$STACK" "${args[@]}" >"$T/up.$s.$m" 2>&1 || rc=$?
    check "$tag: up exits 0 ($rc: $(tail -n 1 "$T/up.$s.$m"))" test "$rc" = 0
    [ "$rc" = 0 ] || return 0
    url=$(cat "$RL_STACK_DIR/url")
    check "$tag: url file is http://127.0.0.1:$P/ ($url)" test "$url" = "http://127.0.0.1:$P/"
    check "$tag: up printed the URL last" test "$(tail -n 1 "$T/up.$s.$m")" = "$url"
    mapfile -t pids < <(stack_pids)
    PIDS+=("${pids[@]}")
    shm=$(sed -n 's/^shm: { name = "\/\([^"]*\)".*/\1/p' "$RL_STACK_DIR/ratelimit.conf")

    if [ "$m" = proxy ]; then
        c=$(hcurl -o /dev/null -D "$T/h.$s" "${url}echo?from=test")
        check "$tag: /echo through the filter -> 200 ($c)" test "$c" = 200
        check "$tag: the echo backend saw the URI" test "$(hdr "$T/h.$s" X-Echo-Uri)" = "/echo?from=test"
        check "$tag: the backend got Forwarded" test "$(hdr "$T/h.$s" X-Req-FORWARDED)" = "for=127.0.0.1;proto=http"
        check "$tag: proxy.backend is the demo backend" \
            grep -q "backend = \"http://127.0.0.1:$BP\"" "$RL_STACK_DIR/ratelimit.conf"
    else
        c=$(hcurl -o "$T/b.$s" -D "$T/h.$s" "$url")
        check "$tag: the demo page -> 200 ($c)" test "$c" = 200
        check "$tag: the page is the demo site" grep -q "Hello from the demo backend" "$T/b.$s"
    fi
    check "$tag: RateLimit on an allowed answer" test -n "$(hdr "$T/h.$s" RateLimit)"

    rc=0; "$ROOT/scripts/burst" -n 15 -c 3 -k 1 --limit 10/m "$url" >"$T/burst.$s.$m" 2>&1 </dev/null || rc=$?
    check "$tag: burst -n 15 -c 3 -k 1 --limit 10/m exits 0 ($rc)" test "$rc" = 0
    check "$tag: exactly 10 admitted, 5 refused" grep -Eq '^127\.0\.1\.1 +15 +10 +5 +0 +0 +10\.\.10 +ok$' "$T/burst.$s.$m"

    rc=0; "$STACK" status >"$T/status.$s.$m" 2>&1 || rc=$?
    check "$tag: status exits 0 ($rc)" test "$rc" = 0
    check "$tag: status shows the web server running" grep -Eq "^$([ "$s" = apache ] && echo apache || echo lighttpd) +running +pid [0-9]+" "$T/status.$s.$m"
    # lighttpd's authorizer recipe adds one responder process for the admin endpoints.
    want=2; [ "$s/$m" = lighttpd/authorizer ] && want=3
    check "$tag: status shows $want filter processes" \
        test "$(sed -En 's/^  (filter pool|workers) +running +pids //p' "$T/status.$s.$m" | wc -w)" = "$want"
    if [ "$s" = apache ]; then
        check "$tag: status shows the filter daemon" grep -Eq "^filter +running +pid [0-9]+ +filter daemon on 127.0.0.1:$FP" "$T/status.$s.$m"
    fi
    if [ "$m" = proxy ]; then
        check "$tag: status shows the backend" grep -Eq "^backend +running +pid [0-9]+ .*127.0.0.1:$BP" "$T/status.$s.$m"
    fi
    check "$tag: ${#pids[@]} processes of the stack found (>= 3)" test "${#pids[@]}" -ge 3

    check "$tag: shared memory /$shm exists while up" test -e "/dev/shm/$shm"

    rc=0; "$STACK" down >"$T/down.$s.$m" 2>&1 || rc=$?
    check "$tag: down exits 0 ($rc)" test "$rc" = 0
    rc=0; "$STACK" status >/dev/null 2>&1 || rc=$?
    check "$tag: status after down exits 1 ($rc)" test "$rc" = 1
    check "$tag: no process of the stack left (${pids[*]})" none_alive "${pids[@]}"
    check "$tag: nothing listens on its ports" none_listening "$P" $([ "$m" = proxy ] && echo "$BP") $([ "$s" = apache ] && echo "$FP")
    check "$tag: shared memory /$shm (and its -stats) removed" bash -c '! compgen -G "/dev/shm/$1*" >/dev/null' _ "$shm"
    rc=0; "$STACK" down >/dev/null 2>&1 || rc=$?
    check "$tag: a second down exits 0 ($rc)" test "$rc" = 0
}

combo lighttpd authorizer
combo lighttpd proxy
combo apache authorizer
combo apache proxy

# ---- errors ---------------------------------------------------------------------------------
read -r P P2 <<< "$(distinct_ports 2)"
"$STACK" up --no-build --port "$P" >/dev/null 2>&1 || fail "errors: up for the error cases"
mapfile -t pids < <(stack_pids)
PIDS+=("${pids[@]}")
rc=0; "$STACK" up --no-build --port "$P2" >"$T/again" 2>&1 || rc=$?
check "errors: a second up exits 1 ($rc)" test "$rc" = 1
check "errors: ... saying it is already up" grep -q "already up" "$T/again"
rc=0; RL_STACK_DIR=$T/other "$STACK" up --no-build --port "$P" >"$T/busy" 2>&1 || rc=$?
check "errors: a busy --port exits 1 ($rc)" test "$rc" = 1
check "errors: ... naming the port ($(head -n 1 "$T/busy"))" grep -q "port $P on 127.0.0.1 is in use" "$T/busy"
check "errors: ... and starting nothing" test ! -e "$T/other/components"
printf 'shm: { name = "/rltest-%s-nb"; capacity = 100; };\nrules = ( { name = "d"; path_prefix = "/"; limit = "10/m"; } );\n' \
    "$RUN_ID" > "$T/nobackend.conf"
CONFS+=("$T/nobackend.conf")
rc=0; RL_STACK_DIR=$T/other "$STACK" up --no-build --mode proxy --port "$P2" --config "$T/nobackend.conf" \
    >"$T/nb" 2>&1 || rc=$?
check "errors: proxy mode, a config without proxy.backend exits 1 ($rc)" test "$rc" = 1
check "errors: ... saying so" grep -q "has no proxy.backend, which --mode proxy needs" "$T/nb"
check "errors: ... and nothing listens on $P2" port_free "$P2"
"$STACK" down >/dev/null 2>&1
check "errors: the stack is down" none_alive "${pids[@]}"

check "no sanitizer report in filter.log" no_sanitizer_report "$RL_STACK_DIR/filter.log"
finish
