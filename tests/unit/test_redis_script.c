/* test_redis_script.c -- the embedded script (core/ratelimit.lua) as the build delivers it
 *
 * The text and digest come from tools/embed_lua.sh at build time (redis_script.h). Checked
 * here: the digest is the one a real redis-server's SCRIPT LOAD returns for the text (so
 * EVALSHA with the constant finds the script); the text is the file's, byte for byte, with no
 * NUL inside; the constant the script spells out (RL_LOG_MAX) agrees with ratelimit.h; and
 * the script refuses a call of the wrong shape with its own error reply.
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib_redis_server.h"
#include "ratelimit.h"
#include "redis_script.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

static rlt_redis srv;

static void start(void)
{
    cr_assert_eq(rlt_redis_start(&srv, NULL), 0, "redis-server did not start");
}

static void stop(void)
{
    rlt_redis_stop(&srv);
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check() != 0)
        abort();
#endif
}

TestSuite(redis_script, .timeout = 60);

Test(redis_script, digest_is_what_script_load_returns, .init = start, .fini = stop)
{
    redisContext *c = rlt_redis_client(&srv);
    redisReply *reply;

    cr_assert_not_null(c);
    cr_assert_eq(strlen(rl_redis_script_sha), 40);
    reply = redisCommand(c, "SCRIPT LOAD %b", rl_redis_script, rl_redis_script_len);
    cr_assert_not_null(reply, "%s", c->errstr);
    cr_assert_eq(reply->type, REDIS_REPLY_STRING, "SCRIPT LOAD: type %d", reply->type);
    cr_assert_str_eq(reply->str, rl_redis_script_sha, "the build's digest is not Redis'");
    freeReplyObject(reply);

    /* EVALSHA with the constant alone reaches the script: a call of the wrong shape gets
     * the script's own error, not NOSCRIPT. */
    reply = redisCommand(c, "EVALSHA %s 0", rl_redis_script_sha);
    cr_assert_not_null(reply, "%s", c->errstr);
    cr_assert_eq(reply->type, REDIS_REPLY_ERROR, "type %d", reply->type);
    cr_assert_not_null(strstr(reply->str, "ratelimit: expected 1 arguments"), "%s", reply->str);
    freeReplyObject(reply);
    redisFree(c);
}

Test(redis_script, text_is_the_lua_file_byte_for_byte)
{
    const char *path = "core/ratelimit.lua";
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t got;

    cr_assert_not_null(f, "%s (run from the source tree)", path);
    buf = malloc(rl_redis_script_len + 2);
    cr_assert_not_null(buf);
    got = fread(buf, 1, rl_redis_script_len + 1, f);
    fclose(f);
    cr_expect_eq(got, rl_redis_script_len, "%s: %zu bytes, embedded %zu (rebuild)", path, got,
                 rl_redis_script_len);
    cr_expect_eq(
        memcmp(buf, rl_redis_script, got < rl_redis_script_len ? got : rl_redis_script_len), 0,
        "%s differs from the embedded text (rebuild)", path);
    free(buf);
    cr_assert_eq(strlen(rl_redis_script), rl_redis_script_len, "a NUL inside the script");
    cr_assert_eq(rl_redis_script[rl_redis_script_len], '\0');
}

/* The script caps a log at RL_LOG_MAX entries, spelt as a number in the Lua file, and sends
 * a log above it to the sorted-set form (zlog) at the same bound. */
Test(redis_script, spells_rl_log_max_as_ratelimit_h_does)
{
    const char *cap = "if count > " STR(RL_LOG_MAX) " then count = " STR(RL_LOG_MAX) " end\n";
    const char *zset = "if algo == 3 and count > " STR(RL_LOG_MAX) " then";

    cr_assert_not_null(strstr(rl_redis_script, cap), "ratelimit.lua lacks \"%s\"", cap);
    cr_assert_not_null(strstr(rl_redis_script, zset), "ratelimit.lua lacks \"%s\"", zset);
}

/* Redis reads a bulk string of at most 16 KB from a client that has not authenticated: a
 * longer SCRIPT LOAD would meet a protocol error where a missing password should say NOAUTH
 * (test_redis.c: auth_with_a_wrong_password). */
Test(redis_script, fits_what_redis_reads_before_auth)
{
    cr_assert_lt(rl_redis_script_len, 16384, "ratelimit.lua is %zu bytes", rl_redis_script_len);
}
