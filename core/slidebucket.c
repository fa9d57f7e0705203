/* slidebucket.c -- the bucketed sliding log: sliding_log above RL_LOG_MAX in fixed memory
 *
 * A rule of count > RL_LOG_MAX cannot keep one timestamp per unit in a bounded slot, so the
 * shared-memory store keeps a log of buckets instead. The period P is cut into buckets of
 * W = ceil(P / RL_LOG_BUCKETS) ms aligned on multiples of W (bucket b = [bW, bW + W)); a
 * unit admitted at t is counted in bucket floor(t / W) as if it had been admitted at the
 * bucket's last ms, e_b = bW + W - 1 >= t. It counts while e_b > now - P, that is until
 * e_b + P, never before t + P: so the units counted always include every unit the exact log
 * (slidelog.c) would count, and admitting only while counted + cost <= count never lets more
 * than count units in any rolling P. It keeps a unit at most W - 1 ms longer than the exact
 * log does: a refusal means that more than count - cost units were admitted in the last
 * P + W - 1 ms. With RL_LOG_BUCKETS = 64 that is at most 1/64 of the period (937 ms of a
 * minute). `burst` is not used.
 *
 * State, 2 + ceil(NB / 2) words where NB = RL_LOG_BUCKETS + 1 (the buckets a span of P can
 * touch: floor(now / W) - floor((now - P + 1) / W) <= RL_LOG_BUCKETS):
 *   w[0]      N, the newest bucket's index when written (floor(now / W) then)
 *   w[1]      0 (unused)
 *   w[2 + k]  the counts of buckets N - 2k (low 32 bits) and N - 2k - 1 (high 32 bits)
 * Buckets that left the window are written as 0, so the stored bytes depend on the live
 * counts alone. Counts are <= count <= RL_LOG_COUNT_MAX, far below 2^32.
 *
 * Reading accepts any bit pattern, as slidelog.c does: each count is clamped to [0, count];
 * a bucket later than now's (a clock that stepped back, or a torn N) counts in now's bucket
 * and the state is stored repaired (RL_ALGO_REPAIR); buckets that left are dropped. A sum
 * above count (a torn state) only refuses: no stored state admits more than count units.
 *
 * Results, as slidelog.c's with every unit at its bucket's end: remaining = count - used
 * (after the charge when admitted; never below 0); reset_ms = e_newest + P - now (0 for a
 * probe of an empty log); refused with cost <= count: the k = used + cost - count oldest
 * units must leave, the last of them in bucket b at e_b + P, so retry_after_ms = e_b + P -
 * now; a cost above count is refused with retry_after_ms = P. ttl = e_newest + P - now >= 1.
 */
#include "fmacros.h"

#include <string.h>

#include "algo.h"

#define SB_N (RL_LOG_BUCKETS + 1)

/* The live buckets by age: c[a] is the count of bucket cur - a. */
typedef struct sbuck {
    int64_t c[SB_N];
    int64_t cur;    /* now's bucket */
    int64_t width;  /* W */
    int64_t oldest; /* the largest live age: cur - floor((now - P + 1) / W) */
} sbuck;

static int64_t sb_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static uint32_t sb_count_at(const rl_state *st, int j)
{
    uint64_t w = (uint64_t)st->w[2 + j / 2];
    return (uint32_t)(j % 2 == 0 ? w : w >> 32);
}

/* The last ms of the bucket of age a. */
static int64_t sb_end(const sbuck *b, int a)
{
    return (b->cur - a + 1) * b->width - 1;
}

static int sb_load(const rl_state *in, int64_t now_ms, int64_t period, int64_t count, sbuck *b)
{
    int repair = 0;

    memset(b->c, 0, sizeof b->c);
    b->width = (period + RL_LOG_BUCKETS - 1) / RL_LOG_BUCKETS;
    b->cur = sb_floor_div(now_ms, b->width);
    b->oldest = b->cur - sb_floor_div(now_ms - period + 1, b->width);
    if (in == NULL)
        return 0;
    int64_t d; /* how far the stored newest bucket is ahead of now's (negative: behind) */
    if (__builtin_sub_overflow(in->w[0], b->cur, &d))
        d = in->w[0] > b->cur ? INT64_MAX : INT64_MIN;
    for (int j = 0; j < SB_N; j++) {
        int64_t c = sb_count_at(in, j);
        if (c == 0)
            continue;
        if (c > count)
            c = count;
        if (d > j) { /* bucket cur + (d - j) is later than now's */
            b->c[0] += c;
            repair = RL_ALGO_REPAIR;
        } else if (d >= (int64_t)j - b->oldest) { /* age j - d in [0, oldest] */
            b->c[j - d] += c;
        }
    }
    return repair;
}

static void sb_set_word(int64_t *w, uint64_t lo, uint64_t hi)
{
    uint64_t v = lo | hi << 32;
    memcpy(w, &v, sizeof v);
}

/* The newest live bucket's age, or -1 when the log is empty. */
static int sb_newest(const sbuck *b)
{
    for (int a = 0; a <= b->oldest; a++)
        if (b->c[a] > 0)
            return a;
    return -1;
}

static int64_t sb_store(const sbuck *b, int64_t now_ms, int64_t period, rl_state *out)
{
    int newest = sb_newest(b);

    out->w[0] = b->cur;
    out->w[1] = 0;
    for (int k = 0; k < (SB_N + 1) / 2; k++) {
        uint64_t lo = 2 * k < SB_N ? (uint64_t)b->c[2 * k] : 0;
        uint64_t hi = 2 * k + 1 < SB_N ? (uint64_t)b->c[2 * k + 1] : 0;
        sb_set_word(&out->w[2 + k], lo, hi);
    }
    return newest >= 0 ? sb_end(b, newest) + period - now_ms : 1;
}

size_t rl_sliding_bucket_words(void)
{
    return 2 + (SB_N + 1) / 2;
}

int rl_sliding_bucket_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                             rl_state *out, int64_t *ttl_ms, rl_rule_result *res)
{
    const int64_t count = rule->count;
    const int64_t period = rule->period_ms;
    sbuck b;
    const int repair = sb_load(in, now_ms, period, count, &b);
    int64_t used = 0;

    for (int a = 0; a <= b.oldest; a++)
        used += b.c[a];
    res->rule = rule;
    res->limit = count;
    res->window_ms = period;
    res->remaining = used < count ? count - used : 0;

    if (cost > count || used + cost > count) {
        res->allowed = 0;
        res->retry_after_ms = period;
        if (cost <= count) {
            /* The k oldest units must leave; the last of them leaves with its bucket. */
            int64_t k = used + cost - count, seen = 0;
            for (int a = (int)b.oldest; a >= 0; a--) {
                seen += b.c[a];
                if (seen >= k) {
                    res->retry_after_ms = sb_end(&b, a) + period - now_ms;
                    break;
                }
            }
        }
        res->reset_ms = res->retry_after_ms;
        if (repair)
            *ttl_ms = sb_store(&b, now_ms, period, out);
        return repair;
    }

    b.c[0] += cost;
    *ttl_ms = sb_store(&b, now_ms, period, out);
    int newest = sb_newest(&b);
    res->allowed = 1;
    res->remaining = count - used - cost;
    res->retry_after_ms = 0;
    res->reset_ms = newest >= 0 ? sb_end(&b, newest) + period - now_ms : 0;
    return 0;
}
