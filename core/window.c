/* window.c -- fixed-window and sliding-window-counter algorithms
 *
 * Both count admitted units in windows [k*P, (k+1)*P) aligned on absolute epoch milliseconds
 * (P = period_ms), so every host and process that shares a store agrees on the boundaries.
 * `burst` is not used: the limit is `count` units per window.
 *
 * Fixed window: w[0] = start of the window the count belongs to, w[1] = units used in it.
 * Admits while used + cost <= count. At a boundary the count restarts, so up to 2*count can
 * pass within a span of P ms around it: the known weakness the sliding window fixes.
 *
 * Sliding window counter: w[0] = start C of the current window, w[1] = units used in the
 * previous window [C-P, C), w[2] = units used in the current one. With e = now - C, the
 * estimate of units used over the last P ms is prev*(P-e)/P + cur; a request is admitted when
 * estimate + cost <= count. Everything is kept scaled by P, so it is exact in integers:
 *
 *     prev*(P-e) + cur*P + cost*P <= count*P
 *
 * Invariants and bounds: 0 <= used, prev, cur <= count (stored values outside that range, as
 * left by a config that lowered count, are read clamped into it), 0 <= e < P, and a cost
 * above count is refused before any product with it is formed. Hence every product is at
 * most count*P <= 2^50 and every sum at most 3*2^50 < 2^53: exact in int64 and in the doubles
 * of Redis' Lua. Times must satisfy |now_ms| + 3*P < 2^63 (any epoch ms does).
 *
 * A stored window start that is not a multiple of P (the period changed) is read as the
 * window that contains it. A clock that steps backwards leaves a stored window ahead of now:
 *   - one window ahead (a step back across one boundary, or small skew between hosts): the
 *     request is decided as if now were that window's start (clamped); nothing is rewritten,
 *     so no extra unit is admitted, and the delays reported are measured from the real now;
 *   - more than one window ahead: impossible for any clock that moved less than P backwards,
 *     so the window is pulled back to the one after now's, counts kept, and the state is
 *     stored even on a refusal (RL_ALGO_REPAIR). A step back thus admits nothing extra and
 *     blocks a key for at most 2*P (fixed) or 3*P (sliding), never for as long as the step.
 */
#include "fmacros.h"

#include "algo.h"

/* The start of the window that holds t: the largest multiple of period <= t. */
static int64_t window_floor(int64_t t, int64_t period)
{
    int64_t q = t / period;
    if (t % period != 0 && t < 0)
        q--;
    return q * period;
}

static int64_t window_clamp_count(int64_t v, int64_t count)
{
    return v < 0 ? 0 : v > count ? count : v;
}

static int64_t window_ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* The stored window start, aligned and pulled back to at most the window after now's. */
static int64_t window_stored_start(int64_t stored, int64_t cur, int64_t period, int *repair)
{
    int64_t s = window_floor(stored, period);
    if (s > cur + period) {
        *repair = RL_ALGO_REPAIR;
        s = cur + period;
    }
    return s;
}

static void window_result_head(const rl_rule *rule, rl_rule_result *res)
{
    res->rule = rule;
    res->limit = rule->count;
    res->window_ms = rule->period_ms;
}

int rl_fixed_window_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                           rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    const int64_t count = rule->count;
    const int64_t period = rule->period_ms;
    const int64_t cur = window_floor(now_ms, period);
    int64_t start = cur;
    int64_t used = 0;
    int repair = 0;

    if (in != NULL) {
        int64_t s = window_stored_start(in->w[0], cur, period, &repair);
        if (s >= cur) { /* now's window, or the next one after a step back */
            start = s;
            used = window_clamp_count(in->w[1], count);
        }
    }

    const int64_t left = start + period - now_ms; /* until the window ends, >= 1 */
    window_result_head(rule, res);

    if (cost > count || used + cost > count) {
        res->allowed = 0;
        res->remaining = count - used;
        /* A cost above the count can never be admitted: say "a whole period". */
        res->retry_after_ms = cost > count ? period : left;
        res->reset_ms = res->retry_after_ms;
        if (repair) {
            out->w[0] = start;
            out->w[1] = used;
            *ttl_ms = left;
        }
        return repair;
    }

    used += cost;
    out->w[0] = start;
    out->w[1] = used;
    *ttl_ms = left;
    res->allowed = 1;
    res->remaining = count - used;
    res->retry_after_ms = 0;
    res->reset_ms = left;
    return 0;
}

/* The smallest wait w >= 1 (ms, from the time the algorithm decided at, e ms into the
 * window) after which `cost` units fit, when they do not fit now and cost <= count. The
 * estimate never grows while nothing is admitted, so the first time it fits is the answer:
 *   - in this window, prev's weight drops by 1/P per ms: prev*w >= need;
 *   - in the next one, cur becomes prev: cur*e2 >= (cur + cost - count)*P;
 *   - the window after that starts empty. */
static int64_t sliding_wait(int64_t prev, int64_t cur, int64_t e, int64_t cost, int64_t count,
                            int64_t period)
{
    int64_t need = prev * (period - e) + (cur + cost - count) * period; /* > 0 */
    if (prev > 0) {
        int64_t w = window_ceil_div(need, prev);
        if (w <= period - 1 - e)
            return w;
    }
    int64_t need2 = (cur + cost - count) * period;
    if (need2 <= 0)
        return period - e;
    int64_t e2 = window_ceil_div(need2, cur); /* cur > 0: cur + cost > count >= cost */
    if (e2 <= period - 1)
        return period - e + e2;
    return 2 * period - e;
}

int rl_sliding_window_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                             rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    const int64_t count = rule->count;
    const int64_t period = rule->period_ms;
    const int64_t cap = count * period;
    const int64_t cur_start = window_floor(now_ms, period);
    int64_t start = cur_start;
    int64_t prev = 0;
    int64_t cur = 0;
    int repair = 0;

    if (in != NULL) {
        int64_t s = window_stored_start(in->w[0], cur_start, period, &repair);
        int64_t p = window_clamp_count(in->w[1], count);
        int64_t c = window_clamp_count(in->w[2], count);
        if (s >= cur_start) { /* now's window, or the next one after a step back */
            start = s;
            prev = p;
            cur = c;
        } else if (s == cur_start - period) { /* the window before: it becomes prev */
            prev = c;
        }
    }

    /* On a step back into the window before the stored one, decide at its start. */
    const int64_t at = now_ms > start ? now_ms : start;
    const int64_t e = at - start;                      /* 0 <= e < P */
    const int64_t keep = start + 2 * period - now_ms;  /* until the state stops mattering */
    int64_t used = prev * (period - e) + cur * period; /* the estimate, scaled by P */
    window_result_head(rule, res);

    if (cost > count || used + cost * period > cap) {
        res->allowed = 0;
        res->remaining = used < cap ? (cap - used) / period : 0;
        res->retry_after_ms =
            cost > count ? period : (at - now_ms) + sliding_wait(prev, cur, e, cost, count, period);
        res->reset_ms = res->retry_after_ms;
        if (repair) {
            out->w[0] = start;
            out->w[1] = prev;
            out->w[2] = cur;
            *ttl_ms = keep;
        }
        return repair;
    }

    cur += cost;
    used += cost * period;
    out->w[0] = start;
    out->w[1] = prev;
    out->w[2] = cur;
    *ttl_ms = keep;
    res->allowed = 1;
    res->remaining = (cap - used) / period;
    res->retry_after_ms = 0;
    /* The estimate is back to 0 (remaining == count) only when both counts have left the
     * last P ms: at the end of the next window when cur >= 1 (always, unless this is a probe
     * at cost 0), else at the end of this one when prev >= 1. */
    res->reset_ms = cur > 0 ? keep : prev > 0 ? start + period - now_ms : 0;
    return 0;
}
