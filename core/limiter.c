/* limiter.c -- one decision per request, atomic over every matching rule
 *
 * The limiter owns the two stores: the shared-memory table (always open: it is the fallback)
 * and the Redis connection (when configured), with a circuit breaker (failover.c) between
 * them. Per request it finds the client identity (identity.c), canonicalises the path
 * (path.c: once, into a per-handle buffer, unless the caller did), answers deny- and
 * allow-listed clients at once, picks the matching rules in config order and builds one key
 * per rule (rule.c) into per-handle buffers (no allocation on the request path), then:
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
 * The config is borrowed: it must outlive the limiter. Results point at its rules. Opening,
 * closing and the handle's accessors are limiter_open.c's; the handle is limiter_int.h.
 */
#include "fmacros.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "cidr.h"
#include "failover.h"
#include "http.h"
#include "identity.h"
#include "keys.h"
#include "limiter_int.h"
#include "refusal.h"
#include "rule.h"
#include "stats.h"
#include "clock.h"
#include "error.h"

/* A fail-closed refusal says "retry after" at least this long (headers speak seconds). */
#define LIMITER_CLOSED_RETRY_MIN_MS 1000

RL_PRINTF(2, 3) static void limiter_set_error(rl_limiter *lim, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rl_errbuf_vset(lim->errstr, sizeof(lim->errstr), fmt, ap);
    va_end(ap);
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
static int limiter_fallback(rl_limiter *lim, size_t n, int64_t now, rl_decision *out)
{
    rl_item sub[RL_MAX_MATCH];
    size_t closed[RL_MAX_MATCH], nclosed = 0, nsub = 0;
    int r;

    for (size_t i = 0; i < n; i++)
        if (lim->items[i].rule->on_redis_down == RL_REDIS_DOWN_CLOSED &&
            !lim->items[i].rule->dry_run) /* a dry run never refuses */
            closed[nclosed++] = i;
    if (nclosed > 0) {
        int64_t wait = rl_breaker_remaining(&lim->breaker, rl_clock_mono_ms());
        if (wait < LIMITER_CLOSED_RETRY_MIN_MS)
            wait = LIMITER_CLOSED_RETRY_MIN_MS;
        for (size_t k = 0; k < nclosed; k++) {
            const rl_rule *rule = lim->items[closed[k]].rule;
            out->results[closed[k]] = (rl_rule_result){.rule = rule,
                                                       .allowed = 0,
                                                       .limit = rule->count,
                                                       .window_ms = rule->period_ms,
                                                       .remaining = 0,
                                                       .reset_ms = wait,
                                                       .retry_after_ms = wait};
        }
        limiter_keep_only(out, closed, nclosed);
        out->backend = RL_BACKEND_FAIL_CLOSED;
        return 0;
    }

    for (size_t i = 0; i < n; i++) {
        const rl_rule *rule = lim->items[i].rule;
        if (rule->on_redis_down == RL_REDIS_DOWN_OPEN) {
            out->results[i] = (rl_rule_result){.rule = rule,
                                               .allowed = 1,
                                               .limit = rule->count,
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
    r = rl_shm_decide(lim->shm, sub, nsub, lim->clock != NULL ? now : -1);
    lim->shm_failed = r < 0;
    if (r < 0) {
        rl_stats_add(lim->stats, RL_STAT_SHM_ERRORS, 1);
        limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
        return -1;
    }
    for (size_t k = 0; k < nsub; k++) /* report the config's rule, with this host's limit */
        sub[k].res->rule = lim->items[sub[k].res - out->results].rule;
    out->backend = RL_BACKEND_SHM;
    return r;
}

/* Redis did not answer a call the breaker let through (a decision or a probe): counted, the
 * breaker told, and the Redis handle too (its node row shows the breaker), the error kept. */
static void limiter_redis_failed(rl_limiter *lim)
{
    const int64_t now = rl_clock_mono_ms();

    lim->redis_failing = 1;
    rl_stats_add(lim->stats, RL_STAT_REDIS_ERRORS, 1);
    rl_breaker_failure(&lim->breaker, now);
    rl_redis_breaker(lim->redis, rl_breaker_remaining(&lim->breaker, now) > 0);
    limiter_set_error(lim, "redis: %s", rl_redis_errstr(lim->redis));
}

/* Redis answered such a call: the breaker (and the node row) closed. */
static void limiter_redis_answered(rl_limiter *lim)
{
    lim->redis_failing = 0;
    rl_breaker_success(&lim->breaker);
    rl_redis_breaker(lim->redis, 0);
}

/* Asks Redis, through the refusal cache and the breaker. 1 / 0, or -1 when Redis did not
 * decide (out->backend and the results are then untouched but for cache lookups). */
static int limiter_redis(rl_limiter *lim, size_t n, int64_t now, rl_decision *out)
{
    size_t hits[RL_MAX_MATCH];
    int r = rl_refusal_check(lim->shm, lim->items, n, now, hits);

    if (r > 0) {
        limiter_keep_only(out, hits, (size_t)r);
        out->backend = RL_BACKEND_REFUSAL_CACHE;
        return 0;
    }
    if (!rl_breaker_allow(&lim->breaker, rl_clock_mono_ms())) {
        lim->redis_failing = 1;
        limiter_set_error(lim, "redis: circuit breaker open after: %s",
                          rl_redis_errstr(lim->redis));
        return -1;
    }
    r = rl_redis_decide(lim->redis, lim->items, n, lim->clock != NULL ? now : -1);
    if (r < 0) {
        limiter_redis_failed(lim);
        return -1;
    }
    limiter_redis_answered(lim);
    lim->shm_failed = 0;
    out->backend = RL_BACKEND_REDIS;
    if (r == 0)
        rl_refusal_note(lim->shm, lim->items, n, now);
    return r;
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
    const char *remote = req->remote_addr;
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
    if (rl_keys_needs_digest(remote, n))
        rl_keys_digest(remote, n, out->client);
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
static int limiter_items(rl_limiter *lim, const rl_request *req, const char *path, rl_decision *out)
{
    size_t n = 0;

    for (size_t i = 0; i < lim->cfg->nrules && n < RL_MAX_MATCH; i++) {
        const rl_rule *rule = &lim->cfg->rules[i];
        char *material = lim->material[n];
        int mlen;

        int m = rl_rule_matches(rule, req, path);
        if (m == RL_RULE_REGEX_LIMIT) { /* not matched; counted here, logged by the caller */
            rl_stats_add(lim->stats, RL_STAT_REGEX_LIMIT, 1);
            out->regex_limited = rule;
        }
        if (m != 1)
            continue;
        mlen = rl_rule_key(rule, req, out->client, lim->scratch, material);
        if (mlen < 0) {
            if (rule->on_missing_key == RL_MISSING_SKIP ||
                (rule->on_missing_key == RL_MISSING_REFUSE && rule->dry_run))
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
        char *k = lim->keys[n];
        size_t klen = rl_keys_shm(rule->key_id, rule->key_id_len, material, (size_t)mlen, k);
        out->results[n].dry_run = rule->dry_run;
        lim->items[n] = (rl_item){.rule = rule,
                                  .client = material,
                                  .key = k,
                                  .keylen = klen,
                                  .cost = limiter_cost(req, rule),
                                  .res = &out->results[n]};
        n++;
    }
    return (int)n;
}

/* Asks the stores for the n items: Redis and its fallbacks, or the table alone. 1 admitted,
 * 0 refused, or -1 when no store could decide (then out admits, unchecked, and says so). */
static int limiter_stores(rl_limiter *lim, size_t n, rl_decision *out)
{
    int r;

    if (lim->redis != NULL) {
        /* `now` serves the refusal cache, and the stores when a test clock is set. */
        int64_t now = lim->clock != NULL ? lim->clock(lim->clock_ud) : rl_clock_real_ms();
        r = limiter_redis(lim, n, now, out);
        if (r < 0)
            r = limiter_fallback(lim, n, now, out);
    } else {
        /* -1 without a test clock: the table reads the clock under its locks, so decisions
         * on one key are made in clock order (backend.h). No clock read here: nothing else
         * on this path needs one. */
        r = rl_shm_decide(lim->shm, lim->items, n,
                          lim->clock != NULL ? lim->clock(lim->clock_ud) : -1);
        lim->shm_failed = r < 0;
        out->backend = RL_BACKEND_SHM;
        if (r < 0) {
            rl_stats_add(lim->stats, RL_STAT_SHM_ERRORS, 1);
            limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
        }
    }
    if (r < 0) {
        rl_stats_add(lim->stats, RL_STAT_UNCHECKED, 1);
        /* No store could decide: admit (fail open) and say why; the request is not the
         * client's fault, and refusing everyone would turn a fault into an outage. */
        memset(out->results, 0, sizeof(out->results));
        out->nresults = 0;
        out->backend = RL_BACKEND_NONE;
    }
    return r;
}

static int limiter_decide(rl_limiter *lim, const rl_request *req, rl_decision *out)
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
    /* The one place a raw path becomes the canonical one every rule is matched on; a path
     * that has none (%2F, %00, bad escapes, control bytes, too long) is refused, never
     * matched in some other form that a rule could miss. */
    const char *path = req->path != NULL ? req->path : "/";
    if (!req->path_canonical) {
        rl_path_status st = rl_path_canon(path, 0, lim->path, NULL);
        if (st != RL_PATH_OK) {
            limiter_refuse(out, RL_VERDICT_BAD_PATH, rl_path_http_status(st), NULL);
            return 0;
        }
        path = lim->path;
    }
    if (kind == 1 && rl_cidr_match(ac->deny, ac->ndeny, addr)) {
        limiter_refuse(out, RL_VERDICT_DENYLISTED, 403, NULL);
        return 0;
    }
    if (kind == 1 && rl_cidr_match(ac->allow, ac->nallow, addr)) {
        out->verdict = RL_VERDICT_ALLOWLISTED;
        return 0;
    }

    int matched = limiter_items(lim, req, path, out);
    if (matched < 0)
        return 0;
    size_t n = (size_t)matched;
    out->nresults = n;
    if (n == 0)
        return 0;

    int r = limiter_stores(lim, n, out);
    if (r < 0)
        return 0;

    /* The stores fill the results (the fallbacks may keep only some); dry_run is ours. */
    for (size_t i = 0; i < out->nresults; i++)
        out->results[i].dry_run = out->results[i].rule->dry_run;
    out->allowed = r == 1;
    out->decider = limiter_decider(out);
    if (!out->allowed) {
        const rl_rule *rule = out->results[out->decider].rule;
        limiter_refuse(out, RL_VERDICT_LIMITED, rule->status ? rule->status : 429, rule);
        out->retry_after_ms = out->results[out->decider].retry_after_ms;
    }
    return 0;
}

/* What one rule result adds to the pool's counters. */
static void limiter_count_result(rl_limiter *lim, const rl_decision *d, const rl_rule_result *r)
{
    const rl_rule *rule = r->rule;
    int slot = lim->slots[rule - lim->cfg->rules];

    if (d->allowed)
        rl_stats_rule_add(lim->stats, slot, RL_STAT_ALLOWED);
    else if (!r->allowed && !r->dry_run)
        rl_stats_rule_add(lim->stats, slot, RL_STAT_REFUSED);
    if (!r->allowed && r->dry_run)
        rl_stats_rule_add(lim->stats, slot, RL_STAT_DRY_RUN_REFUSED);
    switch (d->backend) {
    case RL_BACKEND_REFUSAL_CACHE:
        rl_stats_rule_add(lim->stats, slot, RL_STAT_REFUSAL_CACHE);
        break;
    case RL_BACKEND_FAIL_CLOSED: rl_stats_rule_add(lim->stats, slot, RL_STAT_FAIL_CLOSED); break;
    case RL_BACKEND_SHM:
    case RL_BACKEND_FAIL_OPEN:
        if (lim->redis == NULL) /* shm is the store, not a fallback */
            break;
        rl_stats_rule_add(lim->stats, slot,
                          rule->on_redis_down == RL_REDIS_DOWN_OPEN ? RL_STAT_FAIL_OPEN
                                                                    : RL_STAT_FALLBACK);
        break;
    default: break;
    }
}

static void limiter_count(rl_limiter *lim, const rl_decision *d, uint64_t us)
{
    rl_stats_add(lim->stats, RL_STAT_REQUESTS, 1);
    rl_stats_latency(lim->stats, us);
    if (d->verdict == RL_VERDICT_DENYLISTED)
        rl_stats_add(lim->stats, RL_STAT_ACCESS_DENIED, 1);
    else if (d->verdict == RL_VERDICT_ALLOWLISTED)
        rl_stats_add(lim->stats, RL_STAT_ACCESS_ALLOWED, 1);
    else if (d->verdict == RL_VERDICT_MISSING_KEY)
        rl_stats_add(lim->stats, RL_STAT_MISSING_KEY, 1);
    for (size_t i = 0; i < d->nresults; i++)
        limiter_count_result(lim, d, &d->results[i]);
}

/* The decision, timed and counted in the pool's statistics (two clock reads and a few
 * relaxed atomic adds; nothing for a sandbox). */
int rl_decide(rl_limiter *lim, const rl_request *req, rl_decision *out)
{
    uint64_t start = lim->stats != NULL ? rl_clock_mono_us() : 0;
    int rc = limiter_decide(lim, req, out);

    if (rc == 0 && lim->stats != NULL)
        limiter_count(lim, out, rl_clock_mono_us() - start);
    return rc;
}

void rl_limiter_stats(const rl_limiter *lim, rl_stats *out)
{
    memset(out, 0, sizeof *out);
    if (lim->stats == NULL)
        return;
    rl_stats_read(lim->stats, out);
    out->nrules = lim->cfg->nrules < RL_MAX_RULES ? lim->cfg->nrules : RL_MAX_RULES;
    for (size_t i = 0; i < out->nrules; i++) {
        out->rules[i].rule = &lim->cfg->rules[i];
        out->rules[i].slotted = lim->slots[i] >= 0;
        rl_stats_read_slot(lim->stats, lim->slots[i], out->rules[i].c);
    }
}

int rl_limiter_table_stats(rl_limiter *lim, rl_table_stats *out)
{
    rl_shm_stat st;

    if (rl_shm_stats(lim->shm, &st) < 0) {
        limiter_set_error(lim, "shm: %s", rl_shm_errstr(lim->shm));
        return -1;
    }
    *out = (rl_table_stats){.capacity = st.capacity,
                            .entries = st.entries,
                            .evictions = st.evictions,
                            .expired_reclaimed = st.expired_reclaimed,
                            .repairs = st.repairs};
    return 0;
}

const char *rl_limiter_breaker_state(const rl_limiter *lim)
{
    if (lim->redis == NULL)
        return "closed";
    switch (lim->breaker.state) {
    case RL_BREAKER_OPEN: return "open";
    case RL_BREAKER_HALF_OPEN: return "half-open";
    default: return "closed";
    }
}

size_t rl_limiter_redis_nodes(const rl_limiter *lim, rl_redis_node_stats *out, size_t cap)
{
    return lim->stats != NULL ? rl_stats_nodes_read(lim->stats, out, cap) : 0;
}

int rl_limiter_redis_sentinel(const rl_limiter *lim, rl_redis_sentinel_stats *out)
{
    if (lim->stats == NULL) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    return rl_stats_sentinel_read(lim->stats, out);
}

void rl_limiter_probe(rl_limiter *lim)
{
    if (lim->redis == NULL)
        return;
    if (!rl_breaker_allow(&lim->breaker, rl_clock_mono_ms())) {
        lim->redis_failing = 1; /* open: Redis is being skipped */
        return;
    }
    if (rl_redis_ping(lim->redis) < 0) {
        limiter_redis_failed(lim);
        return;
    }
    limiter_redis_answered(lim);
}
