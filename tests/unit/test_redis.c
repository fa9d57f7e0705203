/* test_redis.c -- the Redis backend against a real redis-server
 *
 * Every test starts its own server (lib_redis_server.c) and uses its own key prefix. The
 * equivalence tests replay one deterministic sequence of (now, cost) steps through
 * rl_redis_decide and through rl_algo_decide on a local state, and require the same result,
 * field by field, the same stored state and a TTL on every key written.
 */
#include "fmacros.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "algo.h"
#include "backend.h"
#include "keys.h"
#include "lib_redis_fake.h"
#include "lib_redis_server.h"
#include "redis_script.h"


static char host[] = "127.0.0.1";
static char client[] = "192.0.2.7";

#define RULE(n, c, p, b) {.name = n, .count = c, .period_ms = p, .burst = b}
#define WRULE(n, a, c, p) {.name = n, .algo = a, .count = c, .period_ms = p, .burst = c}
/* Not const: decide() fills each rule's key identity, as config loading does. */
static rl_rule rules[] = {
    RULE("r3s", 3, 1000, 3),         RULE("r100", 100, 90000, 100),
    RULE("r5", 5, 1500, 2),          RULE("r1d", 1, 86400000, 1),
    RULE("r7", 7, 3000, 10),
    WRULE("fw3", RL_ALGO_FIXED_WINDOW, 3, 1000),
    WRULE("fw7", RL_ALGO_FIXED_WINDOW, 7, 3000),
    WRULE("sw3", RL_ALGO_SLIDING_WINDOW, 3, 1000),
    WRULE("sw5", RL_ALGO_SLIDING_WINDOW, 5, 1500),
    WRULE("sw100", RL_ALGO_SLIDING_WINDOW, 100, 90000),
    WRULE("sl3", RL_ALGO_SLIDING_LOG, 3, 1000),
    WRULE("sl5", RL_ALGO_SLIDING_LOG, 5, 1500),
    WRULE("sl128", RL_ALGO_SLIDING_LOG, 128, 90000),
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))
#define T0 INT64_C(1700000000000)

static void start_auth(void)
{
    cr_assert_eq(rlt_redis_start(&rlt_srv, "s3cret-Pass"), 0, "redis-server did not start");
}

TestSuite(redis, .timeout = 60);

/* Generous deadlines: no test here but the stopped server is about them (it sets its own), and
 * a loaded machine (ASan, 2 shared cores) may not schedule redis-server for hundreds of ms. */
static rl_redis_config config(char *prefix)
{
    rl_redis_config c = {
        .enabled = 1,
        .host = host,
        .port = rlt_srv.port,
        .prefix = prefix,
        .connect_timeout_ms = 2000,
        .command_timeout_ms = 2000,
    };
    return c;
}

/* One request for rules[0..n) (or the given ones) from `client`. */
static int decide(rl_redis *r, const rl_rule *const *rs, size_t n, int64_t cost, int64_t now,
                  rl_rule_result *res)
{
    rl_item items[RL_MAX_MATCH];

    for (size_t i = 0; i < n; i++) {
        rl_rule *w = (rl_rule *)rs[i]; /* every rule of this file is writable */
        w->key_id_len = rl_keys_rule_id(w, w->key_id);
        items[i] = (rl_item){.rule = rs[i], .client = client, .cost = cost, .res = &res[i]};
    }
    return rl_redis_decide(r, items, n, now);
}

static int decide1(rl_redis *r, const rl_rule *rule, int64_t cost, int64_t now,
                   rl_rule_result *res)
{
    return decide(r, &rule, 1, cost, now, res);
}

static redisReply *cmd(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *reply = redisCommand(c, fmt, arg);
    cr_assert_not_null(reply, "redis command failed: %s", c->errstr);
    return reply;
}

static void key_of(char *buf, size_t size, const char *prefix, const rl_rule *rule)
{
    char id[RL_RULE_ID_MAX];
    rl_keys_rule_id(rule, id);
    int len = snprintf(buf, size, "%s{%s}:%s", prefix, client, id);
    cr_assert(len > 0 && (size_t)len < size);
}

/* ---- the deterministic step sequence ---------------------------------------------------- */

typedef struct step {
    int64_t now, cost;
} step;

#define NSTEPS 400

/* Hand-written edge cases first (same-ms bursts, exact refills, a cost above the burst,
 * long gaps, clock steps back), then a fixed pseudo-random walk over the same moves. */
static size_t make_steps(step *s)
{
    static const int64_t fixed[][2] = {
        {0, 1},       {0, 1},       {0, 1},         {0, 1},        {0, 2},
        {1, 1},       {333, 1},     {334, 1},       {1000, 1},     {1500, 1},
        {3000, 2},    {3000, 3},    {3001, 12},     {90000, 1},    {90000, 50},
        {90000, 60},  {90001, 1},   {86400000, 1},  {86400000, 1}, {-5000, 1},
        {-5000, 1},   {-172800000, 1}, {-172800000, 1}, {-172799999, 1},
        {400000000, 1}, {400000000, 101},
    };
    static const int64_t moves[] = {0, 0, 0, 1, 7, 100, 333, 334, 428, 999, 1500, 3000,
                                    60000, -3000, 86400000};
    static const int64_t costs[] = {1, 1, 1, 1, 2, 3, 11};
    size_t n = 0;
    int64_t now = T0;
    uint32_t x = 12345;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        s[n++] = (step){T0 + fixed[i][0], fixed[i][1]};
    now = s[n - 1].now;
    while (n < NSTEPS) {
        x = x * 1103515245u + 12345u;
        now += moves[(x >> 16) % (sizeof(moves) / sizeof(moves[0]))];
        x = x * 1103515245u + 12345u;
        s[n++] = (step){now, costs[(x >> 16) % (sizeof(costs) / sizeof(costs[0]))]};
    }
    return n;
}

static void expect_same(const rl_rule_result *got, const rl_rule_result *want, size_t stepi)
{
    cr_assert_eq(got->rule, want->rule, "step %zu: rule", stepi);
    cr_expect_eq(got->allowed, want->allowed, "step %zu %s: allowed", stepi, want->rule->name);
    cr_expect_eq(got->limit, want->limit, "step %zu %s: limit", stepi, want->rule->name);
    cr_expect_eq(got->window_ms, want->window_ms, "step %zu %s: window", stepi,
                 want->rule->name);
    cr_expect_eq(got->remaining, want->remaining, "step %zu %s: remaining %lld vs %lld", stepi,
                 want->rule->name, (long long)got->remaining, (long long)want->remaining);
    cr_expect_eq(got->reset_ms, want->reset_ms, "step %zu %s: reset %lld vs %lld", stepi,
                 want->rule->name, (long long)got->reset_ms, (long long)want->reset_ms);
    cr_assert_eq(got->retry_after_ms, want->retry_after_ms, "step %zu %s: retry %lld vs %lld",
                 stepi, want->rule->name, (long long)got->retry_after_ms,
                 (long long)want->retry_after_ms);
}

/* slidelog.c's state as the script stores it: "l:BASE:O1,O2,..." (offsets unpacked). */
static void format_log(char *buf, size_t size, const rl_state *st)
{
    size_t len = (size_t)snprintf(buf, size, "l:%lld:", (long long)st->w[0]);
    for (int64_t i = 0; i < st->w[1]; i++) {
        uint64_t w = (uint64_t)st->w[2 + i / 2];
        unsigned long off = (unsigned long)(uint32_t)(i % 2 == 0 ? w : w >> 32);
        len += (size_t)snprintf(buf + len, size - len, i > 0 ? ",%lu" : "%lu", off);
        cr_assert_lt(len, size);
    }
}

/* Checks that KEY holds exactly the local state (or nothing), and when `ttl` > 0 that it was
 * just written with that expiry. Then removes the expiry: the steps run on a simulated clock,
 * and Redis' real one must not expire a state the simulation still needs. */
static void expect_stored(redisContext *c, const char *key, const rl_rule *rule,
                          const rl_state *st, int64_t ttl, size_t stepi)
{
    char want[2048]; /* a full sliding log: "l:" BASE ":" and 128 offsets */
    redisReply *reply = cmd(c, "GET %s", key);

    if (st == NULL) {
        cr_assert_eq(reply->type, REDIS_REPLY_NIL, "step %zu: %s should not exist", stepi, key);
    } else {
        if (rule->algo == RL_ALGO_FIXED_WINDOW)
            snprintf(want, sizeof(want), "f:%lld:%lld", (long long)st->w[0],
                     (long long)st->w[1]);
        else if (rule->algo == RL_ALGO_SLIDING_WINDOW)
            snprintf(want, sizeof(want), "s:%lld:%lld:%lld", (long long)st->w[0],
                     (long long)st->w[1], (long long)st->w[2]);
        else if (rule->algo == RL_ALGO_SLIDING_LOG)
            format_log(want, sizeof(want), st);
        else
            snprintf(want, sizeof(want), "%lld:%lld", (long long)st->w[0], (long long)st->w[1]);
        cr_assert_eq(reply->type, REDIS_REPLY_STRING, "step %zu: %s missing", stepi, key);
        cr_assert_str_eq(reply->str, want, "step %zu: %s stored", stepi, key);
    }
    freeReplyObject(reply);
    if (ttl <= 0)
        return;
    reply = cmd(c, "PTTL %s", key);
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER);
    /* With an explicit (test) now the script adds a day of real time (see ratelimit.lua). */
    cr_assert(reply->integer > 86400000 - 60000 && reply->integer <= ttl + 86400000,
              "step %zu: %s PTTL %lld, ttl %lld", stepi, key, reply->integer, (long long)ttl);
    freeReplyObject(reply);
    freeReplyObject(cmd(c, "PERSIST %s", key));
}

/* A rule that admits every step of the sequence, decided alongside one under test. */
static rl_rule never_refuses =
    WRULE("big", RL_ALGO_FIXED_WINDOW, 1000000000, 1000); /* a GCRA one refuses a step back */

/* Runs the steps for `rule` alone, or with never_refuses beside it (`paired`): the script
 * decides one GCRA rule on a path of its own, so the pair takes GCRA through the general one. */
static void equivalence_of(rl_redis *r, redisContext *c, const char *prefix, const rl_rule *rule,
                           int paired)
{
    static step steps[NSTEPS];
    const rl_rule *rs[2] = {rule, &never_refuses};
    size_t nsteps = make_steps(steps);
    rl_state st;
    int have = 0, repairs = 0;
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX];

    key_of(key, sizeof(key), prefix, rule);
    for (size_t i = 0; i < nsteps; i++) {
        rl_rule_result want, got[2];
        rl_state out;
        int64_t ttl = 0;
        int ret = decide(r, rs, paired ? 2 : 1, steps[i].cost, steps[i].now, got);

        int flags = rl_algo_decide(rule, have ? &st : NULL, steps[i].now, steps[i].cost, &out,
                                   &ttl, &want);
        int store = want.allowed || (flags & RL_ALGO_REPAIR);
        repairs += !want.allowed && (flags & RL_ALGO_REPAIR);
        cr_assert_geq(ret, 0, "step %zu: %s", i, rl_redis_errstr(r));
        cr_assert_eq(ret, want.allowed, "step %zu: return", i);
        expect_same(&got[0], &want, i);
        if (paired)
            cr_assert_eq(got[1].allowed, 1, "step %zu: %s refused", i, never_refuses.name);
        if (store) {
            st = out;
            have = 1;
        }
        expect_stored(c, key, rule, have ? &st : NULL, store ? ttl : 0, i);
    }
    /* The steps back in time must exercise the repair of every algorithm's state. */
    if (rule == &rules[0] || (rule->algo != RL_ALGO_GCRA && rule->period_ms <= 3000))
        cr_assert_gt(repairs, 0, "%s: no repair exercised", rule->name);
}

/* Every rule of the table through every step, alone (beside = 0) or beside a rule that never
 * refuses, which sends it through the script's multi-rule path instead of its fast path. */
static void equivalence_each(char *prefix, int beside)
{
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);

    cr_assert_not_null(r);
    cr_assert_not_null(c);
    for (size_t k = 0; k < NRULES; k++)
        equivalence_of(r, c, prefix, &rules[k], beside);
    redisFree(c);
    rl_redis_free(r);
}

Test(redis, equivalence_single_rule, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-eq1:";
    equivalence_each(prefix, 0);
}

Test(redis, equivalence_beside_a_rule_that_never_refuses, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-eq2:";
    equivalence_each(prefix, 1);
}

Test(redis, equivalence_all_rules_at_once, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    static step steps[NSTEPS];
    char prefix[] = "t-eqn:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    size_t nsteps = make_steps(steps);
    const rl_rule *rs[NRULES];
    rl_state st[NRULES];
    int have = 0, admitted = 0;

    cr_assert_not_null(r);
    cr_assert_not_null(c);
    for (size_t k = 0; k < NRULES; k++)
        rs[k] = &rules[k];
    for (size_t i = 0; i < nsteps; i++) {
        rl_rule_result want[NRULES], got[NRULES];
        rl_state out[NRULES];
        int64_t ttl[NRULES];
        int fix[NRULES];
        int all = 1;
        int ret = decide(r, rs, NRULES, steps[i].cost, steps[i].now, got);

        cr_assert_geq(ret, 0, "step %zu: %s", i, rl_redis_errstr(r));
        for (size_t k = 0; k < NRULES; k++) {
            fix[k] = rl_algo_decide(rs[k], have ? &st[k] : NULL, steps[i].now, steps[i].cost,
                                    &out[k], &ttl[k], &want[k]) & RL_ALGO_REPAIR;
            all &= want[k].allowed;
        }
        cr_assert_eq(ret, all, "step %zu: return", i);
        /* A refused request charges no rule: admitting rules report their state at cost 0. */
        for (size_t k = 0; k < NRULES && !all; k++) {
            rl_state unused;
            int64_t unused_ttl;
            if (want[k].allowed)
                rl_algo_decide(rs[k], have ? &st[k] : NULL, steps[i].now, 0, &unused,
                               &unused_ttl, &want[k]);
        }
        for (size_t k = 0; k < NRULES; k++)
            expect_same(&got[k], &want[k], i);
        if (all) {
            memcpy(st, out, sizeof(st));
            have = 1;
            admitted++;
        } else {
            for (size_t k = 0; k < NRULES; k++)
                if (fix[k])
                    st[k] = out[k];
        }
        for (size_t k = 0; k < NRULES; k++) {
            char key[RL_KEY_MAX + 2 * RL_NAME_MAX];
            key_of(key, sizeof(key), prefix, rs[k]);
            expect_stored(c, key, rs[k], have ? &st[k] : NULL, all || fix[k] ? ttl[k] : 0, i);
        }
    }
    /* The sequence must exercise both outcomes to prove anything. */
    cr_assert_gt(admitted, 10);
    cr_assert_lt(admitted, (int)nsteps - 10);
    redisFree(c);
    rl_redis_free(r);
}

Test(redis, refusal_by_one_rule_changes_no_key, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-atomic:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    const rl_rule *rs[] = {&rules[4], &rules[3]}; /* 7/3s burst 10, then 1/d */
    rl_rule_result res[2];
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX];
    redisReply *before, *after;

    cr_assert_eq(decide(r, rs, 2, 1, T0, res), 1, "%s", rl_redis_errstr(r));
    key_of(key, sizeof(key), prefix, rs[0]);
    before = cmd(c, "GET %s", key);
    cr_assert_eq(before->type, REDIS_REPLY_STRING);

    cr_assert_eq(decide(r, rs, 2, 1, T0 + 10, res), 0);
    cr_assert_eq(res[0].allowed, 1, "the first rule alone would admit");
    cr_assert_eq(res[1].allowed, 0);
    cr_assert_eq(res[1].retry_after_ms, 86400000 - 10);
    after = cmd(c, "GET %s", key);
    cr_assert_str_eq(after->str, before->str, "the admitting rule's key was written");
    freeReplyObject(before);
    freeReplyObject(after);
    redisFree(c);
    rl_redis_free(r);
}

Test(redis, production_clock, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-clock:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    static rl_rule rule = RULE("hourly", 3, 3600000, 3);
    rl_rule_result res;
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX];
    redisReply *reply;

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(decide1(r, &rule, 1, -1, &res), 1, "request %d: %s", i,
                     rl_redis_errstr(r));
        cr_assert_eq(res.remaining, 2 - i);
    }
    cr_assert_eq(decide1(r, &rule, 1, -1, &res), 0);
    cr_assert_eq(res.allowed, 0);
    cr_assert(res.retry_after_ms > 1190000 && res.retry_after_ms <= 1200000, "retry %lld",
              (long long)res.retry_after_ms);
    cr_assert_eq(res.reset_ms, res.retry_after_ms);
    key_of(key, sizeof(key), prefix, &rule);
    reply = cmd(c, "PTTL %s", key);
    cr_assert(reply->integer > 3500000 && reply->integer <= 3600000, "PTTL %lld",
              reply->integer);
    freeReplyObject(reply);
    cr_assert(rl_redis_connected(r));
    redisFree(c);
    rl_redis_free(r);
}

/* Redis' clock in ms, as the script reads it. */
static long long redis_now(redisContext *c)
{
    redisReply *reply = redisCommand(c, "TIME");
    long long ms;

    cr_assert(reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
    ms = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
         strtoll(reply->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(reply);
    return ms;
}

static long long pttl_of(redisContext *c, const char *key)
{
    redisReply *reply = cmd(c, "PTTL %s", key);
    long long v = reply->integer;

    freeReplyObject(reply);
    return v;
}

/* A lone GCRA rule on Redis' clock: a key already expiring late enough keeps its expiry (the
 * script writes it with KEEPTTL: many admissions a ms of a sub-ms emission interval), and one
 * that must live longer gets the exact one (PX), as every other write. */
Test(redis, production_clock_moves_an_expiry_only_when_it_must, .init = rlt_redis_setup,
     .fini = rlt_redis_teardown)
{
    char prefix[] = "t-keep:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    /* 1e9 a second: an admission adds a millionth of a ms; 10 s of burst. */
    static rl_rule rule = RULE("fast", 1000000000, 1000, 10000000000);
    rl_rule_result res;
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX], state[64], want[64];
    long long tat = redis_now(c) + 5000, pttl;
    redisReply *reply;

    key_of(key, sizeof(key), prefix, &rule);
    /* FRAC > 0: the state needs the key until TAT + 1, and the admission leaves it so. */
    snprintf(state, sizeof state, "%lld:1", tat);
    freeReplyObject(redisCommand(c, "SET %s %s PX 100000", key, state));
    cr_assert_eq(decide1(r, &rule, 1, -1, &res), 1, "%s", rl_redis_errstr(r));
    snprintf(want, sizeof want, "%lld:1001", tat);
    reply = cmd(c, "GET %s", key);
    cr_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
    pttl = pttl_of(c, key);
    cr_assert(pttl > 50000 && pttl <= 100000, "PTTL %lld: the expiry was kept", pttl);

    /* FRAC 0: the key was needed until TAT only; the admission's state needs TAT + 1. */
    snprintf(state, sizeof state, "%lld:0", tat);
    freeReplyObject(redisCommand(c, "SET %s %s PX 100000", key, state));
    cr_assert_eq(decide1(r, &rule, 1, -1, &res), 1, "%s", rl_redis_errstr(r));
    snprintf(want, sizeof want, "%lld:1000", tat);
    reply = cmd(c, "GET %s", key);
    cr_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
    pttl = pttl_of(c, key);
    cr_assert(pttl > 0 && pttl <= 5001, "PTTL %lld: the expiry was set to the state's", pttl);
    redisFree(c);
    rl_redis_free(r);
}

/* Sets key to value with an expiry of px ms. */
static void set_px(redisContext *c, const char *key, const char *value, long long px)
{
    redisReply *reply = redisCommand(c, "SET %s %s PX %lld", key, value, px);

    cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
}

/* The general path (rules decided together) on Redis' clock: a window's state written in its
 * own window, and a GCRA state needing no later expiry, keep the key's expiry; a window's
 * first write and a GCRA state needing more time set it (PX), as before. */
Test(redis, production_clock_general_path_moves_an_expiry_only_when_it_must,
     .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-keep2:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    static rl_rule fast = RULE("fast", 1000000000, 1000, 10000000000);
    static rl_rule fw = WRULE("fwh", RL_ALGO_FIXED_WINDOW, 1000, 3600000);
    static rl_rule sw = WRULE("swh", RL_ALGO_SLIDING_WINDOW, 1000, 3600000);
    const rl_rule *three[] = {&fast, &fw, &sw};
    rl_rule_result res[3];
    char kg[RL_KEY_MAX + 2 * RL_NAME_MAX], kf[sizeof kg], ks[sizeof kg], v[64];
    long long now = redis_now(c), p = 3600000, cur;

    /* Not within 5 s of a window's end: the decision must fall in the window read here. */
    if (p - now % p < 5000) {
        sleep((unsigned)((p - now % p) / 1000 + 1));
        now = redis_now(c);
    }
    cur = now - now % p;
    key_of(kg, sizeof kg, prefix, &fast);
    key_of(kf, sizeof kf, prefix, &fw);
    key_of(ks, sizeof ks, prefix, &sw);
    snprintf(v, sizeof v, "%lld:1", now + 5000);
    set_px(c, kg, v, 100000000);
    snprintf(v, sizeof v, "f:%lld:3", cur);
    set_px(c, kf, v, 100000000);
    snprintf(v, sizeof v, "s:%lld:0:3", cur);
    set_px(c, ks, v, 100000000);
    cr_assert_eq(decide(r, three, 3, 1, -1, res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res[1].remaining, 996);
    cr_assert_eq(res[2].remaining, 996);
    cr_assert_gt(pttl_of(c, kg), 50000000, "GCRA: the expiry was kept");
    cr_assert_gt(pttl_of(c, kf), 50000000, "fixed_window: the expiry was kept");
    cr_assert_gt(pttl_of(c, ks), 50000000, "sliding_window: the expiry was kept");

    /* GCRA needing TAT + 1 after TAT; the windows' states from the window before. */
    snprintf(v, sizeof v, "%lld:0", now + 5000);
    set_px(c, kg, v, 100000000);
    snprintf(v, sizeof v, "f:%lld:3", cur - p);
    set_px(c, kf, v, 100000000);
    snprintf(v, sizeof v, "s:%lld:0:3", cur - p);
    set_px(c, ks, v, 100000000);
    cr_assert_eq(decide(r, three, 3, 1, -1, res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res[1].remaining, 999);
    cr_assert_leq(pttl_of(c, kg), 5001, "GCRA: the expiry was set to the state's");
    cr_assert_leq(pttl_of(c, kf), p, "fixed_window: the expiry was set to the window's end");
    cr_assert_leq(pttl_of(c, ks), 2 * p, "sliding_window: the expiry was set");
    redisFree(c);
    rl_redis_free(r);
}

/* The expiry (PEXPIRETIME: absolute ms on Redis' clock, so no timing in the check) that key's
 * stored state needs at least: TAT, + 1 when FRAC > 0 (gcra); START + PERIOD (fixed window);
 * START + 2 PERIOD (sliding window). Asserts the key has an expiry and that it is no sooner.
 * 1 when checked, 0 when the key is gone (expired since: its state no longer mattered, or it
 * would be there). */
static int expect_expiry_covers_state(redisContext *c, const char *key, const rl_rule *rule, int n)
{
    /* One script: the value and its expiry at the same instant. */
    redisReply *reply = redisCommand(c, "EVAL %s 1 %s",
                                     "return {redis.call('GET', KEYS[1]), "
                                     "redis.call('PEXPIRETIME', KEYS[1])}",
                                     key);
    long long a = 0, b = 0, need, at;
    const char *v;

    cr_assert(reply != NULL && reply->type == REDIS_REPLY_ARRAY, "%s", c->errstr);
    if (reply->elements < 2 || reply->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(reply);
        return 0;
    }
    v = reply->element[0]->str;
    at = reply->element[1]->integer;
    if (rule->algo == RL_ALGO_FIXED_WINDOW) {
        cr_assert_eq(sscanf(v, "f:%lld:%lld", &a, &b), 2, "%s", v);
        need = a + rule->period_ms;
    } else if (rule->algo == RL_ALGO_SLIDING_WINDOW) {
        cr_assert_eq(sscanf(v, "s:%lld:", &a), 1, "%s", v);
        need = a + 2 * rule->period_ms;
    } else {
        cr_assert_eq(sscanf(v, "%lld:%lld", &a, &b), 2, "%s", v);
        need = a + (b > 0);
    }
    cr_assert(at >= need, "decision %d: %s = \"%s\" expires at %lld, its state needs it until %lld",
              n, key, v, at, need);
    freeReplyObject(reply);
    return 1;
}

/* Whatever mix of PX and KEEPTTL writes the script makes on Redis' clock, a key never expires
 * before its state stops mattering (else a limit would be forgotten early): decisions for
 * about 1.5 s, alone and together, on rules whose windows roll over every 200 ms and GCRA
 * rules several admissions per ms of TAT (the KEEPTTL case) or refusing, each followed by a
 * check of every key's expiry against its state. */
Test(redis, production_clock_no_key_expires_before_its_state_ends, .init = rlt_redis_setup,
     .fini = rlt_redis_teardown)
{
    char prefix[] = "t-cover:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    static rl_rule fast = RULE("cfast", 1000, 200, 1000);
    static rl_rule slow = RULE("cslow", 50, 200, 20);
    static rl_rule fw = WRULE("cfw", RL_ALGO_FIXED_WINDOW, 1000000, 200);
    static rl_rule sw = WRULE("csw", RL_ALGO_SLIDING_WINDOW, 1000000, 200);
    /* a millionth of a ms a unit, its TAT put 5 s ahead first: every admission keeps the
     * key's expiry or moves it by 1 ms, the key there throughout */
    static rl_rule ahead = RULE("cahead", 1000000, 1000, 10000000);
    const rl_rule *all[] = {&fast, &slow, &fw, &sw, &ahead};
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX];
    rl_rule_result res[5];
    long long end, checked = 0;

    cr_assert_eq(decide1(r, &ahead, 5000000, -1, &res[4]), 1, "%s", rl_redis_errstr(r));
    end = redis_now(c) + 1500;

    for (int n = 0; redis_now(c) < end && n < 100000; n++) {
        if (n % 3 == 0) { /* each rule alone: the lone GCRA path, then the general one */
            for (size_t i = 0; i < 5; i++)
                cr_assert_geq(decide1(r, all[i], 1, -1, &res[i]), 0, "%s", rl_redis_errstr(r));
        } else {
            cr_assert_geq(decide(r, all, 5, 1, -1, res), 0, "%s", rl_redis_errstr(r));
        }
        for (size_t i = 0; i < 5; i++) {
            key_of(key, sizeof key, prefix, all[i]);
            checked += expect_expiry_covers_state(c, key, all[i], n);
        }
    }
    cr_assert_geq(checked, 40, "only %lld keys were there to check", checked);
    redisFree(c);
    rl_redis_free(r);
}

/* Calls of a command so far (INFO commandstats), e.g. "fcall". */
static long long calls_of(redisContext *c, const char *command)
{
    char field[64];
    redisReply *reply = cmd(c, "INFO commandstats", NULL);
    const char *p;
    long long n = 0;

    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    p = reply->type == REDIS_REPLY_STRING ? strstr(reply->str, field) : NULL;
    if (p != NULL)
        n = atoll(p + strlen(field));
    freeReplyObject(reply);
    return n;
}

/* On Redis 7 the script is a function library, loaded once and run by FCALL: no EVALSHA. */
Test(redis, runs_the_script_as_a_function, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-fcall:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_rule_result res;
    redisReply *reply;

    for (int i = 0; i < 3; i++)
        cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 97);
    cr_assert_eq(calls_of(c, "fcall"), 3, "every decision an FCALL");
    cr_assert_eq(calls_of(c, "evalsha"), 0, "no EVALSHA");
    cr_assert_eq(calls_of(c, "function|load"), 1, "loaded once");
    reply = cmd(c, "FUNCTION LIST LIBRARYNAME %s", rl_redis_function);
    cr_assert(reply->type == REDIS_REPLY_ARRAY && reply->elements == 1,
              "library %s not listed (type %d)", rl_redis_function, reply->type);
    freeReplyObject(reply);
    redisFree(c);
    rl_redis_free(r);
}

/* One decision, then flush (SCRIPT FLUSH or FUNCTION FLUSH) behind the handle's back, then
 * another: the script is loaded again and the decision made within the call, on the same
 * connection, the state kept. Returns how often the function library was loaded. */
static long long decide_across(const char *flush)
{
    char prefix[] = "t-flush:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_rule_result res;
    redisReply *reply;
    long long loads;

    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    reply = cmd(c, flush, NULL);
    cr_assert_eq(reply->type, REDIS_REPLY_STATUS, "%s", flush);
    freeReplyObject(reply);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 1, "the state survived the flush");
    cr_assert(rl_redis_connected(r), "reloaded on the same connection");
    loads = calls_of(c, "function|load");
    redisFree(c);
    rl_redis_free(r);
    return loads;
}

Test(redis, reloads_a_flushed_script, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    decide_across("SCRIPT FLUSH");
}

/* FUNCTION FLUSH (or a restart of a server without persistence) answers FCALL with "Function
 * not found": loaded again and called again within the decision, the state kept. */
Test(redis, reloads_a_flushed_function, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    cr_assert_eq(decide_across("FUNCTION FLUSH"), 2);
}

/* A server before Redis 7 (the fake: FUNCTION is an unknown command) gets SCRIPT LOAD and
 * EVALSHA, on the same connection. */
Test(redis, falls_back_to_evalsha_without_functions, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-nofunc:";
    rlt_fake fake = {.mode = RLT_FAKE_OK};
    rl_redis_config cfg = config(prefix);
    rl_rule_result res;
    rl_redis *r;

    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg.port = fake.port;
    r = rl_redis_new(&cfg);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert(rl_redis_connected(r));
    rl_redis_free(r);
    rlt_fake_stop(&fake);
}

Test(redis, selects_the_configured_db, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-db:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r;
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_rule_result res;
    char key[RL_KEY_MAX + 2 * RL_NAME_MAX];
    redisReply *reply;

    cfg.db = 3;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    key_of(key, sizeof(key), prefix, &rules[0]);
    freeReplyObject(cmd(c, "SELECT 3", NULL));
    reply = cmd(c, "EXISTS %s", key);
    cr_assert_eq(reply->integer, 1);
    freeReplyObject(reply);
    redisFree(c);
    rl_redis_free(r);
}

Test(redis, unix_socket, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-unix:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r;
    rl_rule_result res;

    cfg.socket = rlt_srv.socket;
    cfg.port = 1; /* unused with a socket */
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 2);
    rl_redis_free(r);
}

Test(redis, auth_with_the_right_password, .init = start_auth, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-auth:", pw[] = "s3cret-Pass";
    rl_redis_config cfg = config(prefix);
    rl_redis *r;
    rl_rule_result res;

    cfg.password = pw;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    rl_redis_free(r);
}

Test(redis, auth_with_a_wrong_password, .init = start_auth, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-authbad:", pw[] = "not-the-Pass-42";
    rl_redis_config cfg = config(prefix);
    rl_redis *r;
    rl_rule_result res;

    cfg.password = pw;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), -1);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "auth failed"), "%s", rl_redis_errstr(r));
    cr_assert_null(strstr(rl_redis_errstr(r), pw), "the password leaked: %s",
                   rl_redis_errstr(r));
    cr_assert_not(rl_redis_connected(r));

    /* No password at all is refused too, before any script runs. */
    cfg.password = NULL;
    rl_redis_free(r);
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), -1);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "NOAUTH"), "%s", rl_redis_errstr(r));
    rl_redis_free(r);
}

/* ---- failures (when to try again is failover.c's job: test_failover.c) ------------------ */

Test(redis, nothing_listening_fails_fast, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-refused:";
    /* Deadlines far above the bounds below: a refused connect must fail at once, not wait. */
    rl_redis_config cfg = {.host = host, .prefix = prefix, .connect_timeout_ms = 5000,
                           .command_timeout_ms = 5000};
    rl_redis *r;
    rl_rule_result res;
    long long t;

    cfg.port = rlt_free_port();
    cr_assert_gt(cfg.port, 0);
    r = rl_redis_new(&cfg);
    t = rlt_now_ms();
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), -1);
    cr_assert_lt(rlt_now_ms() - t, 2000);
    cr_assert_neq(rl_redis_errstr(r)[0], '\0');
    cr_assert_not_null(strstr(rl_redis_errstr(r), "connect"), "%s", rl_redis_errstr(r));
    t = rlt_now_ms();
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), -1);
    cr_assert_lt(rlt_now_ms() - t, 2000);
    cr_assert_neq(rl_redis_errstr(r)[0], '\0');
    rl_redis_free(r);
}

Test(redis, stopped_server_times_out_then_recovers, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-stop:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r;
    rl_rule_result res;
    long long t;

    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    /* cfg is borrowed: only the decision against the stopped server has the short deadline
     * (which a stopped server would otherwise hold forever; the bound is generous for load). */
    cfg.command_timeout_ms = 50;
    cr_assert_eq(kill(rlt_srv.pid, SIGSTOP), 0);
    t = rlt_now_ms();
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), -1);
    cr_assert_lt(rlt_now_ms() - t, 50 + 2500);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "timed out"), "%s", rl_redis_errstr(r));
    cr_assert_not(rl_redis_connected(r));
    cr_assert_eq(kill(rlt_srv.pid, SIGCONT), 0);
    cfg.command_timeout_ms = 2000;
    /* The timed-out call may still have run once the server continued: allow for it. */
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert(res.remaining == 98 || res.remaining == 97, "remaining %lld",
              (long long)res.remaining);
    cr_assert(rl_redis_connected(r));
    cr_assert_str_eq(rl_redis_errstr(r), "");
    rl_redis_free(r);
}

Test(redis, killed_server_fails_then_recovers_after_restart, .init = rlt_redis_setup,
     .fini = rlt_redis_teardown)
{
    char prefix[] = "t-kill:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    rl_rule_result res;
    long long t;
    int ret;

    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    rlt_redis_kill(&rlt_srv);
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), -1);
    cr_assert_neq(rl_redis_errstr(r)[0], '\0');
    cr_assert_eq(rlt_redis_restart(&rlt_srv), 0, "restart on port %d", rlt_srv.port);
    t = rlt_now_ms();
    while ((ret = decide1(r, &rules[1], 1, T0, &res)) < 0 && rlt_now_ms() - t < 10000)
        rlt_sleep_ms(20);
    cr_assert_eq(ret, 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 99, "a fresh server has no state");
    rl_redis_free(r);
}

/* A process idle while Redis restarted: its kept connection is dead; the next decision sees
 * that, reconnects and decides in Redis, instead of failing once (a fallback decision). */
Test(redis, idle_through_a_restart_the_next_decision_is_redis, .init = rlt_redis_setup,
     .fini = rlt_redis_teardown)
{
    char prefix[] = "t-idle:", prefix_unix[] = "t-idle-unix:";
    rl_redis_config cfg = config(prefix);
    rl_rule_result res;
    rl_redis *r;

    for (int sock = 0; sock < 2; sock++) {
        if (sock) {
            cfg.socket = rlt_srv.socket;
            cfg.prefix = prefix_unix;
        }
        r = rl_redis_new(&cfg);
        cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
        rlt_redis_kill(&rlt_srv);
        cr_assert_eq(rlt_redis_restart(&rlt_srv), 0, "restart on port %d", rlt_srv.port);
        cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "over %s: %s",
                     sock ? "a unix socket" : "TCP", rl_redis_errstr(r));
        cr_assert_eq(res.remaining, 99, "a fresh server has no state");
        cr_assert_eq(rl_redis_ping(r), 0, "%s", rl_redis_errstr(r));
        rl_redis_free(r);
    }
}

/* A kept connection that the idle check finds alive but the server closes on the command
 * (closed before any byte of the reply): replaced, and the command sent once more. */
Test(redis, kept_connection_dead_on_first_use_is_retried_once, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-retry:";
    rlt_fake fake = {.mode = RLT_FAKE_CLOSE, .target = "EVALSHA", .after = 1, .once = 1};
    rl_redis_config cfg = config(prefix);
    rl_rule_result res;
    rl_redis *r;
    long long t;

    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg.port = fake.port;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "not retried: %s", rl_redis_errstr(r));
    rl_redis_free(r);
    rlt_fake_stop(&fake);

    /* Closed on every EVALSHA after the first: one retry, then a failure by the deadline. */
    fake.once = 0;
    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg.port = fake.port;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    t = rlt_now_ms();
    cr_assert_eq(decide1(r, &rules[1], 1, T0, &res), -1);
    cr_assert_lt(rlt_now_ms() - t, cfg.command_timeout_ms + 900);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "closed the connection"), "%s",
                       rl_redis_errstr(r));
    cr_assert_not(rl_redis_connected(r));
    rl_redis_free(r);
    rlt_fake_stop(&fake);
}

Test(redis, bad_input_keeps_the_connection, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-input:";
    rl_redis_config cfg = config(prefix);
    rl_redis *r = rl_redis_new(&cfg);
    rl_rule_result res;
    rl_item item = {.rule = &rules[0], .cost = 1, .res = &res};
    char longclient[RL_KEY_MAX + 10];

    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    memset(longclient, 'a', sizeof(longclient) - 1);
    longclient[sizeof(longclient) - 1] = '\0';
    item.client = longclient;
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0), -1);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "too long"), "%s", rl_redis_errstr(r));
    cr_assert_eq(decide1(r, &rules[0], 0, T0, &res), -1, "cost 0");
    cr_assert(rl_redis_connected(r));
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(rl_redis_decide(r, NULL, 0, T0), 1, "no rules: nothing to refuse");
    rl_redis_free(r);
}

Test(redis, auth_as_an_acl_user, .init = rlt_redis_setup, .fini = rlt_redis_teardown)
{
    char prefix[] = "t-acl:", user[] = "rl", pw[] = "acl-Pw-77", bad[] = "wrong-Pw-78";
    rl_redis_config cfg = config(prefix);
    redisContext *c = rlt_redis_client(&rlt_srv);
    redisReply *reply;
    rl_redis *r;
    rl_rule_result res;

    reply = redisCommand(c, "ACL SETUSER rl on >%s ~* +@all", pw);
    cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(c);

    cfg.user = user;
    cfg.password = pw;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), 1, "%s", rl_redis_errstr(r));
    rl_redis_free(r);

    cfg.password = bad;
    r = rl_redis_new(&cfg);
    cr_assert_eq(decide1(r, &rules[0], 1, T0, &res), -1);
    cr_assert_not_null(strstr(rl_redis_errstr(r), "auth failed"), "%s", rl_redis_errstr(r));
    cr_assert_null(strstr(rl_redis_errstr(r), bad), "the password leaked: %s",
                   rl_redis_errstr(r));
    rl_redis_free(r);
}
