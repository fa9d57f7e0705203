/* slidelog.c -- sliding window log: the exact count of units admitted over the last period
 *
 * A rule admits `count` units per `period_ms` (P), counted exactly over the P ms before now:
 * a request costing c is admitted when u + c <= count, where u is the number of units
 * admitted at times t > now - P. A unit admitted at t stops counting at t + P exactly. This is
 * what a sorted-set limiter (ZADD, ZREMRANGEBYSCORE, ZCARD) does, in fixed memory: refusals
 * are not logged, so at most count entries are ever live. `burst` is not used. This exact log
 * serves count <= RL_LOG_MAX; above it algo.c hands the rule to slidebucket.c.
 *
 * State: one entry per admitted unit (a request of cost c adds c entries with its time), in
 * 2 + ceil(count/2) words (rl_algo_state_words):
 *   w[0]      base time B (ms): the oldest entry's time when written, else the time written
 *   w[1]      n, the number of entries, 0 <= n <= count
 *   w[2 + k]  entries 2k (low 32 bits) and 2k+1 (high 32 bits), as unsigned offsets t - B
 * Entries are written oldest first and only while live (t > now - P, t <= now), so every
 * offset is < P <= RL_LOG_PERIOD_MAX_MS = 2^32 - 1; with count <= RL_LOG_MAX = 128 a state
 * is at most 66 words. Words past the n-th entry are written as 0: the stored bytes depend
 * on the log alone.
 *
 * Reading accepts any bit pattern (a torn shm state, one left by another algorithm or a larger
 * count): n is clamped to [0, count] and entries out of order are sorted on the way in (a
 * plain pass over a valid state), so no stored state can make more than count units count.
 *
 * Results: remaining = count - u, after the charge when admitted. reset_ms = until the log is
 * empty, newest + P - now (the whole quota back; 0 for a probe of an empty log). Refused, cost
 * <= count: with the live entries t_0 <= ... <= t_(u-1), the k = u + cost - count oldest must
 * leave, the last of them at t_(k-1) + P, so retry_after_ms = t_(k-1) + P - now, exact to the
 * ms; a cost above count is never admitted: retry_after_ms = P. A refusal's reset_ms is its
 * retry_after_ms (ratelimit.h). ttl = newest + P - now, in [1, P].
 *
 * A clock that steps backwards leaves entries later than now, which no admission at or
 * before now can have made. They count as admitted now: clamped to now, and the clamped log
 * is stored even on a refusal (RL_ALGO_REPAIR). So a step back admits nothing extra (each
 * clamped entry still counts for P from now) and blocks a key for at most P, never for as
 * long as the clock jumped. Entries that left the window are dropped when the log is written.
 *
 * Arithmetic: absolute times are only compared and added to offsets < 2^32 or to P, so the
 * Lua twin (ratelimit.lua) computes the same values exactly in doubles (epoch ms ~2^41).
 * Times must satisfy |now_ms| + 2^33 < 2^63 (any epoch ms does).
 */
#include "fmacros.h"

#include <string.h>

#include "algo.h"

/* The log as read: the live entries' times, oldest first. */
typedef struct slog {
    int64_t t[RL_LOG_MAX];
    int64_t n;
} slog;

/* The config keeps count <= RL_LOG_MAX; a state has room for no more entries than that. */
static int64_t slog_count(const rl_rule *rule)
{
    return rule->count < RL_LOG_MAX ? rule->count : RL_LOG_MAX;
}

static uint32_t slog_offset(const rl_state *st, int64_t i)
{
    uint64_t w = (uint64_t)st->w[2 + i / 2];
    return (uint32_t)(i % 2 == 0 ? w : w >> 32);
}

/* A word of two offsets. memcpy: converting a uint64 >= 2^63 to int64 is not portable. */
static void slog_set_word(int64_t *w, uint64_t lo, uint64_t hi)
{
    uint64_t v = lo | hi << 32;
    memcpy(w, &v, sizeof v);
}

/* Reads the live entries of `in` (NULL: none) into lg; RL_ALGO_REPAIR when some were later
 * than now and were clamped to it. */
static int slog_load(const rl_state *in, int64_t now_ms, int64_t period, int64_t count, slog *lg)
{
    int repair = 0;

    lg->n = 0;
    if (in == NULL)
        return 0;
    const int64_t n = in->w[1] < 0 ? 0 : in->w[1] > count ? count : in->w[1];
    const int64_t base = in->w[0];
    for (int64_t i = 0; i < n; i++) {
        int64_t off = slog_offset(in, i);
        int64_t t;
        if (base > now_ms - off) { /* base + off > now, without overflowing for any base */
            t = now_ms;
            repair = RL_ALGO_REPAIR;
        } else {
            t = base + off;
        }
        if (t <= now_ms - period)
            continue; /* left the window */
        int64_t j = lg->n++;
        for (; j > 0 && lg->t[j - 1] > t; j--)
            lg->t[j] = lg->t[j - 1];
        lg->t[j] = t;
    }
    return repair;
}

/* Writes lg as a state of the rule's words; returns its ttl. */
static int64_t slog_store(const slog *lg, int64_t now_ms, int64_t period, int64_t count,
                          rl_state *out)
{
    const int64_t base = lg->n > 0 ? lg->t[0] : now_ms;

    out->w[0] = base;
    out->w[1] = lg->n;
    for (int64_t k = 0; k < (count + 1) / 2; k++) {
        uint64_t lo = 2 * k < lg->n ? (uint64_t)(lg->t[2 * k] - base) : 0;
        uint64_t hi = 2 * k + 1 < lg->n ? (uint64_t)(lg->t[2 * k + 1] - base) : 0;
        slog_set_word(&out->w[2 + k], lo, hi);
    }
    return lg->n > 0 ? lg->t[lg->n - 1] + period - now_ms : 1;
}

int rl_sliding_log_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                          rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    const int64_t count = slog_count(rule);
    const int64_t period = rule->period_ms;
    slog lg;
    const int repair = slog_load(in, now_ms, period, count, &lg);
    const int64_t used = lg.n;

    res->rule = rule;
    res->limit = rule->count;
    res->window_ms = period;

    if (cost > count || used + cost > count) {
        res->allowed = 0;
        res->remaining = count - used;
        /* cost <= count: the (used + cost - count)-th oldest entry is the last that must go. */
        res->retry_after_ms =
            cost > count ? period : lg.t[used + cost - count - 1] + period - now_ms;
        res->reset_ms = res->retry_after_ms;
        if (repair)
            *ttl_ms = slog_store(&lg, now_ms, period, count, out);
        return repair;
    }

    for (int64_t i = 0; i < cost; i++)
        lg.t[lg.n++] = now_ms; /* every entry is <= now: the log stays in order */
    *ttl_ms = slog_store(&lg, now_ms, period, count, out);
    res->allowed = 1;
    res->remaining = count - lg.n;
    res->retry_after_ms = 0;
    res->reset_ms = lg.n > 0 ? lg.t[lg.n - 1] + period - now_ms : 0;
    return 0;
}
