#!/usr/bin/env bash
# profile_authz.sh -- what one authorizer request costs the filter and the bare program
#
# Usage: tests/bench/profile_authz.sh [-n N] [--top K] [--lighttpd] [--keep]
#
# For the filter (shared memory, one rule admitting everything: the allowed path) and for the
# bare FastCGI authorizer (build/bench/bare-fcgi, scripts/bench's floor), each in turn: a
# lighttpd on a free 127.0.0.1 port mounts the program as its authorizer (max-procs 1) in
# front of an 11-byte static file, as scripts/bench's authz-shm and bare-authz rows do; 200
# requests warm it up, then N (default 5000) more come from `ab -k -c 4` while
#   - valgrind's callgrind counts the FastCGI process' instructions (counters zeroed after the
#     warm-up and dumped after the N requests, so start-up is not counted), and
#   - in a second run, natively, `strace -c` attached to the process counts its system calls.
# Prints instructions and system calls per request for both, side by side, and the filter's
# functions by inclusive instructions per request (the K largest, default 30). A third run,
# native, of 10 x N requests reads the CPU time (user, system) lighttpd and the FastCGI process
# spent, from /proc: microseconds per request, which move with the machine's load. With
# --lighttpd, lighttpd itself runs under callgrind too (its instructions per request: what
# parsing the two answers costs it). Counts, unlike rates, do not move with the load of a
# shared machine. Not a test (nothing is asserted); `make all build/bench/bare-fcgi` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
FILTER=${RL_FILTER:-$ROOT/build/ratelimit-filter}
BARE=${RL_BARE:-$ROOT/build/bench/bare-fcgi}

n=5000 top=30 lcg=0 keep=0
while [ $# -gt 0 ]; do
    case $1 in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    --top) top=${2:?--top needs a number}; shift 2 ;;
    --lighttpd) lcg=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile_authz: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $n =~ ^[1-9][0-9]*$ ]] && [[ $top =~ ^[1-9][0-9]*$ ]] || { echo "profile_authz: not a positive number" >&2; exit 2; }
for tool in valgrind callgrind_annotate callgrind_control strace ab lighttpd curl; do
    command -v $tool >/dev/null || { echo "profile_authz: $tool is not installed" >&2; exit 2; }
done
[ -x "$FILTER" ] && [ -x "$BARE" ] || { echo "profile_authz: build first (make all build/bench/bare-fcgi)" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/rl-profile.XXXXXX")
chmod 755 "$T"
LPID="" SPID=""
stop_all() {
    local pid
    for pid in $SPID $LPID; do
        kill "$pid" 2>/dev/null || continue
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    LPID="" SPID=""
}
cleanup() {
    stop_all
    "$FILTER" --shm-remove -c "$T/rl.conf" >/dev/null 2>&1 || true
    if [ "$keep" -eq 1 ]; then echo "profile_authz: files kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$T/www"
printf 'bench file\n' >"$T/www/bench.txt"
cat >"$T/rl.conf" <<CONF
shm: { name = "/rlprofile-$$"; capacity = 1000; };
rules = ( { name = "bench"; path_prefix = "/"; limit = "1000000000/s"; } );
CONF
"$FILTER" -t -c "$T/rl.conf" >/dev/null 2>&1 || { "$FILTER" -t -c "$T/rl.conf"; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p=$((20000 + RANDOM % 12000)) i
    for ((i = 0; i < 500; i++)); do
        port_free "$p" && { echo "$p"; return 0; }
        p=$((p + 1)); [ "$p" -lt 32768 ] || p=20000
    done
    echo "profile_authz: no free port" >&2; exit 1
}

# callgrind_control -z|-d PID, quietly, again while another vgdb holds the process' lock.
cg_ctl() {
    local i out
    for ((i = 0; i < 50; i++)); do
        out=$(callgrind_control "$1" "$2" 2>&1) || true
        [[ $out == *"Cannot acquire lock"* ]] || return 0
        sleep 0.2
    done
    echo "profile_authz: callgrind_control $1 $2: $out" >&2
    exit 1
}

# utime and stime of each pid, in clock ticks: "u1 s1 u2 s2 ..."
ticks() {
    local p
    for p in "$@"; do sed 's/.*) //' "/proc/$p/stat" | awk '{ printf "%d %d ", $12, $13 }'; done
}
declare -A CPU_US

# run NAME MODE(callgrind|strace|cpu) COMMAND: one lighttpd, warm-up, N measured requests
# (10 x N for cpu).
run() {
    local name=$1 mode=$2 cmd=$3 port wrap="" lwrap=() kid i url count=$n t0 t1
    port=$(pick_port)
    [ "$mode" = callgrind ] && wrap="$(command -v valgrind) --tool=callgrind --callgrind-out-file=$T/$name.cg.%p "
    [ "$mode" = callgrind ] && [ "$lcg" -eq 1 ] &&
        lwrap=(valgrind --tool=callgrind "--callgrind-out-file=$T/$name.lcg.%p")
    cat >"$T/$name.$mode.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$T/www"
server.errorlog = "$T/$name.$mode.log"
server.breakagelog = "$T/$name.$mode.fcgi.log"
mimetype.assign = ( ".txt" => "text/plain" )
server.modules += ( "mod_fastcgi" )
fastcgi.server = ( "/" => (( "bin-path" => "$wrap$cmd", "socket" => "$T/$name.$mode.sock",
    "mode" => "authorizer", "check-local" => "disable", "max-procs" => 1 )))
CONF
    "${lwrap[@]}" lighttpd -D -f "$T/$name.$mode.conf" >"$T/$name.$mode.out" 2>&1 &
    LPID=$!
    url=http://127.0.0.1:$port/bench.txt
    for ((i = 0; i < 150; i++)); do
        [ "$(curl -s --noproxy '*' --max-time 5 "$url" 2>/dev/null)" = "bench file" ] && break
        sleep 0.2
    done
    [ "$i" -lt 150 ] || { echo "profile_authz: $name does not answer: $(tail -n 3 "$T/$name.$mode.log")" >&2; exit 1; }
    ab -q -k -n 200 -c 4 "$url" >/dev/null 2>&1
    kid=$(ps -o pid= --ppid "$LPID" | tr -d ' ' | head -n 1)
    [ -n "$kid" ] || { echo "profile_authz: no FastCGI process under lighttpd" >&2; exit 1; }
    if [ "$mode" = callgrind ]; then
        cg_ctl -z "$kid"
        [ "$lcg" -eq 0 ] || cg_ctl -z "$LPID"
    elif [ "$mode" = strace ]; then
        strace -c -o "$T/$name.strace" -p "$kid" 2>/dev/null &
        SPID=$!
        sleep 1 # attached
    else
        count=$((10 * n))
        t0=$(ticks "$LPID" "$kid")
    fi
    ab -k -n "$count" -c 4 "$url" >"$T/$name.$mode.ab" 2>&1
    grep -q "^Complete requests: *$count\$" "$T/$name.$mode.ab" && grep -q "^Failed requests: *0\$" "$T/$name.$mode.ab" &&
        ! grep -q "^Non-2xx" "$T/$name.$mode.ab" ||
        { echo "profile_authz: $name: not $n good answers: $(cat "$T/$name.$mode.ab")" >&2; exit 1; }
    if [ "$mode" = callgrind ]; then
        cg_ctl -d "$kid"
        [ "$lcg" -eq 0 ] || cg_ctl -d "$LPID"
    elif [ "$mode" = strace ]; then
        kill -INT "$SPID"
        wait "$SPID" 2>/dev/null || true
        SPID=""
    else
        t1=$(ticks "$LPID" "$kid")
        CPU_US[$name]=$(awk -v a="$t0" -v b="$t1" -v n="$count" -v hz="$(getconf CLK_TCK)" 'BEGIN {
            split(a, x, " "); split(b, y, " ")
            for (i = 1; i <= 4; i++) printf "%.2f ", (y[i] - x[i]) * 1000000 / hz / n }')
    fi
    stop_all
}

total() { # a callgrind dump: its total instructions
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}
dump() { ls "$T"/$1.*.1 2>/dev/null | head -n 1; }

run filter callgrind "$FILTER -c $T/rl.conf"
run bare callgrind "$BARE"
run filter strace "$FILTER -c $T/rl.conf"
run bare strace "$BARE"
run filter cpu "$FILTER -c $T/rl.conf"
run bare cpu "$BARE"

fi_=$(total "$(dump filter.cg)") bi=$(total "$(dump bare.cg)")
echo "per authorizer request ($n requests after 200 to warm up, ab -k -c 4, lighttpd max-procs 1)"
printf '  %-34s %10s %10s\n' "" filter bare
printf '  %-34s %10.0f %10.0f\n' "instructions in the FastCGI process" "$(echo "$fi_ / $n" | bc -l)" "$(echo "$bi / $n" | bc -l)"
if [ "$lcg" -eq 1 ]; then
    printf '  %-34s %10.0f %10.0f\n' "instructions in lighttpd" \
        "$(echo "$(total "$(dump filter.lcg)") / $n" | bc -l)" "$(echo "$(total "$(dump bare.lcg)") / $n" | bc -l)"
fi
read -r flu fls ffu ffs <<<"${CPU_US[filter]}"
read -r blu bls bfu bfs <<<"${CPU_US[bare]}"
printf '  %-34s %10s %10s\n' "CPU us, FastCGI process user" "$ffu" "$bfu"
printf '  %-34s %10s %10s\n' "CPU us, FastCGI process system" "$ffs" "$bfs"
printf '  %-34s %10s %10s\n' "CPU us, lighttpd user" "$flu" "$blu"
printf '  %-34s %10s %10s\n' "CPU us, lighttpd system" "$fls" "$bls"
printf '  %-34s %10.2f %10.2f\n' "CPU us, both" "$(echo "$flu + $fls + $ffu + $ffs" | bc -l)" \
    "$(echo "$blu + $bls + $bfu + $bfs" | bc -l)"
sc() { awk -v n="$n" '$NF != "total" && $4 ~ /^[0-9]+$/ { c[$NF] += $4 } END { for (k in c) printf "%s %.2f\n", k, c[k] / n }' "$1"; }
sc "$T/filter.strace" | sort >"$T/f.sc"
sc "$T/bare.strace" | sort >"$T/b.sc"
join -a1 -a2 -e 0 -o 0,1.2,2.2 "$T/f.sc" "$T/b.sc" |
    awk '{ printf "  %-34s %10.2f %10.2f\n", "system calls: " $1, $2, $3; f += $2; b += $3 }
         END { printf "  %-34s %10.2f %10.2f\n", "system calls in all", f, b }'
echo
echo "the filter's functions, inclusive instructions per request (callgrind):"
callgrind_annotate --inclusive=yes --threshold=100 "$(dump filter.cg)" 2>/dev/null |
    awk -v n="$n" -v all="$fi_" '/file:function/ { on = 1; next } on && /^ *[0-9,]+ \( *[0-9.]+%\) / {
        c = $1; gsub(",", "", c); f = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", f)
        sub(/ .*/, "", f); sub(/.*:/, "", f); if (f == "" || c == all || seen[f]++) next
        printf "  %9.0f  %s\n", c / n, f }' | head -n "$top"
