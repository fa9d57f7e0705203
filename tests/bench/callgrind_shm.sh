#!/usr/bin/env bash
# callgrind_shm.sh -- instructions per shared-memory decision, under callgrind
#
# Runs build/bench/bench_shm --callgrind N under valgrind's callgrind and prints the
# instructions per call of the bare rl_algo_decide loop (bench_cg_algo) and of a hot-key
# rl_shm_decide (bench_cg_shm), and their ratio. Counts are repeatable on a loaded machine,
# unlike rates. Not a test: `make build/bench/bench_shm` first. Usage: callgrind_shm.sh [N]
set -euo pipefail

n=${1:-200000}
bin=${BENCH_SHM:-build/bench/bench_shm}
[ -x "$bin" ] || { echo "callgrind_shm: $bin missing (make build/bench/bench_shm)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind_shm: valgrind not installed" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" --callgrind "$n" \
    >"$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
callgrind_annotate --inclusive=yes --threshold=100 "$out/cg" >"$out/ann"
ir() { awk -v f="$1" '$0 ~ f" " || $0 ~ f"$" { gsub(",", "", $1); print $1; exit }' "$out/ann"; }
algo=$(ir bench_cg_algo)
shm=$(ir bench_cg_shm)
[ -n "$algo" ] && [ -n "$shm" ] || { echo "callgrind_shm: no counts" >&2; cat "$out/ann" >&2; exit 1; }
awk -v a="$algo" -v s="$shm" -v n="$n" 'BEGIN {
    printf "instructions per decision (callgrind, %d decisions each)\n", n
    printf "  bare rl_algo_decide loop  %7.1f\n", a / n
    printf "  shm, 1 hot key            %7.1f\n", s / n
    printf "  ratio                     %7.3f\n", a / s
}'
