#!/bin/sh
# embed_lua.sh -- writes, on stdout, the C file that holds a Lua script for redis_script.h
#
# Usage: tools/embed_lua.sh SCRIPT.lua
# The output defines rl_redis_script (the file's bytes, unchanged, then a NUL), rl_redis_script_len
# (its length without the NUL) and rl_redis_script_sha (the SHA1 of those bytes in lowercase hex:
# the digest SCRIPT LOAD returns and EVALSHA takes). Every byte is an octal escape, so any content
# survives; a NUL inside the script is refused, since SCRIPT LOAD's argument is taken by length
# but the C string by strlen elsewhere. Needs only POSIX od, sed and coreutils' sha1sum.
# Exit codes: 0 written; 1 bad usage, unreadable file, or a NUL in it.
set -eu
if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: embed_lua.sh SCRIPT.lua (readable)" >&2
    exit 1
fi
in=$1
len=$(wc -c <"$in" | tr -d ' ')
if [ "$(tr -d '\000' <"$in" | wc -c | tr -d ' ')" != "$len" ]; then
    echo "embed_lua.sh: $in: contains a NUL byte" >&2
    exit 1
fi
sha=$(sha1sum <"$in" | cut -c1-40)
printf '/* generated from %s by tools/embed_lua.sh: do not edit (see redis_script.h) */\n' "$in"
printf '#include "redis_script.h"\n\n'
printf 'const char rl_redis_script[] = ""\n'
# 16 bytes a line, each as a three-digit octal escape (never merges with what follows).
od -An -v -to1 "$in" | sed -e 's/ *$//' -e 's/^ *//' -e '/^$/d' -e 's/ /\\/g' -e 's/^/    "\\/' -e 's/$/"/'
printf '    ;\n'
printf 'const size_t rl_redis_script_len = %s;\n' "$len"
printf 'const char rl_redis_script_sha[] = "%s";\n' "$sha"
