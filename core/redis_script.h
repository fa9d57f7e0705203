/* redis_script.h -- the decision script redis.c runs with FCALL or EVALSHA (internal)
 *
 * The script is core/ratelimit.lua (its header comment states the calling convention, the
 * reply and the stored state). The build embeds it: tools/embed_lua.sh writes
 * build/gen/redis_script_lua.c, which defines these from the file's bytes, so the text, its
 * digest and the function library cannot disagree. Static storage, never freed.
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

/* The Redis 7 function library (FUNCTION LOAD): "#!lua name=rl_SHA1\n", "local name =
 * 'rl_SHA1'\n" (which the script registers decide() as), then the script's bytes. One name
 * per version of the text, so hosts running two versions never replace each other's. */
/* "rl_" and the SHA1, NUL-terminated: the library's and the function's name. */
#define RL_REDIS_FUNCTION_LEN 43
extern const char rl_redis_function[RL_REDIS_FUNCTION_LEN + 1];
extern const char rl_redis_library[];
extern const size_t rl_redis_library_len;

#endif
