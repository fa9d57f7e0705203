/* shm_decide.c -- decisions on the shared-memory table, raw entries and stats
 *
 * A decision locks every stripe its keys live in, in ascending order (no deadlock), decides
 * each rule on the stored state with rl_algo_decide, and stores every new state only when the
 * whole request is admitted (a repaired state is stored even on a refusal; algo.h). A request
 * of one rule, the most common, takes shm_decide_one: the same steps for n = 1, without the
 * batch's loops and arrays (the shared test vectors hold both to the same results). Raw
 * entries serve the refusal cache (refusal.c). Layout and invariants: shm.c.
 */
#include "fmacros.h"

#include "shm_int.h"
#include "clock.h"

/* ---- decisions ------------------------------------------------------------------------- */

static int64_t shm_expiry(int64_t now_ms, int64_t ttl_ms)
{
    return now_ms > INT64_MAX - ttl_ms ? INT64_MAX : now_ms + ttl_ms;
}

/* Checks item i; fills *words, its state words (looked up once per decision). */
static inline int shm_check_item(rl_shm *shm, const rl_item *it, size_t i, size_t *words)
{
    if (it->cost < 1) {
        rl_shm_seterr(shm, "shm: item %zu: cost %lld must be >= 1", i, (long long)it->cost);
        return -1;
    }
    if (it->rule == NULL || it->res == NULL || (it->key == NULL && it->keylen != 0)) {
        rl_shm_seterr(shm, "shm: item %zu: missing rule, result or key", i);
        return -1;
    }
    if (it->keylen > shm->key_max) {
        rl_shm_seterr(shm, "shm: item %zu: key of %zu bytes, at most %u (this table's key_max)", i,
                      it->keylen, shm->key_max);
        return -1;
    }
    /* A log cut short would forget admissions: refuse to decide rather than admit. */
    *words = rl_algo_state_words(it->rule);
    if (*words > shm->state_words) {
        rl_shm_seterr(shm, "shm: item %zu: rule \"%s\" keeps %zu state words, this table %u", i,
                      it->rule->name, *words, shm->state_words);
        return -1;
    }
    return 0;
}

/* Distinct stripes of a batch, ascending: the one lock order every process follows. */
static size_t shm_lock_order(const uint32_t *stripe, size_t n, uint32_t *order)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = m;
        int dup = 0;
        for (size_t k = 0; k < m; k++)
            dup |= order[k] == stripe[i];
        if (dup)
            continue;
        while (j > 0 && order[j - 1] > stripe[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = stripe[i];
        m++;
    }
    return m;
}

/* A refused request charges no rule: re-decide the rules that would have admitted it at cost
 * 0 (a probe, see algo.h), so their results describe the state as it stays. */
static void shm_report_uncharged(rl_item *items, size_t n, const uint32_t *found,
                                 const rl_state *cur, int64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        rl_state unused;
        int64_t unused_ttl;
        if (!items[i].res->allowed)
            continue;
        rl_algo_decide(items[i].rule, found[i] != SHM_NIL ? &cur[i] : NULL, now_ms, 0, &unused,
                       &unused_ttl, items[i].res);
    }
}

/* Copies a rule's state words between a slot and an rl_state: shm_check_item made sure the
 * rule's words fit the table's (words <= state_words), which rl_shm_load_state and
 * rl_shm_store_state check again for their other callers. */
static inline void shm_copy_words(int64_t *restrict to, const int64_t *restrict from, size_t words)
{
    size_t k = 0;

    /* The first two apart: every rule keeps at least 2 words, most exactly 2 (the plain loop
     * alone was vectorised behind overlap and length checks that cost more than the copy). */
    if (words >= 2) {
        to[0] = from[0];
        to[1] = from[1];
        k = 2;
    }
    for (; k < words; k++)
        to[k] = from[k];
}

/* rl_shm_decide for one rule (the most common request): the same steps as the batch below,
 * with n = 1 (one stripe, no lock order, nothing to pin, no other rule to report uncharged),
 * without its loops and arrays. */
static int shm_decide_one(rl_shm *shm, rl_item *it, size_t words, int64_t now_ms)
{
    const char *key = it->keylen ? it->key : "";
    const uint64_t h = rl_shm_hash(shm, key, it->keylen);
    uint32_t s = rl_shm_stripe_of(shm, h), at;
    rl_state cur, next;
    const rl_state *in = NULL; /* &cur when the key is live */
    shm_slot *sl = NULL;       /* the key's slot, expired or not */
    int64_t ttl;
    int repair, allowed;

    if (rl_shm_lock(shm, s) < 0)
        return -1;
    shm->stripes[s].dirty = 1;
#ifdef RL_TESTING
    if (shm->die_in_lock)
        rl_shm_test_die(shm, &s, 1);
#endif
    if (now_ms < 0)
        now_ms = rl_clock_real_ms(); /* under the lock: decisions on a key in clock order */

    /* The slot found stands until the store below: a repair of a damaged chain happens in
     * the find itself, and nothing between the two changes the stripe's structure. */
    at = rl_shm_find(shm, s, h, key, it->keylen);
    if (at != SHM_NIL) {
        sl = rl_shm_slot_at(shm, at);
        if (!rl_shm_expired(sl, now_ms)) {
            shm_copy_words(cur.w, rl_shm_words(sl), words);
            in = &cur;
        }
    }
    repair = rl_algo_decide(it->rule, in, now_ms, it->cost, &next, &ttl, it->res) & RL_ALGO_REPAIR;
    allowed = it->res->allowed != 0 || it->rule->dry_run;

    /* Stored when this rule admitted (then so did the request), or to keep a repair. */
    if (!it->res->allowed && !(repair && in != NULL)) {
        if (in != NULL)
            sl->ref = 1;
    } else {
        if (sl == NULL) {
            at = rl_shm_insert(shm, s, h, key, it->keylen, now_ms, NULL, 0);
            sl = at != SHM_NIL ? rl_shm_slot_at(shm, at) : NULL;
        } else {
            sl->ref = 1;
        }
        if (sl != NULL) { /* else counted in insert_failures; the decision stands */
            shm_copy_words(rl_shm_words(sl), next.w, words);
            sl->expires_ms = shm_expiry(now_ms, ttl);
        }
    }
    shm->stripes[s].dirty = 0;
    rl_shm_unlock(shm, s);
    return allowed;
}

/* rl_shm_decide for a batch of checked items (words: their state words). Kept in one piece
 * on purpose: its three phases (lock every stripe in order, decide every item on the stored
 * states, store the admitted ones) share the batch's arrays under the same locks, and the
 * atomicity of a decision over several rules is read here at one glance; split, each part
 * would take ten of those arrays as parameters. */
__attribute__((noinline)) static int shm_decide_batch(rl_shm *shm, rl_item *items, size_t n,
                                                      const size_t *words, int64_t now_ms)
{
    uint64_t hash[RL_MAX_MATCH];
    uint32_t stripe[RL_MAX_MATCH], order[RL_MAX_MATCH], found[RL_MAX_MATCH];
    uint32_t slot[RL_MAX_MATCH];   /* the key's slot as found, expired or not (found: live) */
    uint32_t pinned[RL_MAX_MATCH]; /* slots this batch stored: no insert may evict them */
    rl_state cur[RL_MAX_MATCH], next[RL_MAX_MATCH];
    int64_t ttl[RL_MAX_MATCH];
    int repair[RL_MAX_MATCH];
    size_t nlocked, npinned = 0;
    int allowed = 1, stable;
    uint64_t rebuilds;

    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        hash[i] = rl_shm_hash(shm, key, items[i].keylen);
        stripe[i] = rl_shm_stripe_of(shm, hash[i]);
    }
    nlocked = shm_lock_order(stripe, n, order);
    for (size_t k = 0; k < nlocked; k++) {
        if (rl_shm_lock(shm, order[k]) < 0) {
            while (k-- > 0) {
                shm->stripes[order[k]].dirty = 0;
                rl_shm_unlock(shm, order[k]);
            }
            return -1;
        }
        shm->stripes[order[k]].dirty = 1;
    }
#ifdef RL_TESTING
    if (shm->die_in_lock)
        rl_shm_test_die(shm, order, nlocked);
#endif
    if (now_ms < 0)
        now_ms = rl_clock_real_ms(); /* under the locks: decisions on a key in clock order */

    /* Decide every rule on the stored states, changing nothing yet. */
    rebuilds = shm->rebuilds;
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        shm_slot *sl = NULL;

        found[i] = slot[i] = rl_shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        if (found[i] != SHM_NIL) {
            sl = rl_shm_slot_at(shm, found[i]);
            if (rl_shm_expired(sl, now_ms)) {
                found[i] = SHM_NIL;
                sl = NULL;
            } else {
                rl_shm_load_state(shm, sl, &cur[i], words[i]);
            }
        }
        repair[i] = rl_algo_decide(items[i].rule, sl != NULL ? &cur[i] : NULL, now_ms,
                                   items[i].cost, &next[i], &ttl[i], items[i].res) &
                    RL_ALGO_REPAIR;
        allowed &= items[i].res->allowed != 0 || items[i].rule->dry_run;
    }
    if (!allowed)
        shm_report_uncharged(items, n, found, cur, now_ms);

    /* Admitted: store every admitting item (a dry run may refuse). Refused: store none (but a
     * repaired one, see algo.h), and mark the keys used, so a key that is being refused is not
     * the one evicted (that would hand it a full bucket). The slots found above stand until a
     * rebuild or an insert changes the stripes' structure (an insert may reclaim an expired
     * entry, a rebuild free a damaged one); from then on each key is looked up again. */
    stable = shm->rebuilds == rebuilds;
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        uint32_t at;
        shm_slot *sl;

        if (!(allowed && items[i].res->allowed) && !(repair[i] && found[i] != SHM_NIL)) {
            if (found[i] != SHM_NIL)
                rl_shm_slot_at(shm, found[i])->ref = 1;
            continue;
        }
        /* Looked up again once the structure changed: an earlier insert of this batch may
         * have reclaimed an expired entry (never one of this batch's: those are pinned). */
        at = stable ? slot[i] : rl_shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        if (at == SHM_NIL) {
            at = rl_shm_insert(shm, stripe[i], hash[i], key, items[i].keylen, now_ms, pinned,
                               npinned);
            stable = 0;
        } else
            rl_shm_slot_at(shm, at)->ref = 1;
        if (at == SHM_NIL)
            continue; /* counted in insert_failures; the decision stands */
        pinned[npinned++] = at;
        sl = rl_shm_slot_at(shm, at);
        rl_shm_store_state(shm, sl, &next[i], words[i]);
        sl->expires_ms = shm_expiry(now_ms, ttl[i]);
    }

    for (size_t k = nlocked; k-- > 0;) {
        shm->stripes[order[k]].dirty = 0;
        rl_shm_unlock(shm, order[k]);
    }
    return allowed;
}

int rl_shm_decide(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms)
{
    size_t words[RL_MAX_MATCH];

    /* One rule, the most common request: the batch's steps without its loops and arrays. */
    if (n == 1) {
        if (shm_check_item(shm, items, 0, &words[0]) < 0)
            return -1;
        return shm_decide_one(shm, items, words[0], now_ms);
    }
    if (n > RL_MAX_MATCH) {
        rl_shm_seterr(shm, "shm: %zu rules in one decision, at most %d", n, RL_MAX_MATCH);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (shm_check_item(shm, &items[i], i, &words[i]) < 0)
            return -1;
    return shm_decide_batch(shm, items, n, words, now_ms);
}

/* ---- raw entries (the refusal cache, refusal.c) ---------------------------------------- */

/* One key, one stripe lock: the checks and the locking of rl_shm_get and rl_shm_put. */
static int shm_raw_lock(rl_shm *shm, const char *key, size_t len, uint64_t *h, uint32_t *s)
{
    if (len > shm->key_max || (key == NULL && len != 0)) {
        rl_shm_seterr(shm, "shm: key of %zu bytes, at most %u (this table's key_max)", len,
                      shm->key_max);
        return -1;
    }
    *h = rl_shm_hash(shm, key, len);
    *s = rl_shm_stripe_of(shm, *h);
    if (rl_shm_lock(shm, *s) < 0)
        return -1;
    shm->stripes[*s].dirty = 1;
    return 0;
}

static void shm_raw_unlock(rl_shm *shm, uint32_t s)
{
    shm->stripes[s].dirty = 0;
    rl_shm_unlock(shm, s);
}

int rl_shm_get(rl_shm *shm, const char *key, size_t len, int64_t now_ms, rl_state *out)
{
    uint64_t h;
    uint32_t s, i;
    int live;

    if (shm_raw_lock(shm, key, len, &h, &s) < 0)
        return -1;
    i = rl_shm_find(shm, s, h, key, len);
    live = i != SHM_NIL && !rl_shm_expired(rl_shm_slot_at(shm, i), now_ms);
    if (live)
        rl_shm_load_state(shm, rl_shm_slot_at(shm, i), out, RL_SHM_RAW_WORDS);
    shm_raw_unlock(shm, s);
    return live;
}

int rl_shm_put(rl_shm *shm, const char *key, size_t len, const rl_state *st, int64_t now_ms,
               int64_t ttl_ms)
{
    uint64_t h;
    uint32_t s, i;

    if (shm_raw_lock(shm, key, len, &h, &s) < 0)
        return -1;
    i = rl_shm_find(shm, s, h, key, len);
    if (i == SHM_NIL)
        i = rl_shm_insert(shm, s, h, key, len, now_ms, NULL, 0);
    else
        rl_shm_slot_at(shm, i)->ref = 1;
    if (i != SHM_NIL) {
        rl_shm_store_state(shm, rl_shm_slot_at(shm, i), st, RL_SHM_RAW_WORDS);
        rl_shm_slot_at(shm, i)->expires_ms = shm_expiry(now_ms, ttl_ms);
    }
    shm_raw_unlock(shm, s);
    return 0;
}

int rl_shm_stats(rl_shm *shm, rl_shm_stat *out)
{
    int64_t used = 0;

    for (uint32_t s = 0; s < shm->nstripes; s++) {
        if (rl_shm_lock(shm, s) < 0)
            return -1;
        used += shm->stripes[s].used;
        rl_shm_unlock(shm, s);
    }
    out->capacity = (int64_t)shm->hdr->capacity;
    out->entries = used;
    out->evictions = (int64_t)atomic_load_explicit(&shm->hdr->evictions, memory_order_relaxed);
    out->expired_reclaimed =
        (int64_t)atomic_load_explicit(&shm->hdr->expired, memory_order_relaxed);
    out->insert_failures =
        (int64_t)atomic_load_explicit(&shm->hdr->insert_failures, memory_order_relaxed);
    out->stripes = shm->nstripes;
    out->repairs = (int64_t)atomic_load_explicit(&shm->hdr->repairs, memory_order_relaxed);
    out->generation = shm->hdr->generation;
    out->key_max = shm->key_max;
    out->state_words = shm->state_words;
    return 0;
}

const char *rl_shm_errstr(const rl_shm *shm)
{
    return shm->errstr;
}
