/* test_window.c -- fixed window and sliding window counter, as pure functions of explicit times
 *
 * Besides hand-worked cases, three brute-force checks tie the outputs to their definitions:
 * retry_after_ms is the first ms at which the request is admitted, remaining is how many
 * cost-1 requests are admitted at once, and a state expires (ttl) only when it no longer
 * matters. A reference model that keeps the whole request log checks the decisions.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "algo_test.h"
#include "leakcheck.h"

typedef int (*decide_fn)(const rl_rule *, const rl_state *, int64_t, int64_t, rl_state *,
                         int64_t *, rl_rule_result *);

static rl_rule win_rule(rl_algo algo, int64_t count, int64_t period_ms)
{
    return rlt_rule(algo, count, period_ms, count);
}

static uint64_t rng_state = 88172645463325252ULL;
static int64_t rnd(int64_t n) /* [0, n) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (int64_t)(rng_state % (uint64_t)n);
}

/* ---- fixed window ------------------------------------------------------------------------ */

/* A leak fails the test under SANITIZE=address (leakcheck.h). */
TestSuite(window, .fini = rl_test_leak_check);

Test(window, fixed_counts_per_aligned_window)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 5, 60000);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 5; i++) {
        rl_rule_result res = rlt_step(&r, &k, 1000, 1);
        cr_assert(res.allowed, "request %d", i);
        cr_assert_eq(res.remaining, 4 - i);
        cr_assert_eq(res.reset_ms, 59000); /* the window is [0, 60000) */
    }
    cr_assert_eq(k.st.w[0], 0);
    cr_assert_eq(k.st.w[1], 5);
    rl_rule_result res = rlt_step(&r, &k, 1000, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(res.retry_after_ms, 59000);
    cr_assert_not(rlt_step(&r, &k, 59999, 1).allowed);
    cr_assert_eq(rlt_probe(&r, &k, 59999, 1).retry_after_ms, 1);
    res = rlt_step(&r, &k, 60000, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 4);
    cr_assert_eq(res.reset_ms, 60000);
}

Test(window, fixed_lets_twice_the_count_through_a_boundary)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 10, 1000);
    rlt_key k = { .have = 0 };
    int admitted = 0;
    for (int i = 0; i < 15; i++)
        admitted += rlt_step(&r, &k, 999, 1).allowed;
    for (int i = 0; i < 15; i++)
        admitted += rlt_step(&r, &k, 1000, 1).allowed;
    cr_assert_eq(admitted, 20, "20 requests within 2 ms: the known weakness");
}

Test(window, fixed_windows_are_aligned_on_epoch_ms)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 3, 3600000);
    rlt_key k = { .have = 0 };
    int64_t t = 1790000000123; /* 1790000000123 = 497222 h + 800123 ms */
    rl_rule_result res = rlt_step(&r, &k, t, 1);
    cr_assert(res.allowed);
    cr_assert_eq(k.st.w[0], 1790000000123 - 800123);
    cr_assert_eq(res.reset_ms, 3600000 - 800123);
    cr_assert_eq(k.ttl, 3600000 - 800123);
}

Test(window, fixed_cost_above_one_and_above_count)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 10, 10000);
    rlt_key k = { .have = 0 };
    rl_rule_result res = rlt_step(&r, &k, 2500, 4);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 6);
    res = rlt_step(&r, &k, 2500, 7);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 6);
    cr_assert_eq(res.retry_after_ms, 7500);
    cr_assert(rlt_step(&r, &k, 2500, 6).allowed);
    /* never admissible: a whole period, and nothing stored */
    rlt_key fresh = { .have = 0 };
    res = rlt_step(&r, &fresh, 2500, 11);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 10);
    cr_assert_eq(res.retry_after_ms, 10000);
    cr_assert_eq(fresh.have, 0);
    res = rlt_step(&r, &fresh, 2500, INT64_MAX);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 10000);
}

Test(window, fixed_step_back_into_the_previous_window_is_clamped)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 3, 1000);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 3; i++)
        cr_assert(rlt_step(&r, &k, 5010, 1).allowed);
    /* 20 ms back, into [4000, 5000): still counted in [5000, 6000), nothing rewritten */
    rl_rule_result res = rlt_step(&r, &k, 4990, 1);
    cr_assert_not(res.allowed);
    cr_assert_not(k.repaired);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(res.retry_after_ms, 1010); /* until 6000, measured from the real now */
    cr_assert_not(rlt_step(&r, &k, 5999, 1).allowed);
    cr_assert(rlt_step(&r, &k, 6000, 1).allowed);

    /* admissions during a step back count in the stored window */
    rlt_key k2 = { .have = 0 };
    cr_assert(rlt_step(&r, &k2, 5010, 1).allowed);
    res = rlt_step(&r, &k2, 4990, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 1);
    cr_assert_eq(res.reset_ms, 1010);
    cr_assert_eq(k2.st.w[0], 5000);
    cr_assert_eq(k2.st.w[1], 2);
    cr_assert(rlt_step(&r, &k2, 4991, 1).allowed);
    cr_assert_not(rlt_step(&r, &k2, 5500, 1).allowed);
}

Test(window, fixed_large_step_back_is_repaired_not_blocking)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 3, 1000);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 3; i++)
        cr_assert(rlt_step(&r, &k, 3600500, 1).allowed);
    /* one hour back: the used count moves to the window after now's, and is stored */
    rl_rule_result res = rlt_step(&r, &k, 500, 1);
    cr_assert_not(res.allowed);
    cr_assert(k.repaired);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(k.st.w[0], 1000);
    cr_assert_eq(k.st.w[1], 3);
    cr_assert_eq(res.retry_after_ms, 1500);
    cr_assert_eq(k.ttl, 1500);
    cr_assert_not(rlt_step(&r, &k, 1999, 1).allowed);
    cr_assert_not(k.repaired);
    cr_assert(rlt_step(&r, &k, 2000, 1).allowed);
}

Test(window, fixed_count_lowered_under_a_stored_state)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 2, 1000);
    rlt_key k = { .have = 1, .st = { { 0, 50 } } };
    rl_rule_result res = rlt_step(&r, &k, 10, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    cr_assert_eq(res.retry_after_ms, 990);
}

Test(window, fixed_negative_times_floor_to_their_window)
{
    rl_rule r = win_rule(RL_ALGO_FIXED_WINDOW, 1, 1000);
    rlt_key k = { .have = 0 };
    rl_rule_result res = rlt_step(&r, &k, -1, 1);
    cr_assert(res.allowed);
    cr_assert_eq(k.st.w[0], -1000);
    cr_assert_eq(res.reset_ms, 1);
    cr_assert(rlt_step(&r, &k, 0, 1).allowed);
}

/* ---- sliding window counter -------------------------------------------------------------- */

Test(window, sliding_weights_the_previous_window_exactly)
{
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 10, 1000);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 10; i++)
        cr_assert(rlt_step(&r, &k, 500, 1).allowed);
    /* at 1300 the previous window weighs 700/1000: estimate 7, 3 left */
    rl_rule_result res = rlt_probe(&r, &k, 1300, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 2);
    for (int i = 0; i < 3; i++)
        cr_assert(rlt_step(&r, &k, 1300, 1).allowed, "request %d", i);
    res = rlt_step(&r, &k, 1300, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    /* 10*(700-w)/1000 + 3 + 1 <= 10  <=>  w >= 100 */
    cr_assert_eq(res.retry_after_ms, 100);
    cr_assert_not(rlt_step(&r, &k, 1399, 1).allowed);
    res = rlt_step(&r, &k, 1400, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 0);
    /* the estimate is back to 0 when the window [1000, 2000) has left the last second */
    cr_assert_eq(res.reset_ms, 1600);
    cr_assert_eq(k.ttl, 1600);
}

Test(window, sliding_weighting_is_exact_with_fractions)
{
    /* 3 per 7 ms: weights are sevenths; the estimate must never be rounded in our favour */
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 3, 7);
    rlt_key k = { .have = 1, .st = { { 7, 3, 0 } } };
    /* e = 2: 3*5/7 = 2.14 -> 0.86 left: refused, remaining 0 */
    rl_rule_result res = rlt_probe(&r, &k, 9, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    /* 3*(7-e) <= 14 <=> e >= 7/3 -> e = 3 */
    cr_assert_eq(res.retry_after_ms, 1);
    res = rlt_probe(&r, &k, 10, 1);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 0); /* 3*4/7 + 1 = 2.71 */
    /* e = 5: 6/7 used: 2 more fit, 3 do not */
    cr_assert_eq(rlt_probe(&r, &k, 12, 1).remaining, 1);
    cr_assert(rlt_probe(&r, &k, 12, 2).allowed);
    res = rlt_probe(&r, &k, 12, 3);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 2); /* next window: prev 0, 3 fit */
}

Test(window, sliding_smooths_the_boundary)
{
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 10, 1000);
    rlt_key k = { .have = 0 };
    int admitted = 0;
    for (int i = 0; i < 15; i++)
        admitted += rlt_step(&r, &k, 999, 1).allowed;
    for (int i = 0; i < 15; i++)
        admitted += rlt_step(&r, &k, 1000, 1).allowed;
    cr_assert_eq(admitted, 10, "no second batch right after the boundary");
    rl_rule_result res = rlt_step(&r, &k, 1000, 1);
    cr_assert_eq(res.retry_after_ms, 100);
    /* over a long run at one request per ms, at most count per any window of P ms */
    rl_rule r2 = win_rule(RL_ALGO_SLIDING_WINDOW, 10, 1000);
    rlt_key k2 = { .have = 0 };
    int64_t times[4000];
    int n = 0;
    for (int64_t now = 0; now < 20000; now++)
        if (rlt_step(&r2, &k2, now, 1).allowed)
            times[n++] = now;
    for (int i = 20; i < n; i++)
        cr_assert_geq(times[i] - times[i - 20], 1000, "at most 2*count per period (%d)", i);
    /* under a saturating load the estimate is conservative: about 9 per window, not 10 */
    cr_assert_geq(n, 9 * 20, "n = %d", n);
    cr_assert_leq(n, 10 * 20, "n = %d", n);
}

Test(window, sliding_cost_above_one_and_above_count)
{
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 10, 10000);
    rlt_key k = { .have = 0 };
    rl_rule_result res = rlt_step(&r, &k, 2500, 4);
    cr_assert(res.allowed);
    cr_assert_eq(res.remaining, 6);
    res = rlt_step(&r, &k, 2500, 7);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 6);
    /* the next window: 4*(10000-e2)/10000 + 7 <= 10 <=> e2 >= 2500 */
    cr_assert_eq(res.retry_after_ms, 7500 + 2500);
    cr_assert_not(rlt_probe(&r, &k, 12499, 7).allowed);
    cr_assert(rlt_probe(&r, &k, 12500, 7).allowed);
    /* cost = count only fits into an empty estimate: the window after the next */
    res = rlt_step(&r, &k, 2500, 10);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 17500);
    rlt_key fresh = { .have = 0 };
    res = rlt_step(&r, &fresh, 2500, 11);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 10);
    cr_assert_eq(res.retry_after_ms, 10000);
    cr_assert_eq(fresh.have, 0);
    res = rlt_step(&r, &fresh, 2500, INT64_MAX);
    cr_assert_not(res.allowed);
}

Test(window, sliding_step_back_is_clamped_then_repaired)
{
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 4, 1000);
    rlt_key k = { .have = 0 };
    for (int i = 0; i < 4; i++)
        cr_assert(rlt_step(&r, &k, 5010, 1).allowed);
    /* into the window before: decided at 5000 (prev 0, cur 4), delays from the real now */
    rl_rule_result res = rlt_step(&r, &k, 4990, 1);
    cr_assert_not(res.allowed);
    cr_assert_not(k.repaired);
    cr_assert_eq(res.remaining, 0);
    /* from 5000: next window, 4*(1000-e2)/1000 + 1 <= 4 <=> e2 >= 250 -> 6250 */
    cr_assert_eq(res.retry_after_ms, 6250 - 4990);
    cr_assert_not(rlt_step(&r, &k, 6249, 1).allowed);
    cr_assert(rlt_probe(&r, &k, 6250, 1).allowed);

    /* an hour back: pulled to the window after now's, stored on the refusal */
    res = rlt_step(&r, &k, 5010 - 3600000, 1);
    cr_assert_not(res.allowed);
    cr_assert(k.repaired);
    cr_assert_eq(k.st.w[0], 5000 - 3600000 + 1000);
    cr_assert_eq(k.st.w[2], 4);
    cr_assert_eq(res.retry_after_ms, 990 + 1250);
    cr_assert_eq(k.ttl, 990 + 2000);
    cr_assert(rlt_probe(&r, &k, 5010 - 3600000 + 990 + 1250, 1).allowed);
}

Test(window, sliding_state_outside_its_bounds_is_read_clamped)
{
    rl_rule r = win_rule(RL_ALGO_SLIDING_WINDOW, 2, 1000);
    /* counts from a config with a larger count, and a window start off the new period */
    rlt_key k = { .have = 1, .st = { { 1500, 1000000000, 7 } } };
    rl_rule_result res = rlt_step(&r, &k, 1600, 1);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.remaining, 0);
    /* read as window 1000 with prev 2, cur 2 */
    cr_assert_eq(res.retry_after_ms, 400 + 500);
}

/* ---- properties over many states --------------------------------------------------------- */

static rl_rule random_rule(rl_algo algo)
{
    static const int64_t periods[] = { 1, 2, 3, 7, 10, 60, 97, 1000 };
    int64_t count = 1 + rnd(12);
    return win_rule(algo, count, periods[rnd(8)]);
}

/* A state some history could have left, sometimes ahead of now (a clock stepped back). */
static rlt_key random_key(const rl_rule *r, int64_t now)
{
    rlt_key k = { .have = 1 };
    int64_t p = r->period_ms;
    int64_t start = (now / p) * p + p * (rnd(7) - 4);
    k.st.w[0] = start;
    if (r->algo == RL_ALGO_FIXED_WINDOW) {
        k.st.w[1] = rnd(r->count + 1);
    } else {
        k.st.w[1] = rnd(r->count + 1);
        k.st.w[2] = rnd(r->count + 1 - k.st.w[1] / 2);
    }
    return k;
}

Test(window, retry_after_is_the_first_admitting_ms)
{
    int checked = 0;
    for (int i = 0; i < 20000; i++) {
        rl_rule r = random_rule(i % 2 ? RL_ALGO_FIXED_WINDOW : RL_ALGO_SLIDING_WINDOW);
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        int64_t cost = 1 + rnd(r.count);
        rl_rule_result res = rlt_step(&r, &k, now, cost); /* keeps a repaired state */
        if (res.allowed)
            continue;
        int64_t w = 1;
        while (!rlt_probe(&r, &k, now + w, cost).allowed) {
            w++;
            cr_assert_leq(w, 3 * r.period_ms, "algo %d: no admission within 3 periods", r.algo);
        }
        cr_assert_eq(res.retry_after_ms, w,
                     "algo %d count %ld period %ld state {%ld,%ld,%ld} now %ld cost %ld",
                     r.algo, (long)r.count, (long)r.period_ms, (long)k.st.w[0],
                     (long)k.st.w[1], (long)k.st.w[2], (long)now, (long)cost);
        checked++;
    }
    cr_assert_geq(checked, 5000);
}

Test(window, remaining_is_how_many_fit_at_once)
{
    for (int i = 0; i < 20000; i++) {
        rl_rule r = random_rule(i % 2 ? RL_ALGO_FIXED_WINDOW : RL_ALGO_SLIDING_WINDOW);
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        rl_rule_result res = rlt_step(&r, &k, now, 1 + rnd(r.count + 1));
        int64_t fit = 0;
        while (rlt_step(&r, &k, now, 1).allowed) {
            fit++;
            cr_assert_leq(fit, r.count);
        }
        cr_assert_eq(res.remaining, fit, "algo %d allowed %d", r.algo, res.allowed);
    }
}

/* The request log, and the decisions it implies, recomputed from scratch each time. */
typedef struct {
    int64_t t[4096];
    int64_t cost[4096];
    int n;
} model_log;

static int64_t model_sum(const model_log *m, int64_t from, int64_t to) /* [from, to) */
{
    int64_t s = 0;
    for (int i = 0; i < m->n; i++)
        if (m->t[i] >= from && m->t[i] < to)
            s += m->cost[i];
    return s;
}

static int model_admits(const rl_rule *r, const model_log *m, int64_t now, int64_t cost)
{
    int64_t p = r->period_ms;
    int64_t start = now - now % p;
    int64_t cur = model_sum(m, start, start + p);
    if (r->algo == RL_ALGO_FIXED_WINDOW)
        return cur + cost <= r->count;
    int64_t prev = model_sum(m, start - p, start);
    /* prev * (p - e) / p + cur + cost <= count, multiplied out */
    return prev * (p - (now - start)) + (cur + cost) * p <= r->count * p;
}

Test(window, decisions_match_a_model_over_the_whole_log)
{
    static model_log m;
    for (int run = 0; run < 200; run++) {
        rl_rule r = random_rule(run % 2 ? RL_ALGO_FIXED_WINDOW : RL_ALGO_SLIDING_WINDOW);
        rlt_key k = { .have = 0 };
        m.n = 0;
        int64_t now = 1000000;
        for (int i = 0; i < 300; i++) {
            now += rnd(8) == 0 ? rnd(4 * r.period_ms) : rnd(3);
            if (k.have && run % 4 < 2 && now >= k.expires)
                k.have = 0; /* half the runs drop states at their ttl, like a store */
            int64_t cost = 1 + rnd(r.count + 1);
            int want = model_admits(&r, &m, now, cost);
            rl_rule_result res = rlt_step(&r, &k, now, cost);
            cr_assert_eq(res.allowed, want, "run %d step %d algo %d", run, i, r.algo);
            if (res.allowed) {
                m.t[m.n] = now;
                m.cost[m.n++] = cost;
            }
        }
    }
}

Test(window, a_state_expires_only_when_it_no_longer_matters)
{
    for (int i = 0; i < 20000; i++) {
        rl_rule r = random_rule(i % 2 ? RL_ALGO_FIXED_WINDOW : RL_ALGO_SLIDING_WINDOW);
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        rl_rule_result res = rlt_step(&r, &k, now, 1 + rnd(r.count));
        if (!res.allowed && !k.repaired)
            continue;
        int64_t gone = now + k.ttl;
        rlt_key none = { .have = 0 };
        for (int64_t c = 1; c <= r.count + 1; c++) {
            rl_rule_result a = rlt_probe(&r, &k, gone, c);
            rl_rule_result b = rlt_probe(&r, &none, gone, c);
            cr_assert_eq(a.allowed, b.allowed);
            cr_assert_eq(a.remaining, b.remaining);
            cr_assert_eq(a.reset_ms, b.reset_ms);
            cr_assert_eq(a.retry_after_ms, b.retry_after_ms);
        }
        /* and when allowed, the full quota is back exactly at reset_ms (a cost above the
         * count is never admitted, so the probe reports the remaining without consuming) */
        if (res.allowed) {
            cr_assert_eq(rlt_probe(&r, &k, now + res.reset_ms, r.count + 1).remaining, r.count);
            cr_assert_lt(rlt_probe(&r, &k, now + res.reset_ms - 1, r.count + 1).remaining, r.count);
        }
    }
}

Test(window, extreme_configs_stay_exact)
{
    /* count * period at the 2^50 bound, from both ends; run under UBSan to catch overflow */
    const int64_t lim = (int64_t)1 << 50;
    const rl_rule rules[] = {
        win_rule(RL_ALGO_FIXED_WINDOW, RL_COUNT_MAX, lim / RL_COUNT_MAX),
        win_rule(RL_ALGO_SLIDING_WINDOW, RL_COUNT_MAX, lim / RL_COUNT_MAX),
        win_rule(RL_ALGO_FIXED_WINDOW, lim / RL_PERIOD_MAX_MS, RL_PERIOD_MAX_MS),
        win_rule(RL_ALGO_SLIDING_WINDOW, lim / RL_PERIOD_MAX_MS, RL_PERIOD_MAX_MS),
        win_rule(RL_ALGO_SLIDING_WINDOW, 1, RL_PERIOD_MAX_MS),
        win_rule(RL_ALGO_SLIDING_WINDOW, RL_COUNT_MAX, 1),
    };
    const int64_t t0 = 1790000000000;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const rl_rule *r = &rules[i];
        int64_t c = r->count, p = r->period_ms;
        cr_assert_leq(c * p, lim);
        const int64_t costs[] = { 1, c / 2 + 1, c, c + 1, INT64_MAX };
        const int64_t counts[] = { 0, 1, c / 3, c - 1, c, INT64_MAX };
        for (int s = 0; s < 6 * 6 * 5; s++) {
            int64_t now = t0 + rnd(p);
            int64_t start = (now / p + (s % 5) - 2) * p;
            rlt_key k = { .have = 1, .st = { { start, counts[s / 6 % 6], counts[s % 6] } } };
            if (r->algo == RL_ALGO_FIXED_WINDOW)
                k.st.w[1] = counts[s % 6];
            for (int j = 0; j < 5; j++) {
                rlt_key kk = k;
                rl_rule_result res = rlt_step(r, &kk, now, costs[j]);
                cr_assert_leq(res.retry_after_ms, 3 * p);
                if (res.allowed || costs[j] > c)
                    continue;
                cr_assert(rlt_probe(r, &kk, now + res.retry_after_ms, costs[j]).allowed,
                          "rule %zu state %d cost %d", i, s, j);
                cr_assert_not(rlt_probe(r, &kk, now + res.retry_after_ms - 1, costs[j]).allowed,
                              "rule %zu state %d cost %d", i, s, j);
            }
        }
    }
}
