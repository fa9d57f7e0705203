/* algo.c -- dispatch from a rule to its algorithm (a sliding_log above RL_LOG_MAX is bucketed) */
#include "fmacros.h"

#include "algo.h"

int rl_algo_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                   rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    switch (rule->algo) {
    case RL_ALGO_FIXED_WINDOW:
        return rl_fixed_window_decide(rule, in, now_ms, cost, out, ttl_ms, res);
    case RL_ALGO_SLIDING_WINDOW:
        return rl_sliding_window_decide(rule, in, now_ms, cost, out, ttl_ms, res);
    case RL_ALGO_SLIDING_LOG:
        if (rule->count > RL_LOG_MAX)
            return rl_sliding_bucket_decide(rule, in, now_ms, cost, out, ttl_ms, res);
        return rl_sliding_log_decide(rule, in, now_ms, cost, out, ttl_ms, res);
    case RL_ALGO_GCRA:
    default: return rl_gcra_decide(rule, in, now_ms, cost, out, ttl_ms, res);
    }
}

size_t rl_algo_state_words(const rl_rule *rule)
{
    switch (rule->algo) {
    case RL_ALGO_FIXED_WINDOW: return 2;
    case RL_ALGO_SLIDING_WINDOW: return 3;
    case RL_ALGO_SLIDING_LOG:
        if (rule->count > RL_LOG_MAX)
            return rl_sliding_bucket_words();
        return 2 + (size_t)(rule->count + 1) / 2;
    case RL_ALGO_GCRA:
    default: return 2;
    }
}
