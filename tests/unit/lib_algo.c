/* lib_algo.c -- see algo_test.h */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "algo_test.h"

rl_rule rlt_rule(rl_algo algo, int64_t count, int64_t period_ms, int64_t burst)
{
    rl_rule r;
    memset(&r, 0, sizeof(r));
    strcpy(r.name, "t");
    r.algo = algo;
    r.count = count;
    r.period_ms = period_ms;
    r.burst = burst;
    return r;
}

rl_rule_result rlt_step(const rl_rule *r, rlt_key *k, int64_t now, int64_t cost)
{
    rl_rule_result res;
    rl_state out;
    int64_t ttl = -7;
    size_t words = rl_algo_state_words(r);

    memset(&res, 0xAB, sizeof(res));
    memset(&out, 0xCD, sizeof(out));
    int flags = rl_algo_decide(r, k->have ? &k->st : NULL, now, cost, &out, &ttl, &res);
    cr_assert(flags == 0 || flags == RL_ALGO_REPAIR);
    cr_assert_eq(res.rule, r);
    cr_assert_eq(res.limit, r->count);
    cr_assert_eq(res.window_ms, r->period_ms);
    cr_assert(res.allowed == 0 || res.allowed == 1);
    cr_assert_geq(res.remaining, 0);
    cr_assert_leq(res.remaining, r->count > r->burst ? r->count : r->burst);
    k->repaired = flags & RL_ALGO_REPAIR;
    if (res.allowed) {
        cr_assert_not(k->repaired, "repair is reported on refusals only");
        cr_assert_eq(res.retry_after_ms, 0);
        if (cost > 0)
            cr_assert_eq(ttl, res.reset_ms);
    } else {
        cr_assert_geq(res.retry_after_ms, 1);
        cr_assert_eq(res.reset_ms, res.retry_after_ms);
    }
    if (res.allowed || k->repaired) {
        cr_assert_geq(ttl, 1);
        /* the state is the rule's words and no more: a store keeps only those */
        for (size_t w = words; w < RL_STATE_WORDS; w++)
            cr_assert_eq((uint64_t)out.w[w], 0xCDCDCDCDCDCDCDCDull, "word %zu written", w);
        k->st = out;
        k->have = 1;
        k->ttl = ttl;
        k->expires = now + ttl;
    } else {
        cr_assert_eq(ttl, -7, "a plain refusal writes nothing");
    }
    return res;
}

rl_rule_result rlt_probe(const rl_rule *r, const rlt_key *k, int64_t now, int64_t cost)
{
    rlt_key copy = *k;
    return rlt_step(r, &copy, now, cost);
}
