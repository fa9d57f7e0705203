/* rule_check.c -- the bounds of a rule's limit, burst, cost and period, checked once at load
 *
 * The file (config_rules.c) and the RATE_LIMIT_* variables (config_override.c) both call
 * rl_rule_check_numbers() on the finished rule, so an override can never produce a rule the
 * file would refuse. Bounds (see MANUAL.md, "Bounds"):
 *   1 <= count, burst, cost <= RL_COUNT_MAX;   1 <= period_ms <= RL_PERIOD_MAX_MS
 *   count x period_ms <= 2^50 and burst x period_ms <= 2^50
 *   cost <= burst (gcra) or cost <= count (the other algorithms)
 *   sliding_log: count <= RL_LOG_COUNT_MAX and period_ms <= RL_LOG_PERIOD_MAX_MS
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>

#include "quote.h"
#include "rule_check.h"
#include "rule_types.h"

static int check_product(int64_t a, int64_t b)
{
    int64_t p;
    return !__builtin_mul_overflow(a, b, &p) && p <= RL_PRODUCT_MAX;
}

int rl_rule_check_numbers(const rl_rule *rule, char *why, size_t n)
{
    char q[RL_QUOTE_SIZE];
    const char *lt = rule->limit_text != NULL ? rule->limit_text : "";
    int64_t cap;

    rl_quote(q, lt, strlen(lt));
    if (rule->count < 1 || rule->count > RL_COUNT_MAX) {
        snprintf(why, n, "invalid count in %s: must be 1..%lld", q, (long long)RL_COUNT_MAX);
        return RL_CHECK_LIMIT;
    }
    if (rule->period_ms < 1 || rule->period_ms > RL_PERIOD_MAX_MS) {
        snprintf(why, n, "invalid period in %s: must be 1..%lld ms", q,
                 (long long)RL_PERIOD_MAX_MS);
        return RL_CHECK_LIMIT;
    }
    if (rule->burst < 1 || rule->burst > RL_COUNT_MAX) {
        snprintf(why, n, "invalid burst %lld: must be 1..%lld", (long long)rule->burst,
                 (long long)RL_COUNT_MAX);
        return RL_CHECK_BURST;
    }
    if (rule->cost < 1 || rule->cost > RL_COUNT_MAX) {
        snprintf(why, n, "invalid cost %lld: must be 1..%lld", (long long)rule->cost,
                 (long long)RL_COUNT_MAX);
        return RL_CHECK_COST;
    }
    /* A cost above what the rule can ever admit would refuse every request it matches. */
    cap = rule->algo == RL_ALGO_GCRA ? rule->burst : rule->count;
    if (rule->cost > cap) {
        snprintf(why, n, "cost %lld is above the rule's %s %lld: no request could pass",
                 (long long)rule->cost, rule->algo == RL_ALGO_GCRA ? "burst" : "count",
                 (long long)cap);
        return RL_CHECK_COST;
    }
    if (!check_product(rule->count, rule->period_ms)) {
        snprintf(why, n,
                 "limit %s is too large for its period: count x period in ms must not exceed "
                 "2^50",
                 q);
        return RL_CHECK_LIMIT;
    }
    /* Redis keeps one sorted-set member per admitted unit (ratelimit.lua): bounded memory. */
    if (rule->algo == RL_ALGO_SLIDING_LOG && rule->count > RL_LOG_COUNT_MAX) {
        snprintf(why, n,
                 "sliding_log keeps one timestamp per request: count must be <= %d "
                 "(use \"sliding_window\" or \"gcra\" for larger limits)",
                 RL_LOG_COUNT_MAX);
        return RL_CHECK_LIMIT;
    }
    if (rule->algo == RL_ALGO_SLIDING_LOG && rule->period_ms > RL_LOG_PERIOD_MAX_MS) {
        snprintf(why, n,
                 "sliding_log keeps timestamps as 32-bit offsets: the period must be at most "
                 "%lld ms (49.7 days; use \"sliding_window\" for longer periods)",
                 RL_LOG_PERIOD_MAX_MS);
        return RL_CHECK_LIMIT;
    }
    /* gcra also forms (burst + 1) x period for an over-burst cost: at most 2^51. */
    if (!check_product(rule->burst, rule->period_ms)) {
        snprintf(why, n,
                 "burst %lld is too large for the period of %s: burst x period in ms must not "
                 "exceed 2^50",
                 (long long)rule->burst, q);
        return RL_CHECK_BURST;
    }
    return RL_CHECK_OK;
}
