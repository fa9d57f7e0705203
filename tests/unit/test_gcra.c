/* test_gcra.c -- GCRA as a pure function of (state, now, cost), driven by explicit times */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "algo_test.h"
#include "leakcheck.h"

static rl_rule gcra_rule(int64_t count, int64_t period_ms, int64_t burst)
{
    return rlt_rule(RL_ALGO_GCRA, count, period_ms, burst);
}

/* A leak fails the test under SANITIZE=address (leakcheck.h). */
TestSuite(gcra, .fini = rl_test_leak_check);

Test(gcra, burst_then_refuse_at_one_instant)
{
    rl_rule r = gcra_rule(5, 60000, 5);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 5; i++) {
        rl_rule_result res = rlt_step(&r, &k, 1000, 1);
        cr_assert(res.allowed, "request %d", i);
        cr_assert_eq(res.remaining, 4 - i);
        cr_assert_eq(res.retry_after_ms, 0);
        cr_assert_eq(res.limit, 5);
        cr_assert_eq(res.window_ms, 60000);
        cr_assert_eq(res.reset_ms, 12000 * (i + 1));
    }
    rl_rule_result res = rlt_step(&r, &k, 1000, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(res.retry_after_ms, 12000);
    cr_assert_eq(res.reset_ms, 12000);
}

Test(gcra, refill_boundary_is_exact)
{
    rl_rule r = gcra_rule(5, 60000, 5);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 5; i++)
        cr_assert(rlt_step(&r, &k, 0, 1).allowed);
    cr_assert_not(rlt_step(&r, &k, 11999, 1).allowed);
    cr_assert_eq(rlt_step(&r, &k, 11999, 1).retry_after_ms, 1);
    cr_assert(rlt_step(&r, &k, 12000, 1).allowed);
    cr_assert_not(rlt_step(&r, &k, 12000, 1).allowed);
    /* A long idle period refills to the burst, never beyond. */
    rl_rule_result res = rlt_step(&r, &k, 10000000, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 4);
}

Test(gcra, fractional_interval_admits_exactly_count_per_period)
{
    /* 3/s: T = 333.33 ms. Over a long run at 1 request per ms, admissions must equal the
     * allowance exactly: burst + floor(elapsed * count / period). */
    rl_rule r = gcra_rule(3, 1000, 3);
    rlt_key k = { .have = 0 };
    int64_t admitted = 0;
    for (int64_t now = 0; now < 100000; now++)
        admitted += rlt_step(&r, &k, now, 1).allowed;
    cr_assert_eq(admitted, 3 + (99999 * 3) / 1000);
    /* and the first refill comes at ceil(333.33) ms */
    rl_rule r2 = gcra_rule(3, 1000, 3);
    rlt_key k2 = { .have = 0 };
    for (int i = 0; i < 3; i++)
        rlt_step(&r2, &k2, 0, 1);
    rl_rule_result res = rlt_step(&r2, &k2, 0, 1);
    cr_assert_eq(res.retry_after_ms, 334);
    cr_assert_not(rlt_step(&r2, &k2, 333, 1).allowed);
    cr_assert(rlt_step(&r2, &k2, 334, 1).allowed);
}

Test(gcra, odd_periods)
{
    /* 100 per 90 s: T = 900 ms */
    rl_rule r = gcra_rule(100, 90000, 100);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 100; i++)
        cr_assert(rlt_step(&r, &k, 5, 1).allowed);
    rl_rule_result res = rlt_step(&r, &k, 5, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 900);
    cr_assert(rlt_step(&r, &k, 905, 1).allowed);
}

Test(gcra, burst_smaller_than_count)
{
    rl_rule r = gcra_rule(10, 1000, 2); /* 10/s, at most 2 at once */
    rlt_key k = { .have = 0 };
    cr_assert(rlt_step(&r, &k, 0, 1).allowed);
    cr_assert(rlt_step(&r, &k, 0, 1).allowed);
    rl_rule_result res = rlt_step(&r, &k, 0, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 100);
    cr_assert(rlt_step(&r, &k, 100, 1).allowed);
}

Test(gcra, cost_above_one)
{
    rl_rule r = gcra_rule(10, 10000, 10);
    rlt_key k = { .have = 0 };
    rl_rule_result res = rlt_step(&r, &k, 0, 4);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 6);
    cr_assert(rlt_step(&r, &k, 0, 6).allowed);
    res = rlt_step(&r, &k, 0, 3);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 3000);
    /* a refused request changes nothing: one unit is back after 1 s */
    cr_assert(rlt_step(&r, &k, 1000, 1).allowed);
}

Test(gcra, cost_above_burst_is_never_admitted)
{
    rl_rule r = gcra_rule(10, 10000, 10);
    rlt_key k = { .have = 0 };
    rl_rule_result res = rlt_step(&r, &k, 0, 11);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 10);
    cr_assert_eq(res.retry_after_ms, 10000);
    cr_assert_eq(k.have, 0);
}

Test(gcra, clock_stepping_backwards_admits_nothing_extra)
{
    rl_rule r = gcra_rule(5, 60000, 5);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 5; i++)
        cr_assert(rlt_step(&r, &k, 1000000, 1).allowed);
    /* one hour back: the bucket counts as empty, not as full */
    rl_rule_result res = rlt_step(&r, &k, 1000000 - 3600000, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    cr_assert(k.repaired);
    /* ... and the key is not blocked for an hour: one interval later it admits again */
    cr_assert_eq(res.retry_after_ms, 12000);
    cr_assert(rlt_step(&r, &k, 1000000 - 3600000 + 12000, 1).allowed);
    /* a small step back only delays */
    res = rlt_step(&r, &k, 1000000 - 3600000 + 11000, 1);
    cr_assert_not(res.allowed);
}

Test(gcra, step_back_within_the_bucket_needs_no_repair)
{
    rl_rule r = gcra_rule(5, 60000, 5);
    rlt_key k = { .have = 0 };
    cr_assert(rlt_step(&r, &k, 100000, 1).allowed); /* TAT = 112000, depth 60 s */
    rl_rule_result res = rlt_step(&r, &k, 99000, 1);
    cr_assert(res.allowed);
    cr_assert_not(k.repaired);
    cr_assert_eq(res.remaining, 2); /* the second lost to the step is not given back */
    cr_assert_eq(res.reset_ms, 25000);
}

Test(gcra, state_fraction_stays_below_count)
{
    rl_rule r = gcra_rule(7, 1000, 7);
    rlt_key k = { .have = 0 };
    for (int64_t now = 0; now < 5000; now += 13) {
        rlt_step(&r, &k, now, 1);
        if (k.have) {
            cr_assert_geq(k.st.w[1], 0);
            cr_assert_lt(k.st.w[1], 7);
        }
    }
}

Test(gcra, one_per_day)
{
    rl_rule r = gcra_rule(1, 86400000, 1);
    rlt_key k = { .have = 0 };
    int64_t t0 = 1790000000000; /* an epoch-ms value: absolute times are never scaled */
    cr_assert(rlt_step(&r, &k, t0, 1).allowed);
    rl_rule_result res = rlt_step(&r, &k, t0 + 1, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 86400000 - 1);
    cr_assert(rlt_step(&r, &k, t0 + 86400000, 1).allowed);
}
