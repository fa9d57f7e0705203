/* limiter_open.c -- a limiter's life: open (the stores, the shares, the statistics slots),
 * close, and what the handle says (errors, health, the table's plan, the open's note)
 *
 * The table is sized from the configuration (the longest key, the most state words of any
 * rule or its host share), so rl_limiter_shm_plan and rl_limiter_open agree on it; the plan
 * and the note speak of the statistics segment too (another build's is replaced: stats.c).
 * The deciding is limiter.c's.
 */
#include "fmacros.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algo.h"
#include "keys.h"
#include "limiter_int.h"

/* One rule's share: count and burst / hosts, at least 1; strings stay borrowed. */
static void limiter_share(const rl_rule *rule, int64_t hosts, rl_rule *r)
{
    *r = *rule;
    r->count = r->count / hosts > 0 ? r->count / hosts : 1;
    r->burst = r->burst / hosts > 0 ? r->burst / hosts : 1;
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
    for (size_t i = 0; i < cfg->nrules; i++)
        limiter_share(&cfg->rules[i], hosts, &lim->shares[i]);
    return 0;
}

/* The longest key rl_decide can build: the table's slots are sized from it, so short rule
 * names make a smaller table (shm.c: bytes per key). */
static size_t limiter_key_max(const rl_config *cfg)
{
    size_t longest = 0;
    for (size_t i = 0; i < cfg->nrules; i++) {
        size_t len = cfg->rules[i].key_id_len;
        longest = len > longest ? len : longest;
    }
    return rl_keys_shm_max(longest);
}

/* The state words the table keeps per key: the most any rule's algorithm needs, its shm
 * fallback share's too (a sliding_log's share can need more words than the rule: 200 is
 * bucketed, 35 words, its half an exact log of 100, 52), and the refusal cache's entries
 * when Redis is on. So a GCRA-only config keeps 2 words a key, and only a config with a
 * sliding_log rule pays for its log in every slot. */
static size_t limiter_state_words(const rl_config *cfg)
{
    size_t words = cfg->redis.enabled ? RL_SHM_RAW_WORDS : 1;
    for (size_t i = 0; i < cfg->nrules; i++) {
        rl_rule share;
        size_t w = rl_algo_state_words(&cfg->rules[i]);
        words = w > words ? w : words;
        if (cfg->redis.enabled && cfg->redis.hosts > 1) {
            limiter_share(&cfg->rules[i], cfg->redis.hosts, &share);
            w = rl_algo_state_words(&share);
            words = w > words ? w : words;
        }
    }
    return words;
}

const char *rl_limiter_shm_note(const rl_limiter *lim)
{
    return lim->note;
}

int rl_limiter_shm_plan(const rl_config *cfg, char *out, size_t len)
{
    rl_error err;
    int stats, rc = rl_shm_plan(cfg->shm.name, cfg->shm.capacity, limiter_key_max(cfg),
                                limiter_state_words(cfg), &cfg->shm, out, len);

    if (rc < 0)
        return rc;
    /* The statistics segment of another build is replaced (its counters restart); one this
     * user may not open, replace or create would refuse the start. */
    stats = rl_stats_probe(cfg->shm.name, &cfg->shm, &err);
    if (stats < 0) {
        snprintf(out, len, "%s: a start would fail", err.text);
        return -1;
    }
    if (stats > 0) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "; %s", err.text);
    }
    return rc;
}

/* The one line rl_limiter_shm_note gives: what the open did to the table, then to the
 * statistics (each "" when it found them fit). */
static void limiter_note(rl_limiter *lim)
{
    const char *t = rl_shm_note(lim->shm), *s = lim->stats != NULL ? rl_stats_note(lim->stats) : "";

    snprintf(lim->note, sizeof lim->note, "%s%s%s", t, *t != '\0' && *s != '\0' ? "; " : "", s);
}

typedef struct limiter_census {
    const rl_config *cfg;
    int64_t *live, *stale;
} limiter_census;

static void limiter_census_key(const char *key, size_t len, void *ud)
{
    limiter_census *c = ud;
    size_t idlen = rl_keys_id_len(key, len);
    const char *colon = memchr(key, ':', idlen);
    size_t nlen = colon != NULL ? (size_t)(colon - key) : 0;

    for (size_t i = 0; i < c->cfg->nrules && idlen > 0; i++) {
        const rl_rule *r = &c->cfg->rules[i];
        if (idlen == r->key_id_len && memcmp(key, r->key_id, idlen) == 0)
            c->live[i]++;
        else if (nlen > 0 && nlen == strlen(r->name) && memcmp(key, r->name, nlen) == 0)
            c->stale[i]++;
    }
}

int rl_limiter_shm_census(const rl_config *cfg, int64_t *live, int64_t *stale)
{
    limiter_census c = {cfg, live, stale};
    for (size_t i = 0; i < cfg->nrules; i++)
        live[i] = stale[i] = 0;
    return rl_shm_scan(cfg->shm.name, limiter_census_key, &c);
}

/* The pool's statistics segment and each rule's slot in it. 0, or -1 with err. */
static int limiter_open_stats(rl_limiter *lim, rl_error *err)
{
    const rl_config *cfg = lim->cfg;

    lim->stats = rl_stats_open(cfg->shm.name, &cfg->shm, err);
    if (lim->stats == NULL)
        return -1;
    lim->slots = calloc(cfg->nrules > 0 ? cfg->nrules : 1, sizeof *lim->slots);
    if (lim->slots == NULL) {
        snprintf(err->text, sizeof(err->text), "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->nrules; i++)
        lim->slots[i] = rl_stats_slot(lim->stats, cfg->rules[i].name);
    return 0;
}

/* A limiter on the table `shm_name` of `capacity` keys; a sandbox has no Redis and no
 * statistics. */
static rl_limiter *limiter_open(const rl_config *cfg, const char *shm_name, int64_t capacity,
                                int sandbox, rl_error *err)
{
    rl_limiter *lim = calloc(1, sizeof(*lim));
    if (lim == NULL) {
        snprintf(err->text, sizeof(err->text), "out of memory");
        return NULL;
    }
    lim->cfg = cfg;
    /* A sandbox's table is private (unlinked once mapped): it keeps the process's owner. */
    lim->shm = rl_shm_open_owned(shm_name, capacity, limiter_key_max(cfg), limiter_state_words(cfg),
                                 sandbox ? NULL : &cfg->shm, err);
    if (lim->shm == NULL) {
        free(lim);
        return NULL;
    }
    if (!sandbox && limiter_open_stats(lim, err) < 0) {
        rl_limiter_close(lim);
        return NULL;
    }
    limiter_note(lim);
    if (cfg->redis.enabled && !sandbox) {
        /* A cluster router keeps one breaker per master (redis_cluster.c): a dead master
         * must not stop the decisions the others make, so this one never opens then. */
        rl_breaker_init(&lim->breaker,
                        cfg->redis.ncluster > 0 ? INT_MAX : cfg->redis.breaker_failures,
                        cfg->redis.breaker_open_ms, cfg->redis.breaker_open_max_ms);
        lim->redis = rl_redis_new(&cfg->redis);
        if (lim->redis == NULL || limiter_make_shares(lim) < 0) {
            snprintf(err->text, sizeof(err->text), "out of memory");
            rl_limiter_close(lim);
            return NULL;
        }
        rl_redis_set_stats(lim->redis, lim->stats);
    }
    return lim;
}

rl_limiter *rl_limiter_open(const rl_config *cfg, rl_error *err)
{
    return limiter_open(cfg, cfg->shm.name, cfg->shm.capacity, 0, err);
}

/* The sandbox's table: "/rl-sandbox-PID-N", made with O_EXCL (rl_shm_open creates it: no
 * live process has that name) and removed once mapped, so no other process can ever open it
 * and it vanishes with the handle. */
#define LIMITER_SANDBOX_CAPACITY 1024
rl_limiter *rl_limiter_open_sandbox(const rl_config *cfg, rl_error *err)
{
    static unsigned serial;
    char name[256];
    rl_limiter *lim;

    snprintf(name, sizeof name, "/rl-sandbox-%ld-%u", (long)getpid(), serial++);
    lim = limiter_open(cfg, name, LIMITER_SANDBOX_CAPACITY, 1, err);
    if (lim != NULL)
        rl_shm_unlink(name);
    return lim;
}

void rl_limiter_close(rl_limiter *lim)
{
    if (lim == NULL)
        return;
    rl_redis_free(lim->redis);
    rl_shm_close(lim->shm);
    rl_stats_close(lim->stats);
    free(lim->slots);
    free(lim->shares);
    free(lim);
}

#ifdef RL_TESTING
void rl_limiter_set_clock(rl_limiter *lim, rl_clock_fn fn, void *ud)
{
    lim->clock = fn;
    lim->clock_ud = ud;
}
#endif

const char *rl_backend_name(rl_backend_kind kind)
{
    switch (kind) {
    case RL_BACKEND_SHM: return "shm";
    case RL_BACKEND_REDIS: return "redis";
    case RL_BACKEND_REFUSAL_CACHE: return "refusal-cache";
    case RL_BACKEND_FAIL_OPEN: return "fail-open";
    case RL_BACKEND_FAIL_CLOSED: return "fail-closed";
    default: return "none";
    }
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
