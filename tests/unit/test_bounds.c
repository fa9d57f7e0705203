/* test_bounds.c -- property test: every limit the load accepts, taken at the edges of its
 * bounds, keeps the algorithms' contract without overflow
 *
 * Random rules (fixed seed, so a failure repeats) are drawn with count, burst and period at
 * 1, 2, their maximum under count (burst) x period <= 2^50, and at random in between; those
 * rl_rule_check_numbers() accepts are driven at one instant: the first N units (N = burst for
 * gcra, count for the others) are admitted, the next is refused. Under
 * make SANITIZE=address,undefined any overflow in the algorithms aborts the test.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "algo_test.h"
#include "leakcheck.h"
#include "rule_check.h"

TestSuite(bounds, .fini = rl_test_leak_check);

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* 1, 2, max - 1, max, or uniform in 1..max. */
static int64_t edge(int64_t max)
{
    switch (rnd() % 5) {
    case 0: return 1;
    case 1: return max >= 2 ? 2 : 1;
    case 2: return max >= 2 ? max - 1 : 1;
    case 3: return max;
    default: return 1 + (int64_t)(rnd() % (uint64_t)max);
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

Test(bounds, accepted_limits_at_the_edges_keep_the_contract)
{
    static const rl_algo algos[] = {RL_ALGO_GCRA, RL_ALGO_FIXED_WINDOW, RL_ALGO_SLIDING_WINDOW,
                                    RL_ALGO_SLIDING_LOG};
    static const int64_t periods[] = {
        1, 2, 999, 1000, 60000, RL_LOG_PERIOD_MAX_MS, RL_PERIOD_MAX_MS - 1, RL_PERIOD_MAX_MS};
    int tested = 0;

    for (int i = 0; i < 4000; i++) {
        rl_algo algo = algos[rnd() % 4];
        int64_t period = rnd() % 3 == 0 ? edge(RL_PERIOD_MAX_MS) : periods[rnd() % 8];
        int64_t cmax = min64(RL_COUNT_MAX, RL_PRODUCT_MAX / period);
        if (algo == RL_ALGO_SLIDING_LOG) {
            cmax = min64(cmax, RL_LOG_COUNT_MAX);
            period = min64(period, RL_LOG_PERIOD_MAX_MS);
        }
        int64_t count = edge(cmax);
        int64_t burst =
            algo == RL_ALGO_GCRA ? edge(min64(RL_COUNT_MAX, RL_PRODUCT_MAX / period)) : count;
        rl_rule r = rlt_rule(algo, count, period, burst);
        char why[512];
        r.cost = 1;
        r.limit_text = (char *)"random";
        cr_assert_eq(rl_rule_check_numbers(&r, why, sizeof why), RL_CHECK_OK,
                     "algo %d count %lld period %lld burst %lld: %s", (int)algo, (long long)count,
                     (long long)period, (long long)burst, why);
        /* Just past each bound the check refuses. */
        rl_rule over = r;
        over.count = cmax + 1;
        if (algo != RL_ALGO_SLIDING_LOG || cmax == RL_LOG_COUNT_MAX)
            cr_assert_neq(rl_rule_check_numbers(&over, why, sizeof why), RL_CHECK_OK);

        const int64_t n = algo == RL_ALGO_GCRA ? burst : count;
        /* Now at a window boundary, just before one, or a plain epoch time. */
        int64_t base = 1780000000000LL;
        int64_t now = rnd() % 3 == 0 ? base : (base / period + 1) * period - (int64_t)(rnd() % 2);
        rlt_key k = {.have = 0};
        rl_rule_result res;
        if (n <= 200) {
            for (int64_t j = 0; j < n; j++) {
                res = rlt_step(&r, &k, now, 1);
                cr_assert(res.allowed, "algo %d %lld/%lld burst %lld: unit %lld refused", (int)algo,
                          (long long)count, (long long)period, (long long)burst, (long long)j);
            }
        } else {
            res = rlt_step(&r, &k, now, n - 1);
            cr_assert(res.allowed, "algo %d %lld/%lld burst %lld: %lld units refused", (int)algo,
                      (long long)count, (long long)period, (long long)burst, (long long)(n - 1));
            res = rlt_step(&r, &k, now, 1);
            cr_assert(res.allowed, "algo %d %lld/%lld burst %lld: last unit refused", (int)algo,
                      (long long)count, (long long)period, (long long)burst);
        }
        cr_assert_eq(res.remaining, 0);
        res = rlt_step(&r, &k, now, 1);
        cr_assert(!res.allowed, "algo %d %lld/%lld burst %lld: unit %lld admitted", (int)algo,
                  (long long)count, (long long)period, (long long)burst, (long long)n + 1);
        cr_assert(res.retry_after_ms >= 1);
        /* A cost above what the rule can admit is refused, not overflowed. */
        res = rlt_step(&r, &k, now, RL_COUNT_MAX + 1);
        cr_assert(!res.allowed);
        tested++;
    }
    cr_assert_eq(tested, 4000);
}
