/* test_redis_slog.c -- the exact sliding log above RL_LOG_MAX in Redis (ratelimit.lua zlog)
 *
 * A real redis-server and a brute-force model: the model keeps every admitted unit's time
 * (any number) and decides each request from its definition (slidelog.c's header: units at
 * t > now - P count, entries later than now count as now and are stored so when written;
 * refusals write nothing but such a repair). Random multi-rule streams (two enforced logs, one dry-run log,
 * costs, clock steps back) must agree with it field by field, uncharged reports included.
 * Then what the representation owes: a refusal leaves every key byte for byte as it was
 * (DUMP), an admission sets the expiry in the same call (PTTL, on the server's clock too),
 * a key of another type reads as new, and a count of RL_LOG_COUNT_MAX admits exactly that.
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "algo.h"
#include "backend.h"
#include "keys.h"
#include "lib_redis_server.h"


static char host[] = "127.0.0.1";
static char client[] = "192.0.2.9";

TestSuite(redis_slog, .init = rlt_redis_setup, .fini = rlt_redis_teardown, .timeout = 120);

#define T0 INT64_C(1780000000000)
#define UNITS_MAX 4096

/* One rule's log as the definition keeps it: unit times, unsorted. */
typedef struct model {
    int64_t t[UNITS_MAX];
    size_t n;
} model;

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The live units at now (later ones as now), sorted, into live; returns how many, and sets
 * *ahead when some were later than now. */
static size_t model_live(const model *m, int64_t now, int64_t period, int64_t *live, int *ahead)
{
    size_t k = 0;
    *ahead = 0;
    for (size_t i = 0; i < m->n; i++) {
        int64_t t = m->t[i];
        if (t > now) {
            t = now;
            *ahead = 1;
        }
        if (t > now - period)
            live[k++] = t;
    }
    qsort(live, k, sizeof live[0], cmp64);
    return k;
}

/* Decides on the model (cost 0: the probe); stores the log when `write` says so. */
static rl_rule_result model_decide(model *m, const rl_rule *r, int64_t now, int64_t cost,
                                   int *repair)
{
    static int64_t live[UNITS_MAX];
    int ahead;
    size_t used = model_live(m, now, r->period_ms, live, &ahead);
    rl_rule_result res = {.rule = r, .limit = r->count, .window_ms = r->period_ms};
    int64_t rem = r->count - (int64_t)used;

    *repair = 0;
    res.remaining = rem < 0 ? 0 : rem;
    if (cost > r->count || (int64_t)used + cost > r->count) {
        *repair = ahead; /* only a refusal stores its repair alone (algo.h) */
        res.retry_after_ms = cost > r->count
                                 ? r->period_ms
                                 : live[(int64_t)used + cost - r->count - 1] + r->period_ms - now;
        res.reset_ms = res.retry_after_ms;
        return res;
    }
    res.allowed = 1;
    res.remaining = rem - cost;
    res.reset_ms = cost > 0 ? r->period_ms : used > 0 ? live[used - 1] + r->period_ms - now : 0;
    return res;
}

/* The model's state after a write at now: the live log and cost more units at now. */
static void model_write(model *m, const rl_rule *r, int64_t now, int64_t cost)
{
    static int64_t live[UNITS_MAX];
    int ahead;
    size_t k = model_live(m, now, r->period_ms, live, &ahead);
    memcpy(m->t, live, k * sizeof live[0]);
    for (int64_t i = 0; i < cost; i++)
        live[0] = 0, m->t[k++] = now;
    cr_assert_lt(k, (size_t)UNITS_MAX);
    m->n = k;
}

/* rl_redis keeps a pointer to its config: one open handle at a time, as every test has. */
static rl_redis_config cfg;

static rl_redis *open_redis(char *prefix)
{
    cfg = (rl_redis_config){.enabled = 1, .host = host, .port = rlt_srv.port, .prefix = prefix,
                            .connect_timeout_ms = 500, .command_timeout_ms = 5000};
    rl_redis *r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    return r;
}

static void key_of(char *buf, size_t size, const char *prefix, const rl_rule *rule)
{
    int len = snprintf(buf, size, "%s{%s}:%s", prefix, client, rule->key_id);
    cr_assert(len > 0 && (size_t)len < size);
}

/* DUMP of a key, as a malloc'd buffer (NULL for no key). */
static char *dump(redisContext *c, const char *key, size_t *len)
{
    redisReply *reply = redisCommand(c, "DUMP %s", key);
    char *out = NULL;
    cr_assert_not_null(reply);
    *len = 0;
    if (reply->type == REDIS_REPLY_STRING) {
        out = malloc(reply->len);
        cr_assert_not_null(out);
        memcpy(out, reply->str, reply->len);
        *len = reply->len;
    }
    freeReplyObject(reply);
    return out;
}

static long long integer(redisContext *c, const char *fmt, const char *key)
{
    redisReply *reply = redisCommand(c, fmt, key);
    cr_assert_not_null(reply);
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "%s: %s", fmt,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "not an integer");
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

static rl_rule mk(const char *name, int64_t count, int64_t period, int dry)
{
    rl_rule r = {.algo = RL_ALGO_SLIDING_LOG, .count = count, .period_ms = period,
                 .burst = count, .cost = 1, .dry_run = dry};
    snprintf(r.name, sizeof r.name, "%s", name);
    r.key_id_len = rl_keys_rule_id(&r, r.key_id);
    return r;
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

Test(redis_slog, agrees_with_the_definition_step_by_step)
{
    char prefix[] = "slz:";
    rl_rule rules[3] = {mk("a", 200, 60000, 0), mk("b", 300, 10000, 0), mk("d", 150, 20000, 1)};
    static model m[3];
    rl_redis *r = open_redis(prefix);
    redisContext *c = rlt_redis_client(&rlt_srv);
    char keys[3][128];
    int64_t now = T0;
    long refused = 0, admitted = 0, probes = 0, dry_refusals = 0, nochange = 0;

    cr_assert_not_null(c);
    for (int i = 0; i < 3; i++)
        key_of(keys[i], sizeof keys[i], prefix, &rules[i]);
    for (int step = 0; step < 3000; step++) {
        now += (int64_t)(rnd() % 600);
        if (rnd() % 400 == 0)
            now -= (int64_t)(rnd() % 20000); /* the clock steps back */
        int64_t cost = rnd() % 10 == 0 ? 30 + (int64_t)(rnd() % 60) : 1 + (int64_t)(rnd() % 3);
        rl_rule_result got[3], want[3];
        rl_item items[3];
        int repair[3], all = 1;
        char *before[3];
        size_t blen[3];

        for (int i = 0; i < 3; i++) {
            items[i] = (rl_item){.rule = &rules[i], .client = client, .cost = cost,
                                 .res = &got[i]};
            want[i] = model_decide(&m[i], &rules[i], now, cost, &repair[i]);
            all &= want[i].allowed || rules[i].dry_run;
            before[i] = dump(c, keys[i], &blen[i]);
        }
        int d = rl_redis_decide(r, items, 3, now);
        cr_assert_geq(d, 0, "%s", rl_redis_errstr(r));
        cr_assert_eq(d, all, "step %d at %lld: redis %d, the definition %d", step,
                     (long long)now, d, all);
        for (int i = 0; i < 3; i++) {
            if (!all && want[i].allowed) { /* uncharged: the probe */
                int unused;
                want[i] = model_decide(&m[i], &rules[i], now, 0, &unused);
                probes++;
            }
            cr_assert_eq(got[i].allowed, want[i].allowed, "step %d rule %s allowed", step,
                         rules[i].name);
            cr_assert_eq(got[i].remaining, want[i].remaining, "step %d rule %s remaining %lld, want %lld",
                         step, rules[i].name, (long long)got[i].remaining,
                         (long long)want[i].remaining);
            cr_assert_eq(got[i].reset_ms, want[i].reset_ms, "step %d rule %s reset %lld, want %lld",
                         step, rules[i].name, (long long)got[i].reset_ms,
                         (long long)want[i].reset_ms);
            cr_assert_eq(got[i].retry_after_ms, want[i].retry_after_ms,
                         "step %d rule %s retry %lld, want %lld", step, rules[i].name,
                         (long long)got[i].retry_after_ms, (long long)want[i].retry_after_ms);
            int wrote = (all && want[i].allowed) || repair[i];
            if (wrote) {
                model_write(&m[i], &rules[i], now, all && want[i].allowed ? cost : 0);
            } else {
                /* Nothing written: the key is byte for byte what it was. */
                size_t alen;
                char *after = dump(c, keys[i], &alen);
                cr_assert_eq(alen, blen[i], "step %d rule %s: a refusal changed the key", step,
                             rules[i].name);
                cr_assert(alen == 0 || memcmp(after, before[i], alen) == 0,
                          "step %d rule %s: a refusal changed the key", step, rules[i].name);
                free(after);
                nochange++;
            }
            if (rules[i].dry_run && !want[i].allowed)
                dry_refusals++;
            free(before[i]);
        }
        if (all)
            admitted++;
        else
            refused++;
    }
    redisFree(c);
    rl_redis_free(r);
    cr_log_info("%ld admitted, %ld refused, %ld probes, %ld dry-run refusals", admitted, refused,
                probes, dry_refusals);
    cr_assert_gt(admitted, 500, "%ld admitted", admitted);
    cr_assert_gt(refused, 200, "%ld refused", refused);
    cr_assert_gt(probes, 50, "%ld uncharged reports", probes);
    cr_assert_gt(dry_refusals, 50, "%ld dry-run refusals", dry_refusals);
    cr_assert_gt(nochange, 200);
}

/* On the server's clock: the expiry is set in the same call, to the period. */
Test(redis_slog, expiry_on_the_server_clock)
{
    char prefix[] = "slt:";
    rl_rule rule = mk("e", 129, 5000, 0);
    rl_redis *r = open_redis(prefix);
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_item item;
    rl_rule_result res;
    char key[128];

    key_of(key, sizeof key, prefix, &rule);
    item = (rl_item){.rule = &rule, .client = client, .cost = 129, .res = &res};
    cr_assert_eq(rl_redis_decide(r, &item, 1, -1), 1, "%s", rl_redis_errstr(r));
    long long pttl = integer(c, "PTTL %s", key);
    cr_assert(pttl > 0 && pttl <= 5000, "PTTL %lld", pttl);
    cr_assert_eq(integer(c, "ZCARD %s", key), 129);
    item.cost = 1;
    cr_assert_eq(rl_redis_decide(r, &item, 1, -1), 0);
    cr_assert(res.retry_after_ms > 0 && res.retry_after_ms <= 5000);
    cr_assert_eq(integer(c, "ZCARD %s", key), 129, "a refusal adds nothing");
    redisFree(c);
    rl_redis_free(r);
}

/* A key of another type (an algorithm or count changed on reload) reads as new; a GCRA rule
 * on a key that holds a sorted set does too, without an error. */
Test(redis_slog, a_key_of_another_type_reads_as_new)
{
    char prefix[] = "sly:";
    rl_rule log = mk("k", 500, 60000, 0);
    rl_rule gcra = log;
    rl_redis *r = open_redis(prefix);
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_item item;
    rl_rule_result res;
    char key[128];

    gcra.algo = RL_ALGO_GCRA;
    key_of(key, sizeof key, prefix, &log);
    freeReplyObject(redisCommand(c, "SET %s %s", key, "12345:0"));
    item = (rl_item){.rule = &log, .client = client, .cost = 1, .res = &res};
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 499);
    cr_assert_eq(integer(c, "ZCARD %s", key), 1);
    item.rule = &gcra; /* the one-GCRA-rule path */
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 499);
    item.rule = &log;
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 499);
    redisFree(c);
    rl_redis_free(r);
}

/* RL_LOG_COUNT_MAX units in one period, exactly; as the oldest leave, as many come in. */
Test(redis_slog, at_the_count_bound)
{
    char prefix[] = "slb:";
    rl_rule rule = mk("big", RL_LOG_COUNT_MAX, 60000, 0);
    rl_redis *r = open_redis(prefix);
    redisContext *c = rlt_redis_client(&rlt_srv);
    rl_item item;
    rl_rule_result res;
    char key[128];

    key_of(key, sizeof key, prefix, &rule);
    item = (rl_item){.rule = &rule, .client = client, .cost = RL_LOG_COUNT_MAX - 1, .res = &res};
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0), 1, "%s", rl_redis_errstr(r));
    item.cost = 1;
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0 + 30000), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(integer(c, "ZCARD %s", key), RL_LOG_COUNT_MAX);
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0 + 59999), 0);
    cr_assert_eq(res.retry_after_ms, 1);
    item.cost = RL_LOG_COUNT_MAX - 1;
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0 + 60000), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(integer(c, "ZCARD %s", key), RL_LOG_COUNT_MAX, "the left entries were removed");
    item.cost = 1;
    cr_assert_eq(rl_redis_decide(r, &item, 1, T0 + 60000), 0);
    cr_assert_eq(res.retry_after_ms, 30000, "the one at +30000 leaves first");
    redisFree(c);
    rl_redis_free(r);
}
