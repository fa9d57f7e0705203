# lib.sh -- what the integration tests share: checks, free ports, bounded waits, cleanup
#
# Source it after setting NAME (the test's name). It makes $T (a temp dir), $ROOT, $RUN_ID,
# PIDS (stopped by pid, SIGTERM then SIGKILL, in the EXIT trap) and CONFS (filter
# configurations whose shared memory is removed then). finish() prints the verdict and exits.
# RL_KEEP_TMP=1 keeps $T after the run, to read the logs of a failed test.
: "${RL_FILTER:?set RL_FILTER to the absolute path of ratelimit-filter}"
[ -x "$RL_FILTER" ] || { echo "FAIL: $RL_FILTER is not executable"; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/rl-$NAME.XXXXXX")
chmod 755 "$T"      # servers that drop privileges must reach their files
RUN_ID="$$-$RANDOM"
FAILS=0
PIDS=()
CONFS=()

lib_cleanup() {
    local pid i c
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    for c in "${CONFS[@]}"; do "$RL_FILTER" --shm-remove -c "$c" >/dev/null 2>&1 || true; done
    [ -n "${RL_KEEP_TMP:-}" ] || rm -rf "$T"
}
trap lib_cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # description, command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
need() { # tools...
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "FAIL: $t is not installed (scripts/deps)"; exit 1; }
    done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # a free port in [20000, 32768), starting somewhere random
    local p=$((20000 + RANDOM % 12000)) n
    for ((n = 0; n < 500; n++)); do
        if port_free "$p" && ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return 0
        fi
        p=$((p + 1)); [ "$p" -lt 32768 ] || p=20000
    done
    echo "no free port" >&2; return 1
}
distinct_ports() { # n: n distinct free ports
    local -a got=()
    local p
    while [ ${#got[@]} -lt "$1" ]; do
        p=$(pick_port)
        case " ${got[*]} " in *" $p "*) continue ;; esac
        got+=("$p")
    done
    echo "${got[*]}"
}
wait_port() { # port, seconds: until something listens
    local i
    for ((i = 0; i < $2 * 10; i++)); do port_free "$1" || return 0; sleep 0.1; done
    return 1
}
wait_file() { # file, seconds: until it exists and is not empty (or is a socket)
    local i
    for ((i = 0; i < $2 * 10; i++)); do [ -s "$1" ] || [ -S "$1" ] && return 0; sleep 0.1; done
    return 1
}
alive() { # pid: running (a zombie, dead but not yet reaped by us, does not count)
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
wait_gone() { # pid, seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do alive "$1" || return 0; sleep 0.1; done
    return 1
}
stop_pid() { # pid: SIGTERM, bounded wait, then SIGKILL
    kill "$1" 2>/dev/null || return 0
    wait_gone "$1" 10 || kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
hdr() { # file, header name: its value (first one), CR stripped
    tr -d '\r' < "$1" | sed -n "s/^$2: //Ip" | head -n 1
}
# curl quietly to 127.0.0.1, never through a proxy; prints the status code.
hcurl() { curl -s --noproxy '*' --max-time 10 -w '%{http_code}' "$@" || true; }

write_conf() { # file, rule name, limit, extra config text
    cat > "$1" <<CONF
# written by $NAME
shm: { name = "/rltest-$RUN_ID-$2"; capacity = 1000; };
$4
rules = ( { name = "$2"; path_prefix = "/"; limit = "$3"; } );
CONF
    CONFS+=("$1")
}

# -t accepts config FILE, or the test fails and ends here (LABEL, if given, leads the message);
# -t's stderr is kept beside FILE in check.log.
conf_ok() { # file [label]
    local log
    log="$(dirname "$1")/check.log"
    "$RL_FILTER" -t -c "$1" >/dev/null 2>"$log" ||
        { fail "${2:+$2: }the configuration is refused: $(cat "$log")"; finish; }
}

# The prefork daemon on $1 (ADDR or path) with config $2 and $3 workers; its stderr in $4.
start_daemon() {
    "$RL_FILTER" --listen "$1" --workers "$3" -c "$2" 2>>"$4" &
    DPID=$!
    PIDS+=("$DPID")
    if [ "${1:0:1}" = / ]; then wait_file "$1" 5; else wait_port "${1##*:}" 5; fi ||
        { fail "the daemon is not listening on $1 in 5 s: $(tail -n 3 "$4")"; return 1; }
}

# A lighttpd on 127.0.0.1:$2 serving $1/www, with echo.cgi as $1/www/echo.cgi (mod_cgi); the
# request bodies it buffers for the CGI go to temp files in $1, not /var/tmp.
start_backend() {
    local d=$1
    mkdir -p "$d/www"
    cp "$ROOT/tests/integration/lib/echo.cgi" "$d/www/echo.cgi"
    echo "static file" > "$d/www/static.txt"
    cat > "$d/backend.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $2
server.document-root = "$d/www"
server.pid-file = "$d/backend.pid"
server.errorlog = "$d/backend.log"
server.modules += ( "mod_cgi" )
cgi.assign = ( ".cgi" => "/usr/bin/perl" )
mimetype.assign = ( ".txt" => "text/plain" )
server.stream-response-body = 2
server.upload-dirs = ( "$d" )
CONF
    lighttpd -D -f "$d/backend.conf" 2>>"$d/backend.stderr" &
    BPID=$!
    PIDS+=("$BPID")
    wait_port "$2" 5 || { fail "backend lighttpd not listening on $2"; return 1; }
}

# The shipped lighttpd proxy recipe (etc/lighttpd/proxy.conf, 2 filters) on a free port LP,
# in front of the filter with $1/rl.conf; the other arguments are extra lines of its config.
start_proxy_recipe() { # dir [config lines...]
    local d=$1 line
    shift
    LP=$(pick_port)
    {
        echo "server.bind = \"127.0.0.1\""
        echo "server.port = $LP"
        echo "server.document-root = \"$d\""
        echo "server.pid-file = \"$d/front.pid\""
        echo "server.errorlog = \"$d/front.log\""
        echo "server.upload-dirs = ( \"$d/up\" )"
        for line in "$@"; do echo "$line"; done
        sed -e "s|/usr/local/bin/ratelimit-filter -c /etc/ratelimit-filter/ratelimit.conf|$RL_FILTER -c $d/rl.conf|" \
            -e "s|/run/lighttpd/ratelimit-filter.sock|$d/rl.sock|" \
            -e "s|/var/log/lighttpd/ratelimit-filter.log|$d/filter.log|" \
            -e 's|"max-procs"   => 4|"max-procs"   => 2|' "$ROOT/etc/lighttpd/proxy.conf"
    } > "$d/front.conf"
    lighttpd -tt -f "$d/front.conf" >/dev/null 2>"$d/tt.err" || { fail "lighttpd -tt: $(cat "$d/tt.err")"; return 1; }
    lighttpd -D -f "$d/front.conf" 2>>"$d/front.stderr" &
    PIDS+=("$!")
    wait_port "$LP" 5 || { fail "front lighttpd not listening on $LP"; return 1; }
}

# True when $RL_FILTER is an ASan/UBSan build. Not `ldd | grep -q`: under pipefail, grep -q
# exiting first can kill ldd with SIGPIPE and make the answer wrong.
sanitized_build() {
    local libs
    libs=$(ldd "$RL_FILTER" 2>/dev/null || true)
    [[ $libs == *libasan* || $libs == *libubsan* ]]
}

no_sanitizer_report() { # log file
    ! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$1"
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$NAME: $FAILS check(s) failed"
        for f in "$T"/*.log "$T"/*/*.log; do [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
        exit 1
    fi
    echo "$NAME: all checks passed"
    exit 0
}
