/* limiter.c -- one decision per request, atomic over every matching rule
 *
 * The limiter owns the two stores: the shared-memory table (always open: it is the fallback)
 * and the Redis connection (when configured), with a circuit breaker (failover.c) between
 * them. Per request it picks the matching rules in config order, builds one key per rule into
 * per-handle buffers (no allocation on the request path), then:
 *   1. with Redis: the refusal cache (refusal.c) -- a rule that Redis refused this client
 *      until later refuses it here, with no round trip;
 *   2. Redis, unless the breaker is open -- one EVALSHA for every rule;
 *   3. when Redis did not decide, each rule's on_redis_down: "closed" refuses the request
 *      (retry after the breaker's remaining time, >= 1 s), "open" admits uncounted, "shm"
 *      decides in shared memory with the rule's host share (count and burst divided by
 *      redis.hosts, precomputed at open).
 * A client never sees an error for a store that failed.
 *
 * Refusals that no store decided (refusal cache, fail-closed) list only the refusing rules:
 * the others' states are unknown without asking a store.
 *
 * The config is borrowed: it must outlive the limiter. Results point at its rules.
 */
#include "fmacros.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algo.h"
#include "backend.h"
#include "failover.h"
#include "refusal.h"

/* A key is "RULE\x1fCLIENT": rule names never contain 0x1f, so keys of different rules can
 * never collide whatever the client string is. */
#define LIMITER_KEY_SEP '\x1f'
/* A fail-closed refusal says "retry after" at least this long (headers speak seconds). */
#define LIMITER_CLOSED_RETRY_MIN_MS 1000

struct rl_limiter {
    const rl_config *cfg;
    rl_shm *shm;
    rl_redis *redis;         /* NULL when Redis is not enabled */
    rl_breaker breaker;      /* per process: when to skip Redis */
    rl_rule *shares;         /* owned: each rule with count and burst / redis.hosts, for the
                                shm fallback; NULL when hosts <= 1 (the rules themselves) */
    int redis_failing;       /* the last request Redis did not decide (failed or skipped) */
    int shm_failed;          /* the last shm decision failed */
    int unenforced;          /* some rule's on_redis_down is not "shm" */
    rl_clock_fn clock;       /* NULL: CLOCK_REALTIME */
    void *clock_ud;
    char errstr[256];
    char keys[RL_MAX_MATCH][RL_KEY_MAX + 1];
    rl_item items[RL_MAX_MATCH];
};

static int64_t limiter_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The shm fallback's copy of each rule: this host's share of a limit shared by `hosts`. */
static int limiter_make_shares(rl_limiter *lim)
{
    const rl_config *cfg = lim->cfg;
    int64_t hosts = cfg->redis.hosts;

    for (size_t i = 0; i < cfg->nrules; i++)
        lim->unenforced |= cfg->rules[i].on_redis_down != RL_REDIS_DOWN_SHM;
    if (hosts <= 1)
        return 0;
    lim->shares = calloc(cfg->nrules, sizeof(*lim->shares));
    if (lim->shares == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nrules; i++) {
        rl_rule *r = &lim->shares[i];
        *r = cfg->rules[i]; /* strings stay borrowed from the config */
        r->count = r->count / hosts > 0 ? r->count / hosts : 1;
        r->burst = r->burst / hosts > 0 ? r->burst / hosts : 1;
    }
    return 0;
}

RL_PRINTF(2, 3) static void limiter_set_error(rl_limiter *lim, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lim->errstr, sizeof(lim->errstr), fmt, ap);
    va_end(ap);
}

/* The longest key rl_decide can build: the table's slots are sized from it, so short rule
 * names make a smaller table (shm.c: bytes per key). */
static size_t limiter_key_max(const rl_config *cfg)
{
    size_t longest = 0;
    for (size_t i = 0; i < cfg->nrules; i++) {
        size_t len = strlen(cfg->rules[i].name);
        longest = len > longest ? len : longest;
    }
    return longest + 1 + RL_CLIENT_MAX;
}

rl_limiter *rl_limiter_open(const rl_config *cfg, rl_error *err)
{
    rl_limiter *lim = calloc(1, sizeof(*lim));
    if (lim == NULL) {
        snprintf(err->text, sizeof(err->text), "out of memory");
        return NULL;
    }
    lim->cfg = cfg;
    lim->shm = rl_shm_open(cfg->shm.name, cfg->shm.capacity, limiter_key_max(cfg),
                           RL_STATE_WORDS, err);
    if (lim->shm == NULL) {
        free(lim);
        return NULL;
    }
    if (cfg->redis.enabled) {
        rl_breaker_init(&lim->breaker, cfg->redis.breaker_failures, cfg->redis.breaker_open_ms);
        lim->redis = rl_redis_new(&cfg->redis);
        if (lim->redis == NULL || limiter_make_shares(lim) < 0) {
            snprintf(err->text, sizeof(err->text), "out of memory");
            rl_limiter_close(lim);
            return NULL;
        }
    }
    return lim;
}

void rl_limiter_close(rl_limiter *lim)
{
    if (lim == NULL)
        return;
    rl_redis_free(lim->redis);
    rl_shm_close(lim->shm);
    free(lim->shares);
    free(lim);
}

void rl_limiter_set_clock(rl_limiter *lim, rl_clock_fn fn, void *ud)
{
    lim->clock = fn;
    lim->clock_ud = ud;
}

const char *rl_limiter_errstr(const rl_limiter *lim)
{
    return lim->errstr;
}

const char *rl_limiter_health(const rl_limiter *lim)
{
    if (lim->shm_failed || (lim->redis_failing && lim->unenforced))
        return "down";
    return lim->redis != NULL && lim->redis_failing ? "degraded" : "ok";
}

static int limiter_matches(const rl_rule *rule, const char *path)
{
    return strncmp(path, rule->path_prefix, strlen(rule->path_prefix)) == 0;
}

/* The most restrictive result: the longest wait among refusals, else the fewest remaining. */
static int limiter_decider(const rl_decision *d)
{
    int best = -1;
    for (size_t i = 0; i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        if (best < 0) {
            best = (int)i;
            continue;
        }
        const rl_rule_result *b = &d->results[best];
        if (!d->allowed) {
            if (!r->allowed && (b->allowed || r->retry_after_ms > b->retry_after_ms))
                best = (int)i;
        } else if (r->remaining < b->remaining) {
            best = (int)i;
        }
    }
    return best;
}

/* Keeps only the results listed in keep[0..m) (ascending), for refusals no store decided. */
static void limiter_keep_only(rl_decision *out, const size_t *keep, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (keep[k] != k)
            out->results[k] = out->results[keep[k]];
    out->nresults = m;
}

/* Redis did not decide: each rule's on_redis_down. Returns 1 / 0 like a store, or -1 when
 * shared memory failed too (errstr set). */
static int limiter_fallback(rl_limiter *lim, size_t n, int64_t cost, int64_t now,
                            rl_decision *out)
{
    rl_item sub[RL_MAX_MATCH];
    size_t closed[RL_MAX_MATCH], nclosed = 0, nsub = 0;
    int r;

    for (size_t i = 0; i < n; i++)
        if (lim->items[i].rule->on_redis_down == RL_REDIS_DOWN_CLOSED)
            closed[nclosed++] = i;
    if (nclosed > 0) {
        int64_t wait = rl_breaker_remaining(&lim->breaker, limiter_clock_ms(CLOCK_MONOTONIC));
        if (wait < LIMITER_CLOSED_RETRY_MIN_MS)
            wait = LIMITER_CLOSED_RETRY_MIN_MS;
        for (size_t k = 0; k < nclosed; k++) {
            const rl_rule *rule = lim->items[closed[k]].rule;
            out->results[closed[k]] = (rl_rule_result){
                .rule = rule, .allowed = 0, .limit = rule->count, .window_ms = rule->period_ms,
                .remaining = 0, .reset_ms = wait, .retry_after_ms = wait};
        }
        limiter_keep_only(out, closed, nclosed);
        out->backend = RL_BACKEND_FAIL_CLOSED;
        return 0;
    }

    for (size_t i = 0; i < n; i++) {
        const rl_rule *rule = lim->items[i].rule;
        if (rule->on_redis_down == RL_REDIS_DOWN_OPEN) {
            out->results[i] = (rl_rule_result){.rule = rule, .allowed = 1, .limit = rule->count,
                                               .window_ms = rule->period_ms,
                                               .remaining = rule->count};
            continue;
        }
        sub[nsub] = lim->items[i];
        if (lim->shares != NULL)
            sub[nsub].rule = &lim->shares[rule - lim->cfg->rules];
        nsub++;
    }
    out->backend = RL_BACKEND_FAIL_OPEN;
    if (nsub == 0)
        return 1;
    r = rl_shm_decide(lim->shm, sub, nsub, cost, lim->clock != NULL ? now : -1);
    lim->shm_failed = r < 0;
    if (r < 0) {
        limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
        return -1;
    }
    for (size_t k = 0; k < nsub; k++) /* report the config's rule, with this host's limit */
        sub[k].res->rule = lim->items[sub[k].res - out->results].rule;
    out->backend = RL_BACKEND_SHM;
    return r;
}

/* Asks Redis, through the refusal cache and the breaker. 1 / 0, or -1 when Redis did not
 * decide (out->backend and the results are then untouched but for cache lookups). */
static int limiter_redis(rl_limiter *lim, size_t n, int64_t cost, int64_t now, rl_decision *out)
{
    size_t hits[RL_MAX_MATCH];
    int r = rl_refusal_check(lim->shm, lim->items, n, cost, now, hits);

    if (r > 0) {
        limiter_keep_only(out, hits, (size_t)r);
        out->backend = RL_BACKEND_REFUSAL_CACHE;
        return 0;
    }
    if (!rl_breaker_allow(&lim->breaker, limiter_clock_ms(CLOCK_MONOTONIC))) {
        lim->redis_failing = 1;
        limiter_set_error(lim, "redis: circuit breaker open after: %s",
                          rl_redis_errstr(lim->redis));
        return -1;
    }
    r = rl_redis_decide(lim->redis, lim->items, n, cost, lim->clock != NULL ? now : -1);
    lim->redis_failing = r < 0;
    if (r < 0) {
        rl_breaker_failure(&lim->breaker, limiter_clock_ms(CLOCK_MONOTONIC));
        limiter_set_error(lim, "redis: %s", rl_redis_errstr(lim->redis));
        return -1;
    }
    rl_breaker_success(&lim->breaker);
    lim->shm_failed = 0;
    out->backend = RL_BACKEND_REDIS;
    if (r == 0)
        rl_refusal_note(lim->shm, lim->items, n, cost, now);
    return r;
}

int rl_decide(rl_limiter *lim, const rl_request *req, rl_decision *out)
{
    const char *path = req->path != NULL ? req->path : "/";
    size_t clen;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    out->allowed = 1;
    out->decider = -1;
    lim->errstr[0] = '\0';

    if (req->client == NULL || req->client[0] == '\0') {
        limiter_set_error(lim, "no client identity");
        return -1;
    }
    clen = strlen(req->client);
    if (clen > RL_CLIENT_MAX) {
        limiter_set_error(lim, "client identity longer than %d bytes", RL_CLIENT_MAX);
        return -1;
    }

    for (size_t i = 0; i < lim->cfg->nrules && n < RL_MAX_MATCH; i++) {
        const rl_rule *rule = &lim->cfg->rules[i];
        if (!limiter_matches(rule, path))
            continue;
        size_t nlen = strlen(rule->name);
        char *k = lim->keys[n];
        memcpy(k, rule->name, nlen);
        k[nlen] = LIMITER_KEY_SEP;
        memcpy(k + nlen + 1, req->client, clen + 1);
        lim->items[n] = (rl_item){ .rule = rule, .client = req->client, .key = k,
                                   .keylen = nlen + 1 + clen, .res = &out->results[n] };
        n++;
    }
    out->nresults = n;
    if (n == 0)
        return 0;

    int64_t cost = req->cost > 0 ? req->cost : 1;
    int64_t now =
        lim->clock != NULL ? lim->clock(lim->clock_ud) : limiter_clock_ms(CLOCK_REALTIME);
    int r;

    if (lim->redis != NULL) {
        r = limiter_redis(lim, n, cost, now, out);
        if (r < 0)
            r = limiter_fallback(lim, n, cost, now, out);
    } else {
        /* -1 without a test clock: the table reads the clock under its locks, so decisions
         * on one key are made in clock order (backend.h); `now` serves the refusal cache. */
        r = rl_shm_decide(lim->shm, lim->items, n, cost, lim->clock != NULL ? now : -1);
        lim->shm_failed = r < 0;
        out->backend = RL_BACKEND_SHM;
        if (r < 0)
            limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
    }
    if (r < 0) {
        /* No store could decide: admit (fail open) and say why; the request is not the
         * client's fault, and refusing everyone would turn a fault into an outage. */
        memset(out->results, 0, sizeof(out->results));
        out->nresults = 0;
        out->backend = RL_BACKEND_NONE;
        return 0;
    }

    out->allowed = r == 1;
    out->decider = limiter_decider(out);
    if (!out->allowed)
        out->retry_after_ms = out->results[out->decider].retry_after_ms;
    return 0;
}
