/* test_vectors_redis.c -- every shared vector file, run against rl_redis_decide
 *
 * One redis-server for the suite's test, a fresh key prefix per file. The files run on their
 * own clock (explicit now), Redis expires keys on its real one: after each step every key the
 * file uses is PERSISTed, so a state with a short ttl in vector time cannot vanish between two
 * steps in real time (and a vector state is never expired by Redis: the files' expectations
 * hold without expiry because each state's ttl covers what it still means, which test_vectors
 * checks against the pure algorithms). The ttl itself is checked by test_redis.c.
 *
 * Refused requests: a rule that admits a request another rule refuses reports its state
 * uncharged (a cost-0 probe, algo.h), as the files say. The callback also mirrors every state
 * with the pure algorithms and requires those reports to equal the probe, so the check does
 * not rest on the files alone. Every field the runner checks is Redis' own.
 *
 * Both of the script's paths: every file runs twice, alone and with each request also
 * matching a rule that never refuses (fixed window, 10^9 a second, its own key). A file of one
 * GCRA rule takes the script's one-GCRA-rule path alone and its general gcra() beside, so the
 * same vectors prove both formulations (ratelimit.lua's header); the companion must admit
 * every step and change no result of the file's rules.
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "algo.h"
#include "backend.h"
#include "keys.h"
#include "lib_redis_server.h"
#include "vectors.h"


static char host[] = "127.0.0.1";

TestSuite(vectors_redis, .timeout = 120);

/* The companion rule of a run "beside" (see the header): admits any cost the files use. */
static rl_rule never_refuses = {.name = "never", .algo = RL_ALGO_FIXED_WINDOW,
                                .count = 1000000000, .period_ms = 1000, .burst = 1000000000};

typedef struct run_ctx {
    rl_redis *r;
    int beside;               /* each request also matches never_refuses */
    long beside_gcra_steps;   /* steps of a one-GCRA-rule file decided beside it */
    redisContext *c;
    const char *prefix;
    long decisions;
    long probes;              /* uncharged reports checked */
    rl_state st[RL_MAX_MATCH]; /* the mirror: rule i's state (items come in rule order) */
    int have[RL_MAX_MATCH];
} run_ctx;

/* Advances the mirror like a store, and checks the uncharged reports against it (see above). */
static void mirror(run_ctx *x, rl_item *items, size_t n, int64_t cost, int64_t now_ms, int r)
{
    rl_state out[RL_MAX_MATCH];
    int64_t ttl;
    int all = 1, fix[RL_MAX_MATCH];
    rl_rule_result charged[RL_MAX_MATCH];

    for (size_t i = 0; i < n; i++) {
        fix[i] = rl_algo_decide(items[i].rule, x->have[i] ? &x->st[i] : NULL, now_ms, cost,
                                &out[i], &ttl, &charged[i]) & RL_ALGO_REPAIR;
        all &= charged[i].allowed;
    }
    cr_assert_eq(r, all, "redis and the algorithms disagree at now %lld", (long long)now_ms);
    for (size_t i = 0; i < n && !all; i++) {
        rl_rule_result probe;
        rl_state unused;
        if (!charged[i].allowed)
            continue;
        rl_algo_decide(items[i].rule, x->have[i] ? &x->st[i] : NULL, now_ms, 0, &unused, &ttl,
                       &probe);
        cr_assert_eq(items[i].res->remaining, probe.remaining, "%s at %lld: uncharged remaining",
                     items[i].rule->name, (long long)now_ms);
        cr_assert_eq(items[i].res->reset_ms, probe.reset_ms, "%s at %lld: uncharged reset",
                     items[i].rule->name, (long long)now_ms);
        cr_assert_eq(items[i].res->allowed, 1);
        cr_assert_eq(items[i].res->retry_after_ms, 0);
        x->probes++;
    }
    for (size_t i = 0; i < n; i++)
        if (all || fix[i]) {
            x->st[i] = out[i];
            x->have[i] = 1;
        }
}

/* Decides in Redis, then takes the expiry off every key of the file (see the header). */
static int redis_vec_decide(void *ud, rl_item *items, size_t n, int64_t now_ms)
{
    run_ctx *x = ud;
    int64_t cost = n > 0 ? items[0].cost : 1; /* the runner gives every item the step's cost */
    rl_item all[RL_MAX_MATCH];
    rl_rule_result companion;
    int r;

    if (x->beside && n > 0) {
        cr_assert_lt(n, (size_t)RL_MAX_MATCH, "no room for the companion rule");
        memcpy(all, items, n * sizeof(items[0]));
        all[n] = (rl_item){.rule = &never_refuses, .client = items[0].client, .key = "never",
                           .keylen = 5, .cost = cost, .res = &companion};
        r = rl_redis_decide(x->r, all, n + 1, now_ms);
        if (r >= 0)
            cr_assert_eq(companion.allowed, 1, "the companion rule refused at %lld",
                         (long long)now_ms);
        if (n == 1 && items[0].rule->algo == RL_ALGO_GCRA)
            x->beside_gcra_steps++;
    } else {
        r = rl_redis_decide(x->r, items, n, now_ms);
    }

    x->decisions++;
    for (size_t i = 0; i < n && r >= 0; i++) {
        redisReply *reply = redisCommand(x->c, "PERSIST %s{%s}:%s", x->prefix, items[i].client,
                                         items[i].rule->key_id);
        cr_assert_not_null(reply, "PERSIST: %s", x->c->errstr);
        freeReplyObject(reply);
    }
    if (r < 0)
        cr_log_error("rl_redis_decide: %s", rl_redis_errstr(x->r));
    else
        mirror(x, items, n, cost, now_ms, r);
    return r;
}

Test(vectors_redis, every_file_passes_against_redis, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    const char *dir = rl_vec_dir();
    char err[RL_VEC_ERR_MAX];
    char **paths;
    size_t npaths;
    long steps = 0, probes = 0, beside_gcra_steps = 0;
    int seen[4] = {0, 0, 0, 0};
    redisContext *c = rlt_redis_client(&rlt_srv);

    cr_assert_not_null(c);
    never_refuses.key_id_len = rl_keys_rule_id(&never_refuses, never_refuses.key_id);
    cr_assert_eq(rl_vec_list(dir, &paths, &npaths, err, sizeof(err)), 0, "%s", err);
    /* Each file alone (runs 0 .. npaths-1), then beside the companion rule. */
    for (size_t i = 0; i < 2 * npaths; i++) {
        char prefix[64];
        rl_vec v;
        snprintf(prefix, sizeof(prefix), "vec%zu:", i);
        rl_redis_config cfg = {.enabled = 1, .host = host, .port = rlt_srv.port,
                               .prefix = prefix, .connect_timeout_ms = 500,
                               .command_timeout_ms = 2000};
        run_ctx x = {.r = rl_redis_new(&cfg), .c = c, .prefix = prefix, .beside = i >= npaths};
        const char *path = paths[i % npaths];

        cr_assert_not_null(x.r);
        if (rl_vec_load(path, &v, err, sizeof(err)) != 0) {
            cr_expect_fail("%s", err);
            rl_redis_free(x.r);
            continue;
        }
        long r = rl_vec_run(&v, NULL, redis_vec_decide, &x, err, sizeof(err));
        cr_expect_eq(r, (long)v.nsteps, "%s%s", err, x.beside ? " (beside the companion)" : "");
        if (r > 0) {
            steps += r;
            cr_expect_eq(x.decisions, (long)v.nsteps, "%s: every step decided", path);
        }
        probes += x.probes;
        beside_gcra_steps += x.beside_gcra_steps;
        for (size_t j = 0; j < v.nrules; j++)
            seen[v.rules[j].algo]++;
        rl_vec_free(&v);
        rl_redis_free(x.r);
    }
    rl_vec_list_free(paths, npaths);
    redisFree(c);
    /* so that an empty or misplaced directory cannot pass */
    cr_assert_geq(npaths, 19, "%s: %zu vector files", dir, npaths);
    cr_assert_geq(steps, 150, "%ld steps", steps);
    cr_assert_geq(probes, 3, "%ld uncharged reports checked", probes);
    cr_assert_geq(seen[RL_ALGO_GCRA], 4);
    cr_assert_geq(seen[RL_ALGO_FIXED_WINDOW], 3);
    cr_assert_geq(seen[RL_ALGO_SLIDING_WINDOW], 3);
    cr_assert_geq(seen[RL_ALGO_SLIDING_LOG], 5);
    /* the one-GCRA-rule files really went through the general path too */
    cr_assert_geq(beside_gcra_steps, 40, "%ld one-GCRA-rule steps beside", beside_gcra_steps);
}
