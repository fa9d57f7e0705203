/* test_slidelog.c -- the sliding window log, as a pure function of explicit times
 *
 * Hand-worked cases first, then brute force against definitions: a naive model that keeps
 * every admitted request (time, cost) decides each request from scratch, and the algorithm
 * must agree with it decision for decision, with clock steps back included (the model clamps
 * entries later than now to now, the documented behaviour); retry_after_ms must be the first
 * ms at which the request is admitted, remaining how many cost-1 requests fit at once, reset_ms
 * the first ms the whole quota is back, and a state must expire (ttl) only when it no longer
 * matters. Then states no decision writes (torn, unsorted, too long) and the bounds.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "algo_test.h"
#include "leakcheck.h"

static rl_rule log_rule(int64_t count, int64_t period_ms)
{
    return rlt_rule(RL_ALGO_SLIDING_LOG, count, period_ms, count);
}

/* rlt_step, plus the sliding log's own bounds: every wait and ttl within one period. */
static rl_rule_result step(const rl_rule *r, rlt_key *k, int64_t now, int64_t cost)
{
    rl_rule_result res = rlt_step(r, k, now, cost);

    cr_assert_leq(res.reset_ms, r->period_ms);
    cr_assert_leq(res.retry_after_ms, r->period_ms);
    if (k->have)
        cr_assert_leq(k->ttl, r->period_ms);
    return res;
}

static rl_rule_result probe(const rl_rule *r, const rlt_key *k, int64_t now, int64_t cost)
{
    rlt_key copy = *k;
    return step(r, &copy, now, cost);
}

static void expect(rl_rule_result res, int allowed, int64_t remaining, int64_t reset,
                   int64_t retry)
{
    cr_assert_eq(res.allowed, allowed, "allowed %d, want %d", res.allowed, allowed);
    cr_assert_eq(res.remaining, remaining, "remaining %lld, want %lld",
                 (long long)res.remaining, (long long)remaining);
    cr_assert_eq(res.reset_ms, reset, "reset %lld, want %lld", (long long)res.reset_ms,
                 (long long)reset);
    cr_assert_eq(res.retry_after_ms, retry, "retry %lld, want %lld",
                 (long long)res.retry_after_ms, (long long)retry);
}

/* ---- hand-worked cases ---------------------------------------------------------------- */

/* A leak fails the test under SANITIZE=address (leakcheck.h). */
TestSuite(slidelog, .fini = rl_test_leak_check);

Test(slidelog, state_words_per_algorithm)
{
    rl_rule r = log_rule(1, 1000);
    cr_assert_eq(rl_algo_state_words(&r), 3);
    r.count = 2;
    cr_assert_eq(rl_algo_state_words(&r), 3);
    r.count = 3;
    cr_assert_eq(rl_algo_state_words(&r), 4);
    r.count = RL_LOG_MAX;
    cr_assert_eq(rl_algo_state_words(&r), 66);
    cr_assert_eq(rl_algo_state_words(&r), RL_STATE_WORDS);
    r.algo = RL_ALGO_GCRA;
    cr_assert_eq(rl_algo_state_words(&r), 2);
    r.algo = RL_ALGO_FIXED_WINDOW;
    cr_assert_eq(rl_algo_state_words(&r), 2);
    r.algo = RL_ALGO_SLIDING_WINDOW;
    cr_assert_eq(rl_algo_state_words(&r), 3);
}

Test(slidelog, counts_exactly_over_the_last_period)
{
    rl_rule r = log_rule(3, 1000);
    rlt_key k = {.have = 0};
    expect(step(&r, &k, 10000, 1), 1, 2, 1000, 0);
    expect(step(&r, &k, 10200, 1), 1, 1, 1000, 0);
    expect(step(&r, &k, 10500, 1), 1, 0, 1000, 0);
    expect(step(&r, &k, 10600, 1), 0, 0, 400, 400); /* 10000 leaves at 11000 */
    expect(step(&r, &k, 10999, 1), 0, 0, 1, 1);
    expect(step(&r, &k, 11000, 1), 1, 0, 1000, 0); /* ... exactly then */
    expect(step(&r, &k, 11100, 1), 0, 0, 100, 100); /* 10200 next */
    cr_assert_eq(k.st.w[0], 10200, "the base is the oldest live entry");
    cr_assert_eq(k.st.w[1], 3);
}

Test(slidelog, probe_reports_the_state_as_it_is)
{
    rl_rule r = log_rule(4, 1000);
    rlt_key k = {.have = 0};
    expect(probe(&r, &k, 5000, 0), 1, 4, 0, 0); /* empty: nothing to wait for */
    step(&r, &k, 5000, 1);
    step(&r, &k, 5300, 2);
    expect(probe(&r, &k, 5400, 0), 1, 1, 900, 0); /* newest 5300 leaves at 6300 */
    step(&r, &k, 5400, 1);
    expect(probe(&r, &k, 5400, 0), 1, 0, 1000, 0); /* full, still "allowed" */
    expect(probe(&r, &k, 6000, 0), 1, 1, 400, 0);  /* 5000 left */
}

Test(slidelog, cost_above_one_and_above_count)
{
    rl_rule r = log_rule(5, 1000);
    rlt_key k = {.have = 0};
    expect(step(&r, &k, 0, 2), 1, 3, 1000, 0);
    expect(step(&r, &k, 300, 2), 1, 1, 1000, 0);
    expect(step(&r, &k, 600, 3), 0, 1, 400, 400); /* the 2nd oldest (0) must leave */
    expect(step(&r, &k, 600, 1), 1, 0, 1000, 0);
    expect(step(&r, &k, 700, 3), 0, 0, 600, 600); /* the 3rd oldest (300) must leave */
    expect(step(&r, &k, 700, 6), 0, 0, 1000, 1000); /* never: a whole period */
    expect(step(&r, &k, 700, INT64_MAX), 0, 0, 1000, 1000);
    expect(step(&r, &k, 9000, 6), 0, 5, 1000, 1000);
    expect(step(&r, &k, 9000, 5), 1, 0, 1000, 0); /* five entries at one time */
    expect(step(&r, &k, 9999, 1), 0, 0, 1, 1);
    expect(step(&r, &k, 10000, 5), 1, 0, 1000, 0); /* all five leave at once */
}

Test(slidelog, step_back_clamps_and_repairs)
{
    rl_rule r = log_rule(3, 1000);
    rlt_key k = {.have = 0};
    step(&r, &k, 100000, 1);
    step(&r, &k, 100500, 1);
    /* 300 ms back, admitted: 100500 counts as admitted at 100200 */
    expect(step(&r, &k, 100200, 1), 1, 0, 1000, 0);
    cr_assert_not(k.repaired);
    expect(step(&r, &k, 100300, 1), 0, 0, 700, 700);
    cr_assert_not(k.repaired, "nothing later than now: nothing to repair");
    step(&r, &k, 101000, 1);
    /* 51 s back, refused: the clamped log is stored anyway */
    expect(step(&r, &k, 50000, 1), 0, 0, 1000, 1000);
    cr_assert(k.repaired);
    cr_assert_eq(k.ttl, 1000);
    expect(step(&r, &k, 50999, 1), 0, 0, 1, 1);
    cr_assert_not(k.repaired);
    expect(step(&r, &k, 51000, 3), 1, 0, 1000, 0); /* blocked 1 s, not 52 */
}

Test(slidelog, state_outside_its_bounds_is_read_safely)
{
    rl_rule r = log_rule(4, 1000);
    const int64_t now = 1700000000000;
    rlt_key k = {.have = 1};

    /* n above count (the count was lowered): only the first count entries are read */
    memset(&k.st, 0, sizeof(k.st));
    k.st.w[0] = now - 10;
    k.st.w[1] = 100;
    expect(probe(&r, &k, now, 1), 0, 0, 990, 990);
    /* n negative: an empty log */
    k.st.w[1] = -5;
    expect(probe(&r, &k, now, 4), 1, 0, 1000, 0);
    /* entries out of order are sorted: 30, 10, 20 ms before now */
    k.st.w[0] = now - 30;
    k.st.w[1] = 3;
    k.st.w[2] = (int64_t)((uint64_t)20 << 32 | 0);
    k.st.w[3] = 10;
    expect(probe(&r, &k, now, 3), 0, 1, 980, 980); /* 2 must leave: the 2nd is now - 20 */
    /* base far in the future or past, at the ends of int64 */
    k.st.w[0] = INT64_MAX;
    expect(probe(&r, &k, now, 1), 1, 0, 1000, 0);
    cr_assert_eq(probe(&r, &k, now, 2).retry_after_ms, 1000); /* all clamped to now */
    k.st.w[0] = INT64_MIN;
    expect(probe(&r, &k, now, 4), 1, 0, 1000, 0);
    /* offsets with their top bit set (a word that reads negative): now - 256, now - 1 */
    k.st.w[0] = now - 4000000000;
    k.st.w[1] = 2;
    k.st.w[2] = (int64_t)0xEE6B27FFEE6B2700ull; /* 3999999744 and 3999999999 */
    expect(probe(&r, &k, now, 2), 1, 0, 1000, 0);
    expect(probe(&r, &k, now, 3), 0, 2, 744, 744); /* now - 256 leaves at now + 744 */
    expect(probe(&r, &k, now, 4), 0, 2, 999, 999); /* now - 1 at now + 999 */
}

Test(slidelog, longest_period_and_largest_count)
{
    rl_rule r = log_rule(RL_LOG_MAX, RL_LOG_PERIOD_MAX_MS);
    const int64_t t0 = 1790000000000;
    rlt_key k = {.have = 0};

    for (int i = 0; i < RL_LOG_MAX; i++)
        cr_assert(step(&r, &k, t0 + i * (RL_LOG_PERIOD_MAX_MS / RL_LOG_MAX), 1).allowed);
    rl_rule_result res = step(&r, &k, t0 + RL_LOG_PERIOD_MAX_MS - 1, 1);
    expect(res, 0, 0, 1, 1); /* the first leaves exactly a period after it came */
    expect(step(&r, &k, t0 + RL_LOG_PERIOD_MAX_MS, 1), 1, 0, RL_LOG_PERIOD_MAX_MS, 0);
    cr_assert_eq(k.st.w[0], t0 + RL_LOG_PERIOD_MAX_MS / RL_LOG_MAX);
    res = step(&r, &k, t0 + RL_LOG_PERIOD_MAX_MS, RL_LOG_MAX);
    cr_assert_eq(res.retry_after_ms, RL_LOG_PERIOD_MAX_MS, "the newest must leave too");

    /* the largest offset a state holds: period - 1 = 2^32 - 2 */
    rl_rule r2 = log_rule(2, RL_LOG_PERIOD_MAX_MS);
    rlt_key k2 = {.have = 0};
    step(&r2, &k2, t0, 1);
    expect(step(&r2, &k2, t0 + RL_LOG_PERIOD_MAX_MS - 1, 1), 1, 0, RL_LOG_PERIOD_MAX_MS, 0);
    cr_assert_eq((uint64_t)k2.st.w[2] >> 32, (uint64_t)RL_LOG_PERIOD_MAX_MS - 1);
    expect(step(&r2, &k2, t0 + RL_LOG_PERIOD_MAX_MS - 1, 1), 0, 0, 1, 1);
    expect(step(&r2, &k2, t0 + RL_LOG_PERIOD_MAX_MS - 1, 2), 0, 0, RL_LOG_PERIOD_MAX_MS,
           RL_LOG_PERIOD_MAX_MS);
    expect(step(&r2, &k2, t0 + RL_LOG_PERIOD_MAX_MS, 1), 1, 0, RL_LOG_PERIOD_MAX_MS, 0);
}

/* ---- brute force ------------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static int64_t rnd(int64_t n) /* 0 .. n-1 */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int64_t)(rng % (uint64_t)n);
}

static rl_rule random_rule(void)
{
    static const int64_t periods[] = {1, 2, 7, 100, 1000, 1500, 60000};
    int64_t count = rnd(4) == 0 ? 1 + rnd(RL_LOG_MAX) : 1 + rnd(6);
    return log_rule(count, periods[rnd(7)]);
}

/* The whole request log, and the decision it implies, recomputed from scratch. Entries later
 * than now are moved to now first: the documented answer to a clock that stepped back. */
typedef struct {
    int64_t t[2048];
    int64_t cost[2048];
    int n;
} model_log;

static int64_t model_used(model_log *m, int64_t now, int64_t period)
{
    int64_t used = 0;
    for (int i = 0; i < m->n; i++) {
        if (m->t[i] > now)
            m->t[i] = now;
        if (m->t[i] > now - period)
            used += m->cost[i];
    }
    return used;
}

/* A written state keeps only the live entries: after a step back, the ones that had left
 * do not come back. (A refusal writes nothing, so a log read then keeps them.) */
static void model_forget(model_log *m, int64_t now, int64_t period)
{
    int j = 0;
    for (int i = 0; i < m->n; i++) {
        if (m->t[i] > now - period) {
            m->t[j] = m->t[i];
            m->cost[j++] = m->cost[i];
        }
    }
    m->n = j;
}

/* The first ms after now at which `cost` fits, by walking the log's times. */
static int64_t model_wait(const model_log *m, int64_t now, int64_t period, int64_t count,
                          int64_t cost)
{
    for (int64_t w = 1; w <= period; w++) {
        int64_t used = 0;
        for (int i = 0; i < m->n; i++)
            if (m->t[i] > now + w - period)
                used += m->cost[i];
        if (used + cost <= count)
            return w;
    }
    return -1;
}

Test(slidelog, decisions_match_the_whole_log)
{
    static model_log m;
    int refused = 0, repaired = 0;

    for (int run = 0; run < 300; run++) {
        rl_rule r = random_rule();
        rlt_key k = {.have = 0};
        int64_t now = 1000000;
        m.n = 0;
        for (int i = 0; i < 400; i++) {
            int64_t move = rnd(10);
            if (move == 0)
                now += rnd(3 * r.period_ms);
            else if (move == 1 && run % 3 == 0)
                now -= rnd(2 * r.period_ms); /* a step back */
            else
                now += rnd(3);
            /* Some runs drop states at their ttl, like a store; not those that step back,
             * where a store's expiry forgets entries a later step back would see again. */
            if (k.have && run % 4 < 2 && run % 3 != 0 && now >= k.expires)
                k.have = 0;
            int64_t cost = rnd(8) == 0 ? 0 : 1 + rnd(r.count < 4 ? r.count + 1 : 4);
            int64_t used = model_used(&m, now, r.period_ms);
            int want = used + cost <= r.count;
            rl_rule_result res = step(&r, &k, now, cost);
            cr_assert_eq(res.allowed, want, "run %d step %d count %lld period %lld", run, i,
                         (long long)r.count, (long long)r.period_ms);
            cr_assert_eq(res.remaining, r.count - used - (want ? cost : 0));
            repaired += k.repaired;
            if (res.allowed || k.repaired)
                model_forget(&m, now, r.period_ms);
            if (!want) {
                refused++;
                int64_t wait = cost > r.count ? r.period_ms
                                              : model_wait(&m, now, r.period_ms, r.count, cost);
                cr_assert_eq(res.retry_after_ms, wait, "run %d step %d", run, i);
            } else if (cost > 0 && m.n < 2048) {
                m.t[m.n] = now;
                m.cost[m.n++] = cost;
            }
        }
    }
    cr_assert_geq(refused, 10000, "the runs must exercise refusals");
    cr_assert_geq(repaired, 100, "and repairs");
}

/* A random live key: a log built by admissions over the last while, maybe with a step back. */
static rlt_key random_key(const rl_rule *r, int64_t now)
{
    rlt_key k = {.have = 0};
    int64_t t = now - rnd(2 * r->period_ms);
    int n = (int)rnd(r->count + 1);
    for (int i = 0; i < n; i++) {
        t += rnd(r->period_ms / 4 + 2);
        step(r, &k, t, 1);
    }
    return k;
}

Test(slidelog, retry_after_is_the_first_admitting_ms)
{
    int checked = 0;
    for (int i = 0; i < 20000; i++) {
        rl_rule r = random_rule();
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        int64_t cost = 1 + rnd(r.count);
        rl_rule_result res = step(&r, &k, now, cost); /* keeps a repaired state */
        if (res.allowed)
            continue;
        int64_t w = 1;
        while (!probe(&r, &k, now + w, cost).allowed) {
            w++;
            cr_assert_leq(w, r.period_ms, "no admission within a period");
        }
        cr_assert_eq(res.retry_after_ms, w, "count %lld period %lld cost %lld",
                     (long long)r.count, (long long)r.period_ms, (long long)cost);
        checked++;
    }
    cr_assert_geq(checked, 3000);
}

Test(slidelog, remaining_is_how_many_fit_at_once)
{
    for (int i = 0; i < 10000; i++) {
        rl_rule r = random_rule();
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        rl_rule_result res = step(&r, &k, now, rnd(r.count + 2));
        int64_t fit = 0;
        while (step(&r, &k, now, 1).allowed) {
            fit++;
            cr_assert_leq(fit, r.count);
        }
        cr_assert_eq(res.remaining, fit, "allowed %d", res.allowed);
    }
}

Test(slidelog, reset_and_ttl_are_when_the_log_is_empty)
{
    for (int i = 0; i < 10000; i++) {
        rl_rule r = random_rule();
        int64_t now = 100000 + rnd(5000);
        rlt_key k = random_key(&r, now);
        rl_rule_result res = step(&r, &k, now, rnd(r.count + 1));
        if (!res.allowed && !k.repaired)
            continue;
        /* from the ttl on, the state means nothing: it decides like no state at all */
        int64_t gone = now + k.ttl;
        rlt_key none = {.have = 0};
        for (int64_t c = 0; c <= r.count + 1; c++) {
            rl_rule_result a = probe(&r, &k, gone, c), b = probe(&r, &none, gone, c);
            cr_assert_eq(a.allowed, b.allowed);
            cr_assert_eq(a.remaining, b.remaining);
            cr_assert_eq(a.reset_ms, b.reset_ms);
            cr_assert_eq(a.retry_after_ms, b.retry_after_ms);
        }
        /* and when allowed, the whole quota is back exactly at reset_ms */
        if (res.allowed && res.reset_ms > 0) {
            cr_assert_eq(probe(&r, &k, now + res.reset_ms, 0).remaining, r.count);
            cr_assert_lt(probe(&r, &k, now + res.reset_ms - 1, 0).remaining, r.count);
        }
    }
}
