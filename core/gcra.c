/* gcra.c -- generic cell rate algorithm: the exact form of a token bucket
 *
 * A rule admits `count` requests per `period_ms`, at most `burst` at once. The emission
 * interval T = period/count is usually not a whole number of ms (3/s gives 333.33 ms), so
 * time is kept in units of 1/count ms: T is exactly `period` units and the bucket's depth
 * B*T is exactly burst*period units. The state is the theoretical arrival time (TAT) as a
 * pair (ms, fraction in units), so absolute times never need to be scaled.
 *
 * Invariants: 0 <= w[1] < count. Everything computed is relative to now and bounded by
 * burst*period + cost*period <= 2^51 (config limits), so no product overflows, and the Redis
 * script can do the same arithmetic exactly in Lua's doubles.
 *
 * A TAT in the past means a full bucket. A TAT more than B*T ahead can only come from a
 * clock that stepped backwards: it is clamped to B*T (empty bucket) and the clamped state is
 * stored even on a refusal (RL_ALGO_REPAIR), so a step back never admits extra requests and
 * never blocks a key for longer than the bucket's depth.
 */
#include "fmacros.h"

#include "algo.h"

static int64_t gcra_ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* The state for a TAT d units after now, kept until the bucket is full again. */
static void gcra_store(int64_t now_ms, int64_t d, int64_t units, rl_state *out, int64_t *ttl_ms)
{
    int64_t ttl = gcra_ceil_div(d, units);
    out->w[0] = now_ms + d / units;
    out->w[1] = d % units;
    *ttl_ms = ttl > 0 ? ttl : 1;
}

int rl_gcra_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                   rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    const int64_t units = rule->count;          /* units per ms */
    const int64_t period = rule->period_ms;     /* T, in units */
    const int64_t depth = rule->burst * period; /* B*T, in units */
    /* Any cost above the burst is refused alike; clamping it keeps cost*T from overflowing. */
    const int64_t need = (cost > rule->burst ? rule->burst + 1 : cost) * period; /* cost*T */
    int64_t d = 0; /* TAT - now, in units, within [0, depth] */
    int repair = 0;

    if (in != NULL && in->w[0] >= now_ms) {
        int64_t ahead_ms = in->w[0] - now_ms;
        d = ahead_ms > depth / units + 1 ? depth + 1 : ahead_ms * units + in->w[1];
        if (d > depth) {
            d = depth;
            repair = RL_ALGO_REPAIR;
            gcra_store(now_ms, d, units, out, ttl_ms);
        }
    }

    res->rule = rule;
    res->limit = rule->count;
    res->window_ms = rule->period_ms;

    if (d + need > depth) {
        int64_t wait = d + need - depth;
        res->allowed = 0;
        res->remaining = (depth - d) / period;
        /* A cost above the burst can never be admitted: say "a whole period". */
        res->retry_after_ms = need > depth ? period : gcra_ceil_div(wait, units);
        res->reset_ms = res->retry_after_ms;
        return repair;
    }

    d += need;
    res->allowed = 1;
    res->remaining = (depth - d) / period;
    res->retry_after_ms = 0;
    gcra_store(now_ms, d, units, out, ttl_ms);
    res->reset_ms = gcra_ceil_div(d, units); /* 0 only for a probe (cost 0) of a full bucket */
    return 0;
}
