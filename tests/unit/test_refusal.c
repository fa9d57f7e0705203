/* test_refusal.c -- the refusal cache: a refused client costs Redis nothing until its retry
 *
 * Against a real redis-server, counting the server's script calls (FCALL and EVALSHA, INFO
 * commandstats)
 * around a flood, with an injected clock so the cache's expiry is exact.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "leakcheck.h"
#include "lib_redis_server.h"
#include "ratelimit.h"
#include "rule_types.h"
#include "test_clock.h"

static char conf_path[256];
static char shm_name[64];
static rlt_redis srv;

static void fini(void)
{
    rlt_redis_stop(&srv);
    if (conf_path[0] != '\0')
        unlink(conf_path);
    if (shm_name[0] != '\0') {
        shm_unlink(shm_name);
        rl_stats_unlink(shm_name);
    }
    rl_test_leak_check();
}

TestSuite(refusal, .fini = fini, .timeout = 60);

static int64_t fixed_clock(void *ud)
{
    return *(const int64_t *)ud;
}

/* The decisions Redis ran: FCALL calls, and EVALSHA calls (a server without functions). */
static long long script_calls(void)
{
    redisContext *c = rlt_redis_client(&srv);
    redisReply *r;
    long long n = 0;
    const char *p;

    cr_assert_not_null(c);
    r = redisCommand(c, "INFO commandstats");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING);
    p = strstr(r->str, "cmdstat_evalsha:calls=");
    if (p != NULL)
        n = atoll(p + strlen("cmdstat_evalsha:calls="));
    p = strstr(r->str, "cmdstat_fcall:calls=");
    if (p != NULL)
        n += atoll(p + strlen("cmdstat_fcall:calls="));
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static rl_config *load(const char *rules)
{
    rl_error err;
    FILE *f;

    snprintf(conf_path, sizeof(conf_path), "/tmp/rl-refusal-%d.conf", (int)getpid());
    snprintf(shm_name, sizeof(shm_name), "/rl-refusal-%d", (int)getpid());
    f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"%s\"; capacity = 1000; };\n", shm_name);
    fprintf(f, "redis: { enabled = true; port = %d; command_timeout_ms = 1000; };\n"
               "rules = ( %s );\n", srv.port, rules);
    fclose(f);
    rl_config *cfg = rl_config_load(conf_path, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

static rl_decision ask(rl_limiter *lim, const char *client, const char *path, int64_t cost)
{
    rl_decision d;
    rl_request req = {.remote_addr = client, .path = path, .cost = cost};
    cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
    return d;
}

Test(refusal, a_flood_costs_redis_nothing_until_the_retry_time)
{
    int64_t now = INT64_C(1700000000000);
    rl_error err;
    rl_config *cfg;
    rl_limiter *lim;
    rl_decision d;
    long long before;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    cfg = load("{ name = \"global\"; limit = \"3/s\"; },"
               "{ name = \"api\"; path_prefix = \"/api\"; limit = \"100/s\"; }");
    lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    rl_limiter_set_clock(lim, fixed_clock, &now);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ask(lim, "flooder", "/api/x", 1).allowed, 1);
    d = ask(lim, "flooder", "/api/x", 1);
    cr_assert_eq(d.allowed, 0);
    cr_assert_eq(d.backend, RL_BACKEND_REDIS, "the first refusal comes from Redis");
    cr_assert_eq(d.retry_after_ms, 334);

    before = script_calls();
    cr_assert_geq(before, 4, "the decisions so far are not counted");
    for (int i = 0; i < 1000; i++) {
        now += i % 2; /* 500 ms of flood */
        if (now >= INT64_C(1700000000000) + 334)
            break;
        d = ask(lim, "flooder", "/api/x", 1);
        cr_assert_eq(d.allowed, 0);
        cr_assert_eq(d.backend, RL_BACKEND_REFUSAL_CACHE);
        cr_assert_eq(d.nresults, 1, "only the refusing rule is listed");
        cr_assert_str_eq(d.results[0].rule->name, "global");
        cr_assert_eq(d.retry_after_ms, INT64_C(1700000000000) + 334 - now);
        cr_assert_eq(d.results[0].remaining, 0);
    }
    cr_assert_eq(script_calls(), before, "the flood reached Redis");

    /* Another client, and a smaller cost than refused, still go to Redis. */
    cr_assert_eq(ask(lim, "someone-else", "/", 1).backend, RL_BACKEND_REDIS);
    /* At the retry time exactly, Redis admits again. */
    now = INT64_C(1700000000000) + 334;
    d = ask(lim, "flooder", "/", 1);
    cr_assert_eq(d.backend, RL_BACKEND_REDIS);
    cr_assert_eq(d.allowed, 1);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(refusal, a_smaller_cost_is_not_refused_from_the_cache)
{
    int64_t now = INT64_C(1700000000000);
    rl_error err;
    rl_config *cfg;
    rl_limiter *lim;
    rl_decision d;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    cfg = load("{ name = \"global\"; limit = \"10/s\"; }");
    lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    rl_limiter_set_clock(lim, fixed_clock, &now);
    cr_assert_eq(ask(lim, "c", "/", 8).allowed, 1);
    d = ask(lim, "c", "/", 5);
    cr_assert_eq(d.allowed, 0);
    cr_assert_eq(ask(lim, "c", "/", 5).backend, RL_BACKEND_REFUSAL_CACHE);
    d = ask(lim, "c", "/", 2);
    cr_assert_eq(d.backend, RL_BACKEND_REDIS);
    cr_assert_eq(d.allowed, 1, "2 units were left");
    rl_limiter_close(lim);
    rl_config_free(cfg);
}
