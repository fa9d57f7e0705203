/* bench_redis.c -- how fast a Redis decision is, against a raw hiredis loop (not a test)
 *
 * Starts its own redis-server on a free port (lib_redis_server.c), then runs, each for a
 * bounded time, on one connection:
 *   raw       redisCommandArgv(EVALSHA) of the same script with the same arguments: the floor
 *   backend   rl_redis_decide (key building, argv, reply checks)
 *   decide    rl_decide through the limiter (matching, keys, breaker, refusal cache lookup)
 *   flood     one client far over its limit: rl_redis_decide (every refusal a round trip)
 *             vs rl_decide (refused from the shm refusal cache)
 * and prints decisions/s and p50/p99 latency of each, and backend/raw and decide/raw ratios.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "lib_redis_server.h"
#include "redis_script.h"

#define BENCH_MS 1500
#define BENCH_MAX 2000000

static int64_t *lat; /* ns per op */

static int64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef int (*bench_op)(void *ud);

/* Runs op for BENCH_MS; prints and returns decisions per second. */
static double bench_run(const char *name, bench_op op, void *ud)
{
    int64_t start = bench_ns(), end = start + (int64_t)BENCH_MS * 1000000;
    size_t n = 0;

    while (n < BENCH_MAX) {
        int64_t t = bench_ns();
        if (t >= end)
            break;
        if (op(ud) < 0) {
            fprintf(stderr, "%s: operation failed\n", name);
            exit(1);
        }
        lat[n++] = bench_ns() - t;
    }
    double secs = (double)(bench_ns() - start) / 1e9;
    qsort(lat, n, sizeof(*lat), bench_cmp);
    double rate = (double)n / secs;
    printf("%-22s %9.0f decisions/s   p50 %6.1f us   p99 %6.1f us   (%zu ops)\n", name, rate,
           (double)lat[n / 2] / 1000.0, (double)lat[n * 99 / 100] / 1000.0, n);
    return rate;
}

/* ---- raw hiredis ---- */
typedef struct raw_ctx {
    redisContext *c;
    const char *argv[16];
    size_t len[16];
    int argc;
} raw_ctx;

static int raw_op(void *ud)
{
    raw_ctx *x = ud;
    redisReply *r = redisCommandArgv(x->c, x->argc, x->argv, x->len);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* ---- rl_redis_decide ---- */
typedef struct be_ctx {
    rl_redis *r;
    rl_item item;
    rl_rule_result res;
} be_ctx;

static int be_op(void *ud)
{
    be_ctx *x = ud;
    return rl_redis_decide(x->r, &x->item, 1, -1);
}

/* ---- rl_decide ---- */
typedef struct lim_ctx {
    rl_limiter *lim;
    rl_request req;
    rl_decision d;
} lim_ctx;

static int lim_op(void *ud)
{
    lim_ctx *x = ud;
    return rl_decide(x->lim, &x->req, &x->d);
}

static rl_config *bench_config(const rlt_redis *srv, const char *limit, char *path, size_t size)
{
    rl_error err;
    FILE *f;

    snprintf(path, size, "/tmp/rl-bench-%d.conf", (int)getpid());
    f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fprintf(f, "shm: { name = \"/rl-bench-%d\"; capacity = 10000; };\n"
               "redis: { enabled = true; port = %d; prefix = \"b:\"; command_timeout_ms = 1000; };\n"
               "rules = ( { name = \"global\"; limit = \"%s\"; } );\n",
            (int)getpid(), srv->port, limit);
    fclose(f);
    rl_config *cfg = rl_config_load(path, &err);
    if (cfg == NULL)
        fprintf(stderr, "bench: %s\n", err.text);
    return cfg;
}

int main(void)
{
    static char host[] = "127.0.0.1", prefix[] = "b:";
    static const rl_rule big = {.name = "global", .count = 1000000000, .period_ms = 1000,
                                .burst = 1000000000};
    static const rl_rule tiny = {.name = "global", .count = 1, .period_ms = 3600000, .burst = 1};
    char shm[64], path[256];
    rlt_redis srv;
    int rc = 1;
    rl_config *cfg = NULL;
    rl_limiter *lim = NULL;
    rl_error err;
    redisReply *sha = NULL;
    be_ctx be = {0};
    raw_ctx raw = {0};

    lat = malloc(sizeof(*lat) * BENCH_MAX);
    if (lat == NULL || rlt_redis_start(&srv, NULL) != 0)
        return 1;
    snprintf(shm, sizeof(shm), "/rl-bench-%d", (int)getpid());

    /* raw: load the script, then EVALSHA with the arguments redis.c would send. */
    path[0] = '\0';
    raw.c = rlt_redis_client(&srv);
    sha = redisCommand(raw.c, "SCRIPT LOAD %s", rl_redis_script);
    if (sha == NULL || sha->type != REDIS_REPLY_STRING)
        goto out;
    const char *args[] = {"EVALSHA", sha->str, "1", "b:{bench-raw}:global", "-1", "1", "0",
                          "1000000000", "1000", "1000000000"};
    raw.argc = (int)(sizeof(args) / sizeof(args[0]));
    for (int i = 0; i < raw.argc; i++) {
        raw.argv[i] = args[i];
        raw.len[i] = strlen(args[i]);
    }

    rl_redis_config rcfg = {.enabled = 1, .host = host, .port = srv.port, .prefix = prefix,
                            .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
    be.r = rl_redis_new(&rcfg);
    be.item = (rl_item){.rule = &big, .client = "bench-be", .cost = 1, .res = &be.res};

    cfg = bench_config(&srv, "1000000000/s", path, sizeof(path));
    lim = cfg != NULL ? rl_limiter_open(cfg, &err) : NULL;
    if (lim == NULL)
        goto out;
    lim_ctx lc = {.lim = lim, .req = {.client = "bench-lim", .path = "/", .cost = 1}};

    printf("redis-server %d, one connection, %d ms per run\n", srv.port, BENCH_MS);
    double r_raw = bench_run("raw hiredis EVALSHA", raw_op, &raw);
    double r_be = bench_run("rl_redis_decide", be_op, &be);
    double r_lim = bench_run("rl_decide", lim_op, &lc);
    printf("ratio rl_redis_decide/raw %.2f, rl_decide/raw %.2f\n", r_be / r_raw, r_lim / r_raw);

    /* The flood: one client over a 1/h limit. */
    be.item.rule = &tiny;
    be.item.client = "bench-flood-be";
    rl_limiter_close(lim);
    rl_config_free(cfg);
    shm_unlink(shm);
    cfg = bench_config(&srv, "1/h", path, sizeof(path));
    lim = cfg != NULL ? rl_limiter_open(cfg, &err) : NULL;
    if (lim == NULL)
        goto out;
    lc.lim = lim;
    lc.req.client = "bench-flood";
    double f_nc = bench_run("flood, no cache", be_op, &be);
    double f_c = bench_run("flood, refusal cache", lim_op, &lc);
    printf("refusal cache speed-up under a flood: %.1fx\n", f_c / f_nc);
    rc = 0;
out:
    rl_limiter_close(lim);
    rl_config_free(cfg);
    rl_redis_free(be.r);
    freeReplyObject(sha);
    redisFree(raw.c);
    shm_unlink(shm);
    if (path[0] != '\0')
        unlink(path);
    rlt_redis_stop(&srv);
    free(lat);
    return rc;
}
