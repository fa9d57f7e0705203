/* limiter.c -- one decision per request, atomic over every matching rule
 *
 * The limiter owns the two stores: the shared-memory table (always open: it is the fallback)
 * and the Redis connection (when configured). Per request it picks the matching rules in
 * config order, builds one key per rule into per-handle buffers (no allocation on the request
 * path), and asks Redis first; when Redis cannot decide, shared memory decides, so a client
 * never sees an error for a store that failed.
 *
 * The config is borrowed: it must outlive the limiter. Results point at its rules.
 */
#include "fmacros.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "backend.h"

/* A key is "RULE\x1fCLIENT": rule names never contain 0x1f, so keys of different rules can
 * never collide whatever the client string is. */
#define LIMITER_KEY_SEP '\x1f'

struct rl_limiter {
    const rl_config *cfg;
    rl_shm *shm;
    rl_redis *redis;         /* NULL when Redis is not enabled */
    int redis_failing;       /* the last Redis attempt failed: decisions come from shm */
    rl_clock_fn clock;       /* NULL: CLOCK_REALTIME */
    void *clock_ud;
    char errstr[256];
    char keys[RL_MAX_MATCH][RL_KEY_MAX + 1];
    rl_item items[RL_MAX_MATCH];
};

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
        lim->redis = rl_redis_new(&cfg->redis);
        if (lim->redis == NULL) {
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
    /* -1: each store reads its own clock at the moment it decides (Redis' TIME; shm under its
     * locks), so that decisions on one key are made in clock order (backend.h). */
    int64_t now = lim->clock != NULL ? lim->clock(lim->clock_ud) : -1;
    int r = -1;

    if (lim->redis != NULL) {
        r = rl_redis_decide(lim->redis, lim->items, n, cost, now);
        lim->redis_failing = r < 0;
        if (r >= 0)
            out->backend = RL_BACKEND_REDIS;
        else
            limiter_set_error(lim, "redis: %s", rl_redis_errstr(lim->redis));
    }
    if (r < 0) {
        r = rl_shm_decide(lim->shm, lim->items, n, cost, now);
        if (r >= 0) {
            out->backend = RL_BACKEND_SHM;
        } else {
            /* Both stores failed: admit (fail open) and say why; the request is not the
             * client's fault, and refusing everyone would turn a fault into an outage. */
            limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
            memset(out->results, 0, sizeof(out->results));
            out->nresults = 0;
            out->backend = RL_BACKEND_NONE;
            return 0;
        }
    }

    out->allowed = r == 1;
    out->decider = limiter_decider(out);
    if (!out->allowed)
        out->retry_after_ms = out->results[out->decider].retry_after_ms;
    return 0;
}
