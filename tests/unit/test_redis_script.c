/* test_redis_script.c -- the embedded script (core/ratelimit.lua) as the build delivers it
 *
 * The text and digest come from tools/embed_lua.sh at build time (redis_script.h). Checked
 * here: the digest is the one a real redis-server's SCRIPT LOAD returns for the text (so
 * EVALSHA with the constant finds the script); the text is the file's, byte for byte, with no
 * NUL inside; the function library is the two lines naming it and then the same text, and
 * FUNCTION LOAD registers it under that name (so FCALL finds it); the constant the script
 * spells out (RL_LOG_MAX) agrees with ratelimit.h; and the script refuses a call of the wrong
 * shape with its own error reply, as a script and as a function.
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib_redis_server.h"
#include "ratelimit.h"
#include "redis_script.h"


#define STR2(x) #x
#define STR(x) STR2(x)


TestSuite(redis_script, .timeout = 60);

/* A call with no key and no argument reached the script: its own error, not NOSCRIPT or
 * "Function not found". */
static void assert_script_error(redisContext *c, redisReply *reply)
{
    cr_assert_not_null(reply, "%s", c->errstr);
    cr_assert_eq(reply->type, REDIS_REPLY_ERROR, "type %d", reply->type);
    cr_assert_not_null(strstr(reply->str, "ratelimit: expected 1 arguments"), "%s", reply->str);
    freeReplyObject(reply);
}

Test(redis_script, digest_is_what_script_load_returns, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    redisContext *c = rlt_redis_client(&rlt_srv);
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
    assert_script_error(c, redisCommand(c, "EVALSHA %s 0", rl_redis_script_sha));
    redisFree(c);
}

Test(redis_script, library_is_the_script_named_after_its_digest, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char name[64], head[160];
    redisContext *c = rlt_redis_client(&rlt_srv);
    redisReply *reply;
    size_t hlen;

    cr_assert_not_null(c);
    snprintf(name, sizeof name, "rl_%s", rl_redis_script_sha);
    cr_assert_str_eq(rl_redis_function, name);
    cr_assert_eq(strlen(rl_redis_function), RL_REDIS_FUNCTION_LEN);
    hlen = (size_t)snprintf(head, sizeof head, "#!lua name=%s\nlocal name = '%s'\n", name, name);
    cr_assert_eq(rl_redis_library_len, hlen + rl_redis_script_len);
    cr_assert_eq(memcmp(rl_redis_library, head, hlen), 0, "the library's head");
    cr_assert_eq(memcmp(rl_redis_library + hlen, rl_redis_script, rl_redis_script_len), 0);

    /* Loaded twice (every connection loads it; REPLACE makes that no error), then FCALL
     * reaches decide(): a call of the wrong shape gets the script's own error. */
    for (int i = 0; i < 2; i++) {
        reply = redisCommand(c, "FUNCTION LOAD REPLACE %b", rl_redis_library, rl_redis_library_len);
        cr_assert_not_null(reply, "%s", c->errstr);
        cr_assert_eq(reply->type, REDIS_REPLY_STRING, "FUNCTION LOAD: %s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "not a string");
        cr_assert_str_eq(reply->str, name);
        freeReplyObject(reply);
    }
    assert_script_error(c, redisCommand(c, "FCALL %s 0", name));
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
    /* FUNCTION LOAD follows AUTH, but a server without a password reads it as the first
     * thing too. */
    cr_assert_lt(rl_redis_library_len, 16384, "the function library is %zu bytes",
                 rl_redis_library_len);
}
