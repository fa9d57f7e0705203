#!/usr/bin/env bash
# test_release_build.sh -- what the build puts into the release program and library
#
#   hardening   $RL_FILTER is a PIE (ELF type DYN, FLAGS_1 PIE), bound now (BIND_NOW) with a
#               read-only relocation segment (GNU_RELRO), calls __stack_chk_fail
#               (-fstack-protector-strong) and glibc's checked functions (__*_chk:
#               _FORTIFY_SOURCE=2; not in a sanitizer build, where FORTIFY is left out).
#               libratelimit.so next to it: BIND_NOW, GNU_RELRO, __stack_chk_fail.
#   no hooks    the release program, libratelimit.a and libratelimit.so hold no test hook:
#               no "RL_..._TEST..." variable name among their strings, no rl_shm_test_die
#               symbol (no defined symbol naming "test" at all in the library). The test build
#               ($RL_FILTER_TESTING, -DRL_TESTING) does hold RL_SHM_TEST_DIE_IN_LOCK: the same
#               check finds a hook where there is one.
set -euo pipefail
NAME=test_release_build
source "$(dirname "$0")/lib/lib.sh"
need readelf nm strings
B=$(dirname "$RL_FILTER")
TFILTER=${RL_FILTER_TESTING:-$B/testing/ratelimit-filter}
SO=$(find "$B" -maxdepth 1 -type f -name 'libratelimit.so.*' | head -n 1)
[ -n "$SO" ] || { echo "FAIL: no libratelimit.so.* in $B (make)"; exit 1; }
[ -s "$B/libratelimit.a" ] || { echo "FAIL: no $B/libratelimit.a (make)"; exit 1; }

# ---- hardening -----------------------------------------------------------------------------------
readelf -hdlW "$RL_FILTER" >"$T/filter.elf"
readelf -dlW "$SO" >"$T/so.elf"
nm -D "$RL_FILTER" >"$T/filter.dyn"
nm -D "$SO" >"$T/so.dyn"
has() { grep -Eq -- "$2" "$1"; } # file, extended regex
check "ratelimit-filter is a PIE: ELF type DYN" has "$T/filter.elf" 'Type: +DYN'
check "ratelimit-filter is a PIE: FLAGS_1 PIE" has "$T/filter.elf" '\(FLAGS_1\).*PIE'
check "ratelimit-filter: BIND_NOW (-z now)" has "$T/filter.elf" '\(FLAGS\).*BIND_NOW'
check "ratelimit-filter: GNU_RELRO (-z relro)" has "$T/filter.elf" '^ +GNU_RELRO '
check "ratelimit-filter: stack protector (__stack_chk_fail)" has "$T/filter.dyn" ' U __stack_chk_fail'
if sanitized_build; then
    echo "NOTE: sanitizer build: _FORTIFY_SOURCE is off by design, __*_chk not checked"
else
    n=$(grep -Ec ' U __[a-z]+_chk(@|$)' "$T/filter.dyn" || true)
    check "ratelimit-filter: _FORTIFY_SOURCE ($n checked glibc functions, __*_chk)" test "$n" -gt 0
fi
check "$(basename "$SO"): BIND_NOW" has "$T/so.elf" '\(FLAGS\).*BIND_NOW'
check "$(basename "$SO"): GNU_RELRO" has "$T/so.elf" '^ +GNU_RELRO '
check "$(basename "$SO"): stack protector" has "$T/so.dyn" ' U __stack_chk_fail'

# ---- no test hooks in a release build -----------------------------------------------------------
hook_vars() { strings -a "$1" | grep -E '^RL_[A-Z0-9_]*TEST[A-Z0-9_]*$' | sort -u | tr '\n' ' ' || true; }
for f in "$RL_FILTER" "$B/libratelimit.a" "$SO"; do
    v=$(hook_vars "$f")
    check "$(basename "$f") names no test variable${v:+: $v}" test -z "$v"
done
s=$(nm "$RL_FILTER" | grep -c ' rl_shm_test_die$' || true)
check "ratelimit-filter has no rl_shm_test_die" test "$s" = 0
for f in "$B/libratelimit.a" "$SO"; do
    s=$(nm --defined-only "$f" 2>/dev/null | grep -i test | awk '{print $3}' | tr '\n' ' ' || true)
    check "$(basename "$f") defines no test symbol${s:+: $s}" test -z "$s"
done
if [ -x "$TFILTER" ]; then
    v=$(hook_vars "$TFILTER")
    check "the test build does name its hook (the check sees one): $v" \
        test "$v" = "RL_SHM_TEST_DIE_IN_LOCK "
else
    echo "NOTE: no test build at $TFILTER: the check's positive control skipped"
fi
finish
