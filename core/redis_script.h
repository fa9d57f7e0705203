/* redis_script.h -- the decision script redis.c runs with EVALSHA (internal)
 *
 * The script is core/ratelimit.lua (its header comment states the calling convention, the
 * reply and the stored state). The build embeds it: tools/embed_lua.sh writes
 * build/gen/redis_script_lua.c, which defines these three from the file's bytes, so the text
 * and its digest cannot disagree. Static storage, never freed.
 */
#ifndef RL_REDIS_SCRIPT_H
#define RL_REDIS_SCRIPT_H

#include <stddef.h>

/* The Lua source, byte for byte, NUL-terminated (it holds no other NUL). */
extern const char rl_redis_script[];
/* Its length in bytes, the NUL excluded. */
extern const size_t rl_redis_script_len;
/* Its SHA1, 40 lowercase hex digits and a NUL: what SCRIPT LOAD returns, what EVALSHA takes. */
extern const char rl_redis_script_sha[];

#endif
