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
#include <time.h>

#include "backend.h"
#include "http.h"
#include "cidr.h"
#include "identity.h"
#include "rule.h"

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
    char material[RL_MAX_MATCH][RL_CLIENT_MAX + 1]; /* each item's client (key material) */
    char scratch[RL_KEY_SCRATCH];                  /* rl_rule_key's work space */
};

static int64_t limiter_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

RL_PRINTF(2, 3) static void limiter_set_error(rl_limiter *lim, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lim->errstr, sizeof(lim->errstr), fmt, ap);
    va_end(ap);
}

rl_limiter *rl_limiter_open(const rl_config *cfg, rl_error *err)
{
    rl_limiter *lim = calloc(1, sizeof(*lim));
    if (lim == NULL) {
        snprintf(err->text, sizeof(err->text), "out of memory");
        return NULL;
    }
    lim->cfg = cfg;
    lim->shm = rl_shm_open(cfg->shm.name, cfg->shm.capacity, err);
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

/* The most restrictive enforced result: the longest wait among refusals, else the fewest
 * remaining. Dry-run results never decide. */
static int limiter_decider(const rl_decision *d)
{
    int best = -1;
    for (size_t i = 0; i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        if (r->dry_run)
            continue;
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

/* The units one item costs: the request's cost times the rule's, saturated just above any
 * burst or count (every such cost is refused alike, see algo.h). */
static int64_t limiter_cost(const rl_request *req, const rl_rule *rule)
{
    int64_t a = req->cost > 0 ? req->cost : 1, b = rule->cost > 0 ? rule->cost : 1;
    return a > (RL_COUNT_MAX + 1) / b ? RL_COUNT_MAX + 1 : a * b;
}

/* Finds the client identity into out->client; addr is set when it is an IP address.
 * Returns 1 for an address, 0 for an opaque identity, -1 when there is none. */
static int limiter_identity(rl_limiter *lim, const rl_request *req, rl_decision *out,
                           uint8_t addr[16])
{
    const rl_identity_config *ic = &lim->cfg->identity;
    const char *remote = req->remote_addr != NULL ? req->remote_addr : req->client;
    char text[RL_ADDR_TEXT_MAX];

    if (remote == NULL || remote[0] == '\0') {
        limiter_set_error(lim, "no client identity");
        return -1;
    }
    if (rl_identity_resolve(ic, remote, rl_http_header(req, rl_identity_header_name(ic)), addr,
                            text) == 0) {
        memcpy(out->client, text, strlen(text) + 1);
        return 1;
    }
    /* Not an address (an embedder's own identity): used as given, digested when long. */
    size_t n = strlen(remote);
    if (n > RL_CLIENT_MAX || (n >= 2 && remote[0] == 'h' && remote[1] == ':'))
        rl_rule_digest(remote, n, out->client);
    else
        memcpy(out->client, remote, n + 1);
    return 0;
}

static void limiter_refuse(rl_decision *out, rl_verdict verdict, int status, const rl_rule *rule)
{
    out->allowed = 0;
    out->verdict = verdict;
    out->status = status;
    out->rule = rule;
}

/* Picks the matching rules and builds their items. Returns how many, or -1 when a rule
 * with on_missing_key = "refuse" refused the request (out says so). */
static int limiter_items(rl_limiter *lim, const rl_request *req, rl_decision *out)
{
    const char *path = req->path != NULL ? req->path : "/";
    size_t n = 0;

    for (size_t i = 0; i < lim->cfg->nrules && n < RL_MAX_MATCH; i++) {
        const rl_rule *rule = &lim->cfg->rules[i];
        char *material = lim->material[n];
        int mlen;

        if (!rl_rule_matches(rule, req, path))
            continue;
        mlen = rl_rule_key(rule, req, out->client, lim->scratch, material);
        if (mlen < 0) {
            if (rule->on_missing_key == RL_MISSING_SKIP || (rule->on_missing_key ==
                                                            RL_MISSING_REFUSE && rule->dry_run))
                continue;
            if (rule->on_missing_key == RL_MISSING_REFUSE) {
                limiter_refuse(out, RL_VERDICT_MISSING_KEY,
                               rule->missing_key_status ? rule->missing_key_status : 400, rule);
                return -1;
            }
            /* Shared: "" cannot be real material (empty parts count as missing). */
            material[0] = '\0';
            mlen = 0;
        }
        size_t nlen = strlen(rule->name);
        char *k = lim->keys[n];
        memcpy(k, rule->name, nlen);
        k[nlen] = LIMITER_KEY_SEP;
        memcpy(k + nlen + 1, material, (size_t)mlen + 1);
        out->results[n].dry_run = rule->dry_run;
        lim->items[n] = (rl_item){.rule = rule, .client = material, .key = k,
                                  .keylen = nlen + 1 + (size_t)mlen, .cost = limiter_cost(req, rule),
                                  .res = &out->results[n]};
        n++;
    }
    return (int)n;
}

int rl_decide(rl_limiter *lim, const rl_request *req, rl_decision *out)
{
    const rl_access_config *ac = &lim->cfg->access;
    uint8_t addr[16];
    int kind;

    memset(out, 0, sizeof(*out));
    out->allowed = 1;
    out->status = 200;
    out->decider = -1;
    lim->errstr[0] = '\0';

    kind = limiter_identity(lim, req, out, addr);
    if (kind < 0)
        return -1;
    if (kind == 1 && rl_cidr_match(ac->deny, ac->ndeny, addr)) {
        limiter_refuse(out, RL_VERDICT_DENYLISTED, 403, NULL);
        return 0;
    }
    if (kind == 1 && rl_cidr_match(ac->allow, ac->nallow, addr)) {
        out->verdict = RL_VERDICT_ALLOWLISTED;
        return 0;
    }

    int matched = limiter_items(lim, req, out);
    if (matched < 0)
        return 0;
    size_t n = (size_t)matched;
    out->nresults = n;
    if (n == 0)
        return 0;

    int64_t now = lim->clock != NULL ? lim->clock(lim->clock_ud) : limiter_wall_ms();
    int r = -1;

    if (lim->redis != NULL) {
        r = rl_redis_decide(lim->redis, lim->items, n, lim->clock != NULL ? now : -1);
        lim->redis_failing = r < 0;
        if (r >= 0)
            out->backend = RL_BACKEND_REDIS;
        else
            limiter_set_error(lim, "redis: %s", rl_redis_errstr(lim->redis));
    }
    if (r < 0) {
        r = rl_shm_decide(lim->shm, lim->items, n, now);
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

    /* The stores fill the results; dry_run is ours to keep. */
    for (size_t i = 0; i < n; i++)
        out->results[i].dry_run = lim->items[i].rule->dry_run;
    out->allowed = r == 1;
    out->decider = limiter_decider(out);
    if (!out->allowed) {
        const rl_rule *rule = out->results[out->decider].rule;
        limiter_refuse(out, RL_VERDICT_LIMITED, rule->status ? rule->status : 429, rule);
        out->retry_after_ms = out->results[out->decider].retry_after_ms;
    }
    return 0;
}
