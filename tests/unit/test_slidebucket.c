/* test_slidebucket.c -- the bucketed sliding log (count > RL_LOG_MAX) against the exact log
 *
 * The property the bucketed form owes (slidebucket.c): on its own history of admissions,
 * every request it admits the exact log would admit too (so no rolling period ever holds
 * more than count units), and every request it refuses the exact log would refuse over a
 * period one bucket longer (P + W - 1 ms: it under-admits by at most one bucket's width).
 * The exact decision is computed from scratch from the kept history. Random streams of
 * several rates, costs and periods, with clock steps back (after which, as in the exact log,
 * every entry later than the clock counts as the clock's now); retry_after_ms must be the
 * first ms the request fits, and torn states must never admit more than count.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "algo_test.h"
#include "leakcheck.h"

TestSuite(slidebucket, .fini = rl_test_leak_check);

#define HIST_MAX 200000

/* The admitted units: (time, cost), in admission order. */
typedef struct hist {
    int64_t t[HIST_MAX], c[HIST_MAX];
    size_t n;
} hist;

static hist H;

/* Units admitted at times in (now - span, now]; entries later than now (a clock that stepped
 * back) count as now, as both logs count them. */
static int64_t units_within(const hist *h, int64_t now, int64_t span)
{
    int64_t u = 0;
    for (size_t i = h->n; i-- > 0;) {
        int64_t t = h->t[i] > now ? now : h->t[i];
        if (t > now - span)
            u += h->c[i];
    }
    return u;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static int64_t width(int64_t period)
{
    return (period + RL_LOG_BUCKETS - 1) / RL_LOG_BUCKETS;
}

Test(slidebucket, words_and_dispatch)
{
    rl_rule small = rlt_rule(RL_ALGO_SLIDING_LOG, RL_LOG_MAX, 1000, RL_LOG_MAX);
    rl_rule big = rlt_rule(RL_ALGO_SLIDING_LOG, RL_LOG_MAX + 1, 1000, RL_LOG_MAX + 1);
    cr_assert_eq(rl_algo_state_words(&small), 2 + RL_LOG_MAX / 2);
    cr_assert_eq(rl_algo_state_words(&big), 2 + (RL_LOG_BUCKETS + 2) / 2);
    cr_assert_leq(rl_algo_state_words(&big), RL_STATE_WORDS);
}

/* 200 per minute, the seed's default: buckets of 938 ms. */
Test(slidebucket, two_hundred_a_minute_by_hand)
{
    rl_rule r = rlt_rule(RL_ALGO_SLIDING_LOG, 200, 60000, 200);
    rlt_key k = {.have = 0};
    const int64_t t0 = 1780000000000LL; /* a multiple of 938? no: somewhere in a bucket */
    const int64_t w = width(60000), end = (t0 / w + 1) * w - 1;
    rl_rule_result res;

    for (int i = 0; i < 200; i++) {
        res = rlt_step(&r, &k, t0, 1);
        cr_assert(res.allowed, "unit %d", i);
        cr_assert_eq(res.remaining, 199 - i);
        cr_assert_eq(res.reset_ms, end + 60000 - t0);
    }
    res = rlt_step(&r, &k, t0, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(res.retry_after_ms, end + 60000 - t0); /* the bucket's end + P */
    cr_assert_geq(res.retry_after_ms, 60000);
    cr_assert_lt(res.retry_after_ms, 60000 + w);
    res = rlt_probe(&r, &k, t0 + res.retry_after_ms - 1, 1);
    cr_assert_not(res.allowed);
    res = rlt_step(&r, &k, end + 60000, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 199);
}

static void run_stream(int64_t count, int64_t period, int64_t gap_max, int64_t cost_max,
                       int steps, int step_back)
{
    rl_rule r = rlt_rule(RL_ALGO_SLIDING_LOG, count, period, count);
    rlt_key k = {.have = 0};
    const int64_t w = width(period);
    int64_t now = 1780000000000LL + (int64_t)(rnd() % 100000);
    int64_t admitted = 0, refused = 0;
    /* With steps back the bucketed log may remember units the exact one forgot (a bucket
     * outlives its units by up to W - 1 ms), which only refuses more: such a stream checks
     * the safety side alone; the others check both. */

    H.n = 0;
    for (int i = 0; i < steps; i++) {
        now += (int64_t)(rnd() % (uint64_t)(gap_max + 1));
        if (step_back && rnd() % 500 == 0)
            now -= (int64_t)(rnd() % (uint64_t)(2 * period));
        int64_t cost = 1 + (int64_t)(rnd() % (uint64_t)cost_max);
        if (k.have && now >= k.expires)
            k.have = 0; /* the store drops it */
        const int64_t exact = units_within(&H, now, period);
        const int64_t longer = units_within(&H, now, period + w - 1);
        rl_rule_result res = rlt_step(&r, &k, now, cost);
        if (res.allowed) {
            cr_assert_leq(exact + cost, count,
                          "%lld/%lld: admitted at %lld with %lld units in the last period",
                          (long long)count, (long long)period, (long long)now, (long long)exact);
            cr_assert_lt(H.n, HIST_MAX);
            H.t[H.n] = now;
            H.c[H.n++] = cost;
            admitted += cost;
        } else if (!step_back) {
            cr_assert_gt(longer + cost, count,
                         "%lld/%lld: refused at %lld with %lld units in the last P + W - 1",
                         (long long)count, (long long)period, (long long)now, (long long)longer);
            cr_assert_leq(res.retry_after_ms, period + w - 1);
            /* The first ms it fits: refused 1 ms before, admitted then. */
            cr_assert_not(rlt_probe(&r, &k, now + res.retry_after_ms - 1, cost).allowed);
            cr_assert(rlt_probe(&r, &k, now + res.retry_after_ms, cost).allowed);
        }
        if (!res.allowed) {
            cr_assert_gt(res.retry_after_ms, 0);
            refused++;
        }
        /* A written log (an admission or a repair) has forgotten what left the window
         * and holds what was later than now as now's (slidelog.c): the exact log's history
         * from here on. A refusal writes nothing, so a step back may bring entries back. */
        if (step_back && (res.allowed || k.repaired))
            for (size_t j = 0; j < H.n; j++) {
                if (H.t[j] > now)
                    H.t[j] = now;
                if (H.t[j] <= now - period)
                    H.c[j] = 0;
            }
        /* remaining: cost-1 requests that fit now. */
        cr_assert_leq(res.remaining, count - (res.allowed ? exact + cost : exact));
        if (k.have)
            cr_assert_leq(k.ttl, period + w - 1);
    }
    cr_assert_gt(admitted, 0);
    cr_assert_gt(refused, 0, "%lld/%lld: the stream never reached the limit", (long long)count,
                 (long long)period);
}

Test(slidebucket, never_more_than_exact_at_most_a_bucket_fewer)
{
    run_stream(200, 60000, 600, 1, 3000, 0);  /* 200/min at ~200 per min: near the edge */
    run_stream(129, 1000, 12, 2, 4000, 0);    /* just above the exact log */
    run_stream(200, 6400, 40, 3, 4000, 0);    /* buckets of exactly 100 ms */
    run_stream(1000, 64, 0, 5, 3000, 0);      /* many units per ms, 1 ms buckets */
    run_stream(300, 7, 1, 150, 3000, 0);      /* a period shorter than the bucket count */
    run_stream(5000, 100000, 30, 40, 4000, 0); /* big costs */
    run_stream(250, 1000, 9, 3, 6000, 1);     /* clock steps back */
}

/* Any bit pattern: admitting cost 1 at one ms never passes count units. */
Test(slidebucket, torn_states_never_admit_more_than_count)
{
    rl_rule r = rlt_rule(RL_ALGO_SLIDING_LOG, 300, 5000, 300);
    for (int i = 0; i < 300; i++) {
        rlt_key k = {.have = 1, .ttl = 1, .expires = INT64_MAX};
        for (size_t j = 0; j < RL_STATE_WORDS; j++)
            k.st.w[j] = (int64_t)rnd();
        if (i % 3 == 0)
            k.st.w[0] = 1780000000000LL / width(5000) + (int64_t)(rnd() % 200) - 100;
        if (i % 2 == 0)
            for (size_t j = 2; j < RL_STATE_WORDS; j++)
                k.st.w[j] &= 0x0000003f0000003fLL; /* small counts */
        int64_t n = 0;
        for (int j = 0; j < 400; j++)
            n += rlt_step(&r, &k, 1780000000000LL, 1).allowed;
        cr_assert_leq(n, 300);
    }
}

/* Bounds: the state of a full log stays inside its words, counts at RL_LOG_COUNT_MAX. */
Test(slidebucket, at_the_count_bound)
{
    rl_rule r = rlt_rule(RL_ALGO_SLIDING_LOG, RL_LOG_COUNT_MAX, 60000, RL_LOG_COUNT_MAX);
    rlt_key k = {.have = 0};
    const int64_t t0 = 1780000000000LL;
    cr_assert(rlt_step(&r, &k, t0, RL_LOG_COUNT_MAX - 1).allowed);
    cr_assert(rlt_step(&r, &k, t0 + 30000, 1).allowed);
    cr_assert_not(rlt_step(&r, &k, t0 + 59999, 1).allowed);
    rl_rule_result res = rlt_step(&r, &k, t0 + 30000, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
}
