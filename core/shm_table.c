/* shm_table.c -- one stripe of the shared-memory table: index, eviction, repair, locks
 *
 * Everything here runs with the stripe's lock held (rl_shm_lock), except the geometry. A
 * stripe owns a contiguous run of slots, a bucket array of slot indexes (chained through
 * slot.next, full-key compare), a free list, and a CLOCK hand for eviction. The dirty flag is
 * set before a structural change and cleared after, so a process that died mid-change leaves a
 * stripe that the next lock holder rebuilds from the slots alone (rl_shm_lock, shm_rebuild).
 * The lookup, the key hash and the lock's common path are inline in shm_int.h; their repair
 * and wait paths are here. Layout and invariants: shm.c.
 */
#include "fmacros.h"

#include "shm_int.h"

/* ---- geometry -------------------------------------------------------------------------- */

static size_t shm_align(size_t n)
{
    return (n + SHM_ALIGN - 1) & ~(size_t)(SHM_ALIGN - 1);
}

/* Head, state words, key bytes, rounded to 8 so that every slot's words are aligned. */
static uint32_t shm_slot_size(uint32_t key_max, uint32_t state_words)
{
    return (uint32_t)((sizeof(shm_slot) + 8u * state_words + key_max + 7u) & ~7u);
}

/* The longest key a slot made for key_max and state_words holds: key_max plus what rounding
 * the slot to 8 bytes left over (at most RL_KEY_MAX). Free room, so a table asks for it: a
 * rule name a few bytes longer then still fits the slots in place. */
size_t rl_shm_key_room(size_t key_max, size_t state_words)
{
    size_t room = shm_slot_size((uint32_t)key_max, (uint32_t)state_words) - sizeof(shm_slot) -
                  8u * state_words;
    return room < RL_KEY_MAX ? room : RL_KEY_MAX;
}

int rl_shm_geometry(int64_t capacity, size_t key_max, size_t state_words, shm_geom *g)
{
    uint64_t share, nb = 1, size;

    if (capacity < RL_SHM_CAPACITY_MIN || capacity > RL_SHM_CAPACITY_MAX || key_max < 1 ||
        key_max > RL_KEY_MAX || state_words < 1 || state_words > RL_STATE_WORDS)
        return -1;
    g->slot_size = shm_slot_size((uint32_t)key_max, (uint32_t)state_words);
    g->nstripes = SHM_STRIPES_MAX;
    while (g->nstripes > 1 && capacity / g->nstripes < SHM_STRIPE_MIN_SLOTS)
        g->nstripes /= 2;
    share = ((uint64_t)capacity + g->nstripes - 1) / g->nstripes;
    while (nb < share)
        nb *= 2;
    g->nbuckets = (uint32_t)nb;

    size = shm_align(sizeof(shm_header));
    g->stripes_off = (size_t)size;
    size += (uint64_t)g->nstripes * sizeof(shm_stripe);
    g->buckets_off = (size_t)size;
    size += (uint64_t)g->nstripes * g->nbuckets * sizeof(uint32_t);
    size = shm_align((size_t)size);
    g->slots_off = (size_t)size;
    size += (uint64_t)capacity * g->slot_size;
    if (size > SIZE_MAX || size > (uint64_t)INT64_MAX)
        return -1;
    g->size = (size_t)size;
    return 0;
}

size_t rl_shm_size(int64_t capacity, size_t key_max, size_t state_words)
{
    shm_geom g;
    return rl_shm_geometry(capacity, key_max, state_words, &g) == 0 ? g.size : 0;
}

void rl_shm_bind(rl_shm *shm, unsigned char *base, size_t size, const shm_geom *g)
{
    shm->base = base;
    shm->size = size;
    shm->hdr = (shm_header *)base;
    shm->stripes = (shm_stripe *)(base + g->stripes_off);
    shm->buckets = (uint32_t *)(base + g->buckets_off);
    shm->slots = base + g->slots_off;
    shm->nstripes = g->nstripes;
    shm->nbuckets = g->nbuckets;
    shm->slot_size = g->slot_size;
    /* The first capacity % S stripes own one slot more. */
    for (uint32_t s = 0, first = 0; s < shm->nstripes; s++) {
        shm->span[s].first = first;
        shm->span[s].nslots = (uint32_t)(shm->capacity / shm->nstripes) +
                              ((uint64_t)s < shm->capacity % shm->nstripes);
        first += shm->span[s].nslots;
    }
}

/* ---- one stripe's structures (caller holds the stripe lock) ---------------------------- */

static void shm_rebuild(rl_shm *shm, uint32_t s);

/* A damaged chain rebuilds the stripe (counted in repairs) and is walked again. */
__attribute__((noinline, cold)) uint32_t rl_shm_find_repair(rl_shm *shm, uint32_t s, uint64_t h,
                                                            const char *key, size_t len)
{
    uint32_t i;
    shm_rebuild(shm, s);
    i = rl_shm_find_checked(shm, s, h, key, len);
    return i == SHM_NIL - 1 ? SHM_NIL : i;
}

static void shm_free_push(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    rl_shm_slot_at(shm, i)->next = st->free_head;
    st->free_head = i;
}

/* Takes slot i out of its chain and puts it on the free list. The chain is found by
 * rehashing the key: removals are rare (expiry, eviction), lookups are not, so the hash is
 * not worth 8 bytes a slot. */
/* The link that points at slot i in its chain (or the chain's SHM_NIL end when i is not in
 * it), every index bounds-checked and at most nslots links followed; NULL when damaged. */
static uint32_t *shm_link_to(rl_shm *shm, uint32_t s, uint32_t i)
{
    shm_slot *sl = rl_shm_slot_at(shm, i);
    size_t len = sl->keylen <= shm->key_max ? sl->keylen : 0;
    uint32_t *link = rl_shm_bucket(shm, s, rl_shm_hash(shm, rl_shm_key(shm, sl), len));

    for (uint32_t steps = 0; *link != i && *link != SHM_NIL; steps++) {
        if (!rl_shm_in_stripe(shm, s, *link) || steps >= shm->span[s].nslots)
            return NULL;
        link = &rl_shm_slot_at(shm, *link)->next;
    }
    return link;
}

static void shm_remove(rl_shm *shm, uint32_t s, uint32_t i)
{
    shm_stripe *st = &shm->stripes[s];
    shm_slot *sl = rl_shm_slot_at(shm, i);
    uint32_t *link = shm_link_to(shm, s, i);

    if (link == NULL) {
        shm_rebuild(shm, s);
        if (sl->in_use == 0) /* the rebuild found the slot itself damaged and freed it */
            return;
        link = shm_link_to(shm, s, i); /* it indexed the slot again: unlink it */
    }
    if (link != NULL && *link == i)
        *link = sl->next;
    sl->in_use = 0;
    atomic_signal_fence(memory_order_seq_cst); /* in_use clear before the slot is reused */
    shm_free_push(shm, st, i);
    st->used--;
}

static uint32_t shm_hand_next(const rl_shm *shm, uint32_t s)
{
    shm_stripe *st = &shm->stripes[s];
    uint32_t i = shm->span[s].first + st->hand;
    st->hand = st->hand + 1 < st->fresh ? st->hand + 1 : 0;
    return i;
}

/* Frees one slot when the stripe has none: the first expired or unreferenced slot under the
 * hand, clearing `ref` bits on the way (second chance); after SHM_SWEEP_MAX referenced ones,
 * the slot under the hand whatever its bit. Never a pinned slot (one the current decision
 * stored: a request never evicts its own keys). 0, or -1 when nothing can be evicted. */
static int shm_pinned(uint32_t i, const uint32_t *pinned, size_t npinned)
{
    for (size_t k = 0; k < npinned; k++)
        if (pinned[k] == i)
            return 1;
    return 0;
}

static int shm_evict(rl_shm *shm, uint32_t s, int64_t now_ms, const uint32_t *pinned,
                     size_t npinned)
{
    shm_stripe *st = &shm->stripes[s];

    for (int swept = 0;; swept++) {
        uint32_t i = shm_hand_next(shm, s);
        shm_slot *sl = rl_shm_slot_at(shm, i);
        if (!sl->in_use || shm_pinned(i, pinned, npinned)) {
            if (swept > 2 * (int)st->fresh)
                return -1; /* nothing evictable: cannot happen while nslots >= RL_MAX_MATCH */
            continue;
        }
        if (rl_shm_expired(sl, now_ms)) {
            atomic_fetch_add_explicit(&shm->hdr->expired, 1, memory_order_relaxed);
        } else if (sl->ref && swept < SHM_SWEEP_MAX) {
            sl->ref = 0;
            continue;
        } else {
            atomic_fetch_add_explicit(&shm->hdr->evictions, 1, memory_order_relaxed);
        }
        shm_remove(shm, s, i);
        return 0;
    }
}

/* A new entry for key in stripe s. Reclaims expired entries under the hand first, then takes
 * a free slot, else a never-used one, else evicts. SHM_NIL only if nothing can be evicted. */
uint32_t rl_shm_insert(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len,
                       int64_t now_ms, const uint32_t *pinned, size_t npinned)
{
    shm_stripe *st = &shm->stripes[s];
    uint32_t i;
    shm_slot *sl;

    /* Amortised expiry: the hand moves on over a few slots, taking back the expired ones (it
     * clears no `ref`: that is eviction's job), so that over fresh/2 inserts it has looked
     * at every slot. A just-stored (pinned) slot is never expired: its ttl is >= 1 ms. */
    for (int k = 0; k < SHM_RECLAIM_PER_INSERT && st->fresh > 0; k++) {
        i = shm_hand_next(shm, s);
        sl = rl_shm_slot_at(shm, i);
        if (sl->in_use && rl_shm_expired(sl, now_ms)) {
            shm_remove(shm, s, i);
            atomic_fetch_add_explicit(&shm->hdr->expired, 1, memory_order_relaxed);
        }
    }
    if (st->free_head == SHM_NIL && st->fresh < shm->span[s].nslots)
        shm_free_push(shm, st, shm->span[s].first + st->fresh++);
    if (st->free_head == SHM_NIL &&
        (st->fresh == 0 || shm_evict(shm, s, now_ms, pinned, npinned) < 0)) {
        atomic_fetch_add_explicit(&shm->hdr->insert_failures, 1, memory_order_relaxed);
        return SHM_NIL;
    }

    i = st->free_head;
    if (!rl_shm_in_stripe(shm, s, i) || rl_shm_slot_at(shm, i)->in_use) {
        /* A damaged free list. The rebuilt one holds only free slots of this stripe, so the
         * retry never comes back here: the recursion is one level deep. */
        shm_rebuild(shm, s);
        return rl_shm_insert(shm, s, h, key, len, now_ms, pinned, npinned);
    }
    sl = rl_shm_slot_at(shm, i);
    st->free_head = sl->next;
    sl->keylen = (uint16_t)len;
    sl->ref = 0; /* set by its next use: a key seen once is the first to go */
    memcpy(rl_shm_key(shm, sl), key, len);
    /* The key is complete before in_use says so: crash repair trusts in_use. */
    atomic_signal_fence(memory_order_seq_cst);
    sl->in_use = 1;
    sl->next = *rl_shm_bucket(shm, s, h);
    *rl_shm_bucket(shm, s, h) = i;
    st->used++;
    return i;
}

/* ---- crash repair ---------------------------------------------------------------------- */

/* Is slot sl a key that belongs in stripe s, and not already indexed? Recomputes its hash:
 * nothing of a slot written by a process that died is trusted beyond in_use, key, keylen. */
static int shm_slot_valid(const rl_shm *shm, uint32_t s, shm_slot *sl, uint64_t *h)
{
    if (sl->in_use != 1 || sl->keylen > shm->key_max)
        return 0;
    *h = rl_shm_hash(shm, rl_shm_key(shm, sl), sl->keylen);
    return rl_shm_stripe_of(shm, *h) == s &&
           rl_shm_find_checked(shm, s, *h, rl_shm_key(shm, sl), sl->keylen) == SHM_NIL;
}

/* Rebuilds stripe s's chains and free list from its slots. */
static void shm_rebuild(rl_shm *shm, uint32_t s)
{
    shm_stripe *st = &shm->stripes[s];

    /* The geometry comes from our own capacity (rl_shm_bind), not from the segment. */
    const uint32_t first = shm->span[s].first;
    atomic_fetch_add_explicit(&shm->hdr->repairs, 1, memory_order_relaxed);
    shm->rebuilds++;
    for (uint32_t b = 0; b < shm->nbuckets; b++)
        shm->buckets[(size_t)s * shm->nbuckets + b] = SHM_NIL;
    st->free_head = SHM_NIL;
    st->used = 0;
    if (st->fresh > shm->span[s].nslots)
        st->fresh = shm->span[s].nslots;
    if (st->hand >= st->fresh)
        st->hand = 0;

    /* Backwards, so that the free list hands out low slots first. */
    for (uint32_t i = first + st->fresh; i-- > first;) {
        shm_slot *sl = rl_shm_slot_at(shm, i);
        uint64_t h;
        if (!shm_slot_valid(shm, s, sl, &h)) {
            sl->in_use = 0;
            shm_free_push(shm, st, i);
            continue;
        }
        sl->next = *rl_shm_bucket(shm, s, h);
        *rl_shm_bucket(shm, s, h) = i;
        st->used++;
    }
    /* dirty is left as it is: a rebuild within a decision (a damaged chain or free list met
     * by its find or insert) is followed by the decision's own writes, which a death before
     * the unlock must still have repaired. The lock clears it after a rebuild there. */
}

/* A hint to the CPU that this is a spin-wait loop. */
static void shm_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Spins while the lock is held, at most SHM_SPIN looks: a stripe is held for well under a
 * microsecond, so a waiter that spins usually gets it without the futex sleep and wake-up
 * (two system calls, and the holder's unlock pays one of them) that a contended robust mutex
 * otherwise costs. glibc: the lock word is read, never written, so spinning does not take
 * the line away from the holder; elsewhere a trylock is the look. At most SHM_SPIN looks,
 * ~1000 pauses (tens of microseconds). Returns what the last trylock returned, or EBUSY. */
static int shm_spin_lock(pthread_mutex_t *m)
{
    for (int k = 0, delay = 1; k < SHM_SPIN; k++) {
        /* Backing off (1, 2, 4 .. SHM_SPIN_BACKOFF pauses between looks) lets the holder take
         * the lock again while its lines are still in its cache, instead of handing both
         * lines across at every decision. */
        for (int d = 0; d < delay; d++)
            shm_pause();
        delay = delay < SHM_SPIN_BACKOFF ? delay * 2 : delay;
#ifdef __GLIBC__
        if (__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0)
            continue;
#endif
        int rc = pthread_mutex_trylock(m);
        if (rc != EBUSY)
            return rc;
    }
    return EBUSY;
}

/* rl_shm_lock when the trylock did not simply succeed on a sound stripe (rc: its result):
 * waits, repairs, reports. Out of line, so that the common path (rl_shm_lock, inline in
 * shm_int.h) is a few instructions. */
__attribute__((noinline, cold)) int rl_shm_lock_slow(rl_shm *shm, uint32_t s, int rc)
{
    shm_stripe *st = &shm->stripes[s];

    if (rc == EBUSY)
        rc = shm_spin_lock(&st->lock);
    if (rc == EBUSY) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SHM_LOCK_TIMEOUT_MS / 1000;
        until.tv_nsec += (SHM_LOCK_TIMEOUT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(&st->lock, &until);
    }
    if ((rc == 0 || rc == EOWNERDEAD) &&
        (rl_shm_stripe_bad(shm, s) || (rc == EOWNERDEAD && st->dirty))) {
        shm_rebuild(shm, s);
        st->dirty = 0;
    }
    if (rc == EOWNERDEAD) {
        rc = pthread_mutex_consistent(&st->lock);
        if (rc != 0) /* leaves it ENOTRECOVERABLE: every later locker gets the error */
            pthread_mutex_unlock(&st->lock);
    }
    if (rc != 0) {
        rl_shm_seterr(shm, "shm \"%s\": cannot lock stripe %u: %s%s", shm->name, s, strerror(rc),
                      rc == ENOTRECOVERABLE ? "; remove the segment and restart"
                      : rc == ETIMEDOUT     ? " (held too long: a stuck process or a damaged lock)"
                                            : "");
        return -1;
    }
    return 0;
}

#ifdef RL_TESTING
/* Test hook, test builds only (RL_SHM_TEST_DIE_IN_LOCK=1 at open): die holding the locks, dirty, with the
 * stripes' indexes wiped as a half-done mutation could leave them, so that only a rebuild
 * from the slots can find the keys again. */
void rl_shm_test_die(rl_shm *shm, const uint32_t *locked, size_t nlocked)
{
    for (size_t k = 0; k < nlocked; k++) {
        shm_stripe *st = &shm->stripes[locked[k]];
        memset(&shm->buckets[(size_t)locked[k] * shm->nbuckets], 0xff,
               shm->nbuckets * sizeof(uint32_t));
        st->free_head = SHM_NIL;
        st->used = 0;
    }
    _exit(9);
}
#endif
