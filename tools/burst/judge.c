/* judge.c -- what each client was allowed, what it got, and whether the headers agree
 *
 * The server decides a request at some instant between the moment we handed it to libcurl
 * (sent_us) and the moment its answer was complete (done_us); we cannot see the instant, so
 * every bound below is taken over that whole interval, which makes it sound: a verdict of
 * over-admission is a proof, never an artefact of network delay. The filter's clock counts
 * whole milliseconds, so one more millisecond of slack goes on each side.
 *
 * Allowance over a client's span S = last done - first sent (+ slack):
 *   gcra            at most BURST + floor(S * COUNT / PERIOD); when that refill term is 0 (the
 *                   client's whole run fit in one emission interval) also at least
 *                   min(sent, BURST): the burst is exact both ways
 *   fixed_window    at most COUNT x windows touched (windows aligned on the Unix epoch); when
 *                   only one window was touched, at least min(sent, COUNT)
 *   sliding_window  the same bounds: in every window the current count alone is at most COUNT
 *                   (the estimate adds the weighted previous window to it), and inside one
 *                   window a client idle for two periods sees exactly COUNT
 *   sliding_log     at most COUNT per P-long stretch: COUNT x (floor(S / PERIOD) + 1); when S
 *                   is shorter than PERIOD also at least min(sent, COUNT): exact both ways
 * Every minimum assumes the client starts idle (no request in the last PERIOD, two for the
 * sliding window); run against fresh clients (--first-client) when repeating a run.
 *
 * Header coherence, per client, over the answers from the limiter (2xx and 429):
 *   - a 429 carries Retry-After, an integer >= 1, and a RateLimit field;
 *   - RateLimit parses; X-RateLimit-Remaining equals the smallest r of RateLimit;
 *   - r does not rise from answer i to answer j when i was complete before j was sent (so the
 *     server surely decided i first), except by the refill the elapsed time allows: none
 *     inside a tight gcra burst, one fixed window or a sliding log span shorter than PERIOD
 *     (no admission of the run can have left the log yet); ceil(dt x COUNT / PERIOD) for gcra
 *     otherwise; that plus one (rounding) for the sliding window. Each answer is compared to
 *     the latest-sent answer known to precede it.
 */
#include "fmacros.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "burst.h"

#define JUDGE_SLACK_US 1000 /* the filter's millisecond clock */
#define JUDGE_UNLIMITED INT64_MAX

typedef struct judge_ctx {
    const burst_options *o;
    const burst_run *run;
    int64_t period_us;
    int tight; /* gcra, sliding_log: no refill possible within the client's span */
} judge_ctx;

static void judge_violation(burst_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void judge_violation(burst_client *c, const char *fmt, ...)
{
    va_list ap;

    if (c->header_violations++ > 0)
        return;
    va_start(ap, fmt);
    vsnprintf(c->first_violation, sizeof c->first_violation, fmt, ap);
    va_end(ap);
}

/* floor(span_us * count / period_us) without overflow: count x period <= 2^50 ms. */
static int64_t judge_refill(const judge_ctx *x, int64_t span_us)
{
    int64_t q, rem;

    if (span_us <= 0)
        return 0;
    q = span_us / x->period_us;
    rem = span_us % x->period_us;
    return q * x->o->count + rem * x->o->count / x->period_us;
}

/* The window (index since the epoch) a monotonic instant falls in. */
static int64_t judge_window(const judge_ctx *x, int64_t t_us)
{
    int64_t wall = x->run->wall_start_us + t_us;
    return wall >= 0 ? wall / x->period_us : -1 - (-1 - wall) / x->period_us;
}

static void judge_allowance(const judge_ctx *x, burst_client *c, judge_ctx *cx)
{
    const burst_options *o = x->o;
    int64_t span = c->last_done_us - c->first_sent_us + 2 * JUDGE_SLACK_US;

    *cx = *x;
    c->min_allowed = -1;
    if (o->algo == RL_ALGO_GCRA) {
        int64_t refill = judge_refill(x, span);
        c->max_allowed = o->burst + refill;
        cx->tight = refill == 0;
        if (cx->tight)
            c->min_allowed = c->sent < o->burst ? c->sent : o->burst;
        return;
    }
    if (o->algo == RL_ALGO_SLIDING_LOG) {
        c->max_allowed = o->count * (span / x->period_us + 1);
        cx->tight = span < x->period_us;
        if (cx->tight)
            c->min_allowed = c->sent < o->count ? c->sent : o->count;
        return;
    }
    c->windows = judge_window(x, c->last_done_us + JUDGE_SLACK_US) -
                 judge_window(x, c->first_sent_us - JUDGE_SLACK_US) + 1;
    c->max_allowed = o->count * c->windows;
    if (c->windows == 1)
        c->min_allowed = c->sent < o->count ? c->sent : o->count;
}

/* How far r may rise from answer a (earlier) to answer b. */
static int64_t judge_rise_allowed(const judge_ctx *x, const burst_record *a, const burst_record *b)
{
    int64_t dt = b->done_us - a->sent_us + 2 * JUDGE_SLACK_US;
    int64_t up;

    switch (x->o->algo) {
    case RL_ALGO_GCRA:
        if (x->tight)
            return 0;
        break;
    case RL_ALGO_FIXED_WINDOW:
        return judge_window(x, a->sent_us - JUDGE_SLACK_US) ==
                       judge_window(x, b->done_us + JUDGE_SLACK_US)
                   ? 0
                   : JUDGE_UNLIMITED;
    case RL_ALGO_SLIDING_WINDOW: break;
    case RL_ALGO_SLIDING_LOG:
        /* Entries leave a whole P after they came, all of them at once if they came at once. */
        return x->tight ? 0 : JUDGE_UNLIMITED;
    }
    if (dt >= x->period_us)
        return JUDGE_UNLIMITED;
    up = (dt * x->o->count + x->period_us - 1) / x->period_us; /* < 2^50 x 1000 */
    return x->o->algo == RL_ALGO_SLIDING_WINDOW ? up + 1 : up;
}

/* The checks one answer carries by itself. seq is its number within the client, from 1. */
static void judge_fields(burst_client *c, const burst_record *r, int64_t seq)
{
    const burst_fields *f = &r->f;

    if (r->status == 429) {
        if (f->retry_after == BURST_ABSENT)
            judge_violation(c, "request %lld: 429 without Retry-After", (long long)seq);
        else if (f->retry_after < 1)
            judge_violation(c, "request %lld: 429 with Retry-After not an integer >= 1",
                            (long long)seq);
        if (!f->has_ratelimit)
            judge_violation(c, "request %lld: 429 without a RateLimit field", (long long)seq);
    }
    if (f->has_ratelimit && f->r == BURST_MALFORMED)
        judge_violation(c, "request %lld (%ld): RateLimit field does not parse", (long long)seq,
                        r->status);
    if (f->x_remaining == BURST_MALFORMED)
        judge_violation(c, "request %lld (%ld): X-RateLimit-Remaining is not an integer",
                        (long long)seq, r->status);
    else if (f->x_remaining >= 0 && f->r_min >= 0 && f->x_remaining != f->r_min)
        judge_violation(c, "request %lld (%ld): X-RateLimit-Remaining %lld but RateLimit r=%lld",
                        (long long)seq, r->status, (long long)f->x_remaining, (long long)f->r_min);
}

typedef struct judge_item {
    size_t rec;
    int64_t seq; /* its number within the client, from 1 */
    int64_t done_us;
} judge_item;

static int judge_by_done(const void *pa, const void *pb)
{
    const judge_item *a = pa, *b = pb;
    return (a->done_us > b->done_us) - (a->done_us < b->done_us);
}

/* items: the client's answers carrying an r, in send order (n of them); byd: scratch. */
static void judge_monotone(const judge_ctx *x, burst_client *c, const judge_item *items,
                           judge_item *byd, size_t n)
{
    const burst_record *rec = x->run->rec;
    size_t p = 0;
    const judge_item *best = NULL;

    memcpy(byd, items, n * sizeof *byd);
    qsort(byd, n, sizeof *byd, judge_by_done);
    for (size_t j = 0; j < n; j++) {
        const burst_record *b = &rec[items[j].rec];
        for (; p < n && byd[p].done_us <= b->sent_us; p++)
            if (best == NULL || rec[byd[p].rec].sent_us > rec[best->rec].sent_us)
                best = &byd[p];
        if (best == NULL)
            continue;
        const burst_record *a = &rec[best->rec];
        int64_t up = judge_rise_allowed(x, a, b);
        if (up != JUDGE_UNLIMITED && b->f.r > a->f.r + up)
            judge_violation(c,
                            "request %lld (%ld): RateLimit r=%lld after r=%lld of request %lld "
                            "(answered before it was sent): rose by more than the %lld the "
                            "elapsed time can refill",
                            (long long)items[j].seq, b->status, (long long)b->f.r,
                            (long long)a->f.r, (long long)best->seq, (long long)up);
    }
}

static void judge_count(burst_client *c, const burst_record *r)
{
    c->sent++;
    if (r->done_us > c->last_done_us)
        c->last_done_us = r->done_us;
    if (r->status == 0)
        c->errors++;
    else if (r->status >= 200 && r->status < 300)
        c->admitted++;
    else if (r->status == 429)
        c->refused++;
    else
        c->other++;
}

/* Counts, bounds and header checks for one client, whose requests are run->rec[idx[0..m)]
 * in send order. items, byd: scratch of at least m entries. */
static void judge_client(const judge_ctx *x, burst_client *c, const size_t *idx, size_t m,
                         judge_item *items, judge_item *byd)
{
    const burst_record *rec = x->run->rec;
    judge_ctx cx;
    size_t n = 0;

    c->min_allowed = -1;
    if (m == 0)
        return;
    c->first_sent_us = rec[idx[0]].sent_us;
    for (size_t i = 0; i < m; i++)
        judge_count(c, &rec[idx[i]]);
    judge_allowance(x, c, &cx);
    c->over = c->admitted > c->max_allowed;
    /* a request with no answer may have been admitted: no minimum can be claimed */
    c->under = c->min_allowed >= 0 && c->errors == 0 && c->admitted < c->min_allowed;

    for (size_t i = 0; i < m; i++) {
        const burst_record *r = &rec[idx[i]];
        if (r->status != 429 && (r->status < 200 || r->status >= 300))
            continue;
        judge_fields(c, r, (int64_t)i + 1);
        if (r->f.r >= 0)
            items[n++] = (judge_item){idx[i], (int64_t)i + 1, r->done_us};
    }
    judge_monotone(&cx, c, items, byd, n);
}

/* Groups the requests by client, each group in send order: a counting sort. Returns the
 * index array (free() it) and fills start[0..clients] with each group's offset. */
static size_t *judge_group(const burst_run *run, int clients, size_t *start)
{
    size_t *idx = malloc((run->n + 1) * sizeof *idx);

    if (idx == NULL)
        return NULL;
    for (size_t i = 0; i < run->n; i++)
        start[run->rec[i].client + 1]++;
    for (int c = 0; c < clients; c++)
        start[c + 1] += start[c];
    for (size_t i = 0; i < run->n; i++)
        idx[start[run->rec[i].client]++] = i;
    for (int c = clients; c > 0; c--) /* the fill moved each start to the next group's */
        start[c] = start[c - 1];
    start[0] = 0;
    return idx;
}

burst_client *burst_judge(const burst_options *o, const char (*addrs)[BURST_ADDR_MAX],
                          const burst_run *run)
{
    burst_client *cs = calloc((size_t)o->clients, sizeof *cs);
    size_t *start = calloc((size_t)o->clients + 1, sizeof *start);
    judge_item *items = calloc(run->n + 1, sizeof *items);
    judge_item *byd = calloc(run->n + 1, sizeof *byd);
    size_t *idx = NULL;
    judge_ctx x = {o, run, o->period_ms * 1000, 0};

    if (cs == NULL || start == NULL || items == NULL || byd == NULL ||
        (idx = judge_group(run, o->clients, start)) == NULL) {
        free(cs);
        cs = NULL;
        goto out;
    }
    for (int i = 0; i < o->clients; i++) {
        cs[i].addr = addrs[i];
        judge_client(&x, &cs[i], idx + start[i], start[i + 1] - start[i], items, byd);
    }
out:
    free(idx);
    free(start);
    free(items);
    free(byd);
    return cs;
}

const char *burst_client_verdict(const burst_client *c)
{
    if (c->over)
        return "over-admission";
    if (c->errors > 0)
        return "transport-errors";
    if (c->under)
        return "under-admission";
    if (c->header_violations > 0)
        return "headers";
    return "ok";
}
