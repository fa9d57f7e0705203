#!/usr/bin/env bash
# check.sh -- `make install-check`: what `make install` puts in place works from there.
#
# Installs into a scratch DESTDIR (PREFIX=/usr) and checks, from the installed copy only:
#   - the program runs (-V, -t on the sample config); the man page, manual and examples exist;
#   - the library: libratelimit.a, libratelimit.so.VERSION with soname libratelimit.so.SOVERSION (and
#     its two links), include/ratelimit.h and ratelimit_schema.h, lib/pkgconfig/ratelimit.pc;
#     the .so exports the
#     header's rl_* names and nothing else;
#   - tests/install/smoke.c built through `pkg-config --cflags --libs ratelimit` links the .so
#     and, run, opens a config, decides once (allowed, by shm) and closes;
#   - built again through `pkg-config --static` with the .so's dev link removed, it links
#     libratelimit.a (no libratelimit.so needed: Requires.private/Libs.private suffice) and
#     decides the next request on the same table (one fewer remaining);
#   - `make uninstall` leaves no file or link of ours behind.
# The .pc says prefix=/usr; pkg-config reads it from the scratch copy with prefix redefined.
# Environment (from the GNUmakefile): MAKE, CC, PKG_CONFIG, RL_SANITIZE (the build's SANITIZE:
# an instrumented library needs the sanitizer at link), RL_VERSION, RL_SOVERSION.
set -euo pipefail
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
: "${RL_VERSION:?}" "${RL_SOVERSION:?}"

d=$(mktemp -d "${TMPDIR:-/tmp}/rl-install-check.XXXXXX")
R=$d/root # the DESTDIR
W=$d/work # what the checks build and run (not part of the install)
SHM="/rl-install-check-$$-$RANDOM"
trap 'rm -f "/dev/shm$SHM" "/dev/shm$SHM-stats"; rm -rf "$d"' EXIT
mkdir -p "$W"
FAILS=0
pass() { echo "install-check: PASS: $*"; }
fail() { echo "install-check: FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # description, command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

$MAKE --no-print-directory install DESTDIR="$R" PREFIX=/usr >"$W/install.log"
L=$R/usr/lib

# ---- the program and its documents -------------------------------------------------------------
check "installed ratelimit-filter -V" "$R/usr/bin/ratelimit-filter" -V
check "installed ratelimit-filter -t on the sample config" \
    "$R/usr/bin/ratelimit-filter" -t -c "$R/etc/ratelimit-filter/ratelimit.conf.sample"
check "man page" test -s "$R/usr/share/man/man1/ratelimit-filter.1"
check "manual" test -s "$R/usr/share/doc/ratelimit-filter/MANUAL.md"
check "examples" test -s "$R/usr/share/doc/ratelimit-filter/examples/lighttpd/authorizer.conf"

# ---- the library's files -----------------------------------------------------------------------
SO=libratelimit.so.$RL_VERSION
check "libratelimit.a, $SO, ratelimit.h, ratelimit_schema.h, ratelimit.pc installed" \
    test -s "$L/libratelimit.a" -a -s "$L/$SO" -a -s "$R/usr/include/ratelimit.h" \
    -a -s "$R/usr/include/ratelimit_schema.h" -a -s "$L/pkgconfig/ratelimit.pc"
check "links libratelimit.so -> .so.$RL_SOVERSION -> $SO" \
    test "$(readlink "$L/libratelimit.so")" = "libratelimit.so.$RL_SOVERSION" \
    -a "$(readlink "$L/libratelimit.so.$RL_SOVERSION")" = "$SO"
soname=$(readelf -d "$L/$SO" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "soname $soname" test "$soname" = "libratelimit.so.$RL_SOVERSION"
# Exported names: every defined dynamic symbol but the linker's own (_init, _edata ...).
exported=$(nm -D --defined-only "$L/$SO" | awk '{print $3}' | grep -v '^_' | sort)
others=$(echo "$exported" | grep -v '^rl_' | tr '\n' ' ' || true)
check "the .so exports only rl_* names ($(echo "$exported" | grep -c .) of them)${others:+; also: $others}" \
    test -z "$others"
missing=""
for f in rl_config_load rl_config_free rl_limiter_open rl_decide rl_limiter_close rl_limiter_errstr; do
    grep -qx "$f" <<<"$exported" || missing+="$f "
done
check "the .so exports the API of the header${missing:+; missing: $missing}" test -z "$missing"
# Internals stay inside: the test clock (test builds only) and what only the filter reads.
leaked=""
for f in rl_limiter_set_clock rl_config_redis_where rl_rule_derive rl_rule_matches rl_cidr_parse; do
    if grep -qx "$f" <<<"$exported"; then leaked+="$f "; fi
done
check "the .so keeps internals hidden${leaked:+; exported: $leaked}" test -z "$leaked"
# The header declares the API only: rl_rule is opaque, the test clock and the deprecated
# rl_request.client are gone.
H=$R/usr/include/ratelimit.h
check "ratelimit.h: rl_rule opaque, no test clock, no rl_request.client" \
    test -z "$(grep -E 'struct rl_rule \{|rl_limiter_set_clock|rl_clock_fn|rl_redis_where|const char \*client;' "$H")"

# ---- a program built through pkg-config ----------------------------------------------------------
cat >"$W/smoke.conf" <<CONF
# written by install-check
shm: { name = "$SHM"; capacity = 1000; };
rules = ( { name = "smoke"; path_prefix = "/"; limit = "5/h"; } );
CONF
pc() { PKG_CONFIG_PATH=$L/pkgconfig "$PKG_CONFIG" --define-variable=prefix="$R/usr" "$@" ratelimit; }
SAN=()
[ -z "${RL_SANITIZE:-}" ] || SAN=(-fsanitize="$RL_SANITIZE" -fno-sanitize-recover=all)
check "pkg-config --modversion: $(pc --modversion)" test "$(pc --modversion)" = "$RL_VERSION"

# shellcheck disable=SC2046 # pkg-config's output is a list of words
if "$CC" -std=c11 -Wall -Wextra -Werror "${SAN[@]}" -o "$W/smoke-shared" tests/install/smoke.c \
    $(pc --cflags --libs) 2>"$W/cc-shared.log"; then
    pass "smoke.c built with pkg-config --cflags --libs ratelimit"
    needed=$(readelf -d "$W/smoke-shared" | grep -c "NEEDED.*\[libratelimit.so.$RL_SOVERSION\]" || true)
    check "it needs libratelimit.so.$RL_SOVERSION" test "$needed" = 1
    out=$(LD_LIBRARY_PATH=$L "$W/smoke-shared" "$W/smoke.conf" 2>"$W/smoke-shared.err") || true
    want="allowed 200 shm 4 smoke requests=1 smoke=1 health=ok"
    check "run against the installed .so: \"$out\" ($want)" test "$out" = "$want"
else
    fail "smoke.c built with pkg-config --cflags --libs ratelimit: $(head -n 5 "$W/cc-shared.log")"
fi

# Without the dev link, -lratelimit can only be libratelimit.a: the static link then rests on
# what ratelimit.pc declares privately.
rm "$L/libratelimit.so"
# shellcheck disable=SC2046
if "$CC" -std=c11 -Wall -Wextra -Werror "${SAN[@]}" -o "$W/smoke-static" tests/install/smoke.c \
    $(pc --static --cflags --libs) 2>"$W/cc-static.log"; then
    pass "smoke.c built with pkg-config --static --cflags --libs ratelimit"
    needed=$(readelf -d "$W/smoke-static" | grep -c "NEEDED.*libratelimit" || true)
    check "it has libratelimit.a in it (needs no libratelimit.so)" test "$needed" = 0
    out=$("$W/smoke-static" "$W/smoke.conf" 2>"$W/smoke-static.err") || true
    want="allowed 200 shm 3 smoke requests=2 smoke=2 health=ok"
    check "run, statically linked: \"$out\" ($want)" test "$out" = "$want"
else
    fail "smoke.c built with pkg-config --static: $(head -n 5 "$W/cc-static.log")"
fi
for f in "$W"/smoke-*.err; do
    check "nothing on ${f#"$W"/}" test ! -s "$f"
done
"$R/usr/bin/ratelimit-filter" --shm-remove -c "$W/smoke.conf" >/dev/null 2>&1 || true
check "the smoke table is removed" test ! -e "/dev/shm$SHM" -a ! -e "/dev/shm$SHM-stats"

# ---- uninstall ---------------------------------------------------------------------------------
$MAKE --no-print-directory uninstall DESTDIR="$R" PREFIX=/usr >"$W/uninstall.log"
left=$(find "$R" ! -type d | head -n 5 | tr '\n' ' ')
check "uninstall leaves nothing behind${left:+: $left}" test -z "$left"

if [ "$FAILS" -ne 0 ]; then
    echo "install-check: $FAILS check(s) failed"
    exit 1
fi
echo "install-check: ok"
