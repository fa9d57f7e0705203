/* shm.c -- the host-wide shared-memory table: key -> rl_state, bounded by LRU eviction
 *
 * Every process of a pool maps one named POSIX segment, each at its own address, so nothing
 * inside it is a pointer: references are byte offsets from the segment start or slot indexes.
 *
 *   [header][stripe x S][bucket heads: uint32 x S*B][slot x capacity]
 *
 * header  immutable after creation except its atomic counters. `magic` is stored last (release)
 *         by the creator; an attacher reads nothing else before it sees it (acquire).
 * stripe  S = a power of 2 <= 64 independent sub-tables, each with its own robust,
 *         process-shared mutex. A key lives in stripe (hash & (S-1)), hash = SipHash-2-4 of
 *         the key under a random 128-bit key chosen by the creator (no hash flooding). A stripe
 *         owns the slots [first, first+nslots), B bucket heads (chains through slot.next, full
 *         key compared), an LRU list (slot.lru_prev/lru_next, head = most recent) and a free
 *         list (slot.next of free slots). Slots [first+fresh, first+nslots) were never used
 *         and are still all zero: creation writes no slot, so it costs the same for any size
 *         (pages are reserved up front by posix_fallocate, never touched). S shrinks for small
 *         capacities so that every stripe owns >= 16 slots (>= RL_MAX_MATCH: one request never
 *         evicts its own keys).
 * slot    312 bytes: the key inline (<= RL_KEY_MAX), its length and hash, the rl_state, the
 *         expiry (ms), `touch` (the stripe's use counter at last use), the links, `in_use`.
 *
 * Invariants under the stripe lock, when `dirty` is 0: each slot of the stripe below `fresh`
 * is either in_use, in exactly one bucket chain and in the LRU list, or free and in the free
 * list; used = number of in_use slots; no two in_use slots hold the same key.
 *
 * Crash repair: a decision sets `dirty` on its stripes after locking and clears it before
 * unlocking. A process that dies holding a lock leaves the robust mutex EOWNERDEAD; the next
 * locker sees dirty and rebuilds the stripe from the slots' own fields (in_use, key, touch),
 * which are enough: `in_use` is set only after the key is written, and cleared before it is
 * overwritten. State words written when the owner died may be torn; GCRA clamps any state to
 * the bucket's depth, so a torn state can never admit more than a burst. Tests reach this path
 * with RL_SHM_TEST_DIE_IN_LOCK=1 (read at open; see shm_test_die).
 *
 * Expiry is amortised, no sweeper: an entry whose expiry <= now reads as absent, and every
 * insert first takes back up to 2 expired entries from its stripe's LRU tail; when no slot is
 * free the tail is evicted by force. A clock stepping back only makes entries live longer.
 *
 * Bytes per key: rl_shm_size(c)/c = 312 (slot) + 4..8 (bucket heads: a power of 2 >= the
 * stripe's share) + the header and stripes amortised: 316.0 at c = 2^20, 317.3 at 100000,
 * 320.3 at 1000, 332 at the minimum 16. Keys are inline at their maximum size: simple, and no
 * allocator in shared memory; a 1 MiB table holds ~3300 keys.
 */
#include "fmacros.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "siphash.h"

#define SHM_MAGIC 0x31304d4853544c52ULL /* "RLTSHM01" in little-endian bytes */
#define SHM_LAYOUT 1u
#define SHM_NIL UINT32_MAX
#define SHM_STRIPES_MAX 64u
#define SHM_STRIPE_MIN_SLOTS 16
#define SHM_RECLAIM_PER_INSERT 2
/* How long an attacher waits for the creator to publish: 2 s, plus 1 s per GiB because the
 * creator's posix_fallocate takes ~0.25 s per GiB of tmpfs. */
#define SHM_ATTACH_WAIT_MS 2000
#define SHM_ATTACH_WAIT_MS_PER_GIB 1000
#define SHM_ALIGN 64

/* Counters are updated by many processes: they must be real atomic instructions. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to be shared between processes");
_Static_assert(RL_KEY_MAX <= UINT16_MAX, "slot.keylen is 16 bits");
_Static_assert(RL_SHM_CAPACITY_MIN >= SHM_STRIPE_MIN_SLOTS, "one stripe must hold the minimum");
_Static_assert(SHM_STRIPE_MIN_SLOTS >= RL_MAX_MATCH, "a batch must fit in one stripe");
_Static_assert(RL_SHM_CAPACITY_MAX < (int64_t)SHM_NIL, "slot indexes are 32 bits");

typedef struct shm_header {
    _Atomic uint64_t magic; /* SHM_MAGIC once initialised; stored last */
    uint32_t layout;        /* SHM_LAYOUT */
    uint32_t header_size;   /* sizeof(shm_header) ... */
    uint32_t stripe_size;   /* ... and the other sizes this build was compiled with */
    uint32_t slot_size;
    uint32_t mutex_size;
    uint32_t key_max;
    uint64_t capacity;
    uint64_t size; /* of the whole segment */
    uint32_t nstripes;
    uint32_t nbuckets; /* per stripe */
    uint64_t stripes_off, buckets_off, slots_off;
    uint8_t hash_key[RL_SIPHASH_KEY_SIZE];
    _Atomic uint64_t evictions;
    _Atomic uint64_t expired;
    _Atomic uint64_t insert_failures;
} shm_header;

typedef struct shm_stripe {
    _Alignas(SHM_ALIGN) pthread_mutex_t lock; /* robust, process-shared; a line per stripe */
    uint32_t dirty;                           /* 1 while a holder may be mid-mutation */
    uint32_t first, nslots;                   /* the slots this stripe owns */
    uint32_t used;
    uint32_t lru_head, lru_tail; /* most / least recently used */
    uint32_t free_head;
    uint32_t fresh; /* slots [first, first+fresh) have been used at least once */
    uint64_t seq;   /* last `touch` given out */
} shm_stripe;

typedef struct shm_slot {
    uint64_t hash;
    uint64_t touch; /* stripe seq at last use: the LRU order, kept for crash repair */
    int64_t expires_ms;
    rl_state state;
    uint32_t lru_prev, lru_next;
    uint32_t next; /* bucket chain when in use, free list when not */
    uint16_t keylen;
    uint8_t in_use; /* 1 = holds a key; written after the key, cleared before reuse */
    uint8_t pad;
    char key[RL_KEY_MAX];
} shm_slot;

/* Where everything goes for a capacity; computed identically by creator and attachers. */
typedef struct shm_geom {
    uint32_t nstripes, nbuckets;
    size_t stripes_off, buckets_off, slots_off, size;
} shm_geom;

struct rl_shm {
    unsigned char *base; /* the mapping; owned, munmapped by rl_shm_close */
    size_t size;
    shm_header *hdr;
    shm_stripe *stripes;
    uint32_t *buckets;
    shm_slot *slots;
    uint32_t nstripes, nbuckets;
    uint8_t hash_key[RL_SIPHASH_KEY_SIZE]; /* copied from the header */
    int die_in_lock;                       /* test hook, see shm_test_die */
    char name[NAME_MAX + 1];
    char errstr[256];
};

/* ---- errors ---------------------------------------------------------------------------- */

static void shm_seterr(rl_shm *shm, const char *fmt, ...) RL_PRINTF(2, 3);
static void shm_seterr(rl_shm *shm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shm->errstr, sizeof shm->errstr, fmt, ap);
    va_end(ap);
}

/* ---- geometry -------------------------------------------------------------------------- */

static size_t shm_align(size_t n)
{
    return (n + SHM_ALIGN - 1) & ~(size_t)(SHM_ALIGN - 1);
}

static int shm_geometry(int64_t capacity, shm_geom *g)
{
    uint64_t share, nb = 1, size;

    if (capacity < RL_SHM_CAPACITY_MIN || capacity > RL_SHM_CAPACITY_MAX)
        return -1;
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
    size += (uint64_t)capacity * sizeof(shm_slot);
    if (size > SIZE_MAX || size > (uint64_t)INT64_MAX)
        return -1;
    g->size = (size_t)size;
    return 0;
}

size_t rl_shm_size(int64_t capacity)
{
    shm_geom g;
    return shm_geometry(capacity, &g) == 0 ? g.size : 0;
}

static void shm_bind(rl_shm *shm, unsigned char *base, size_t size, const shm_geom *g)
{
    shm->base = base;
    shm->size = size;
    shm->hdr = (shm_header *)base;
    shm->stripes = (shm_stripe *)(base + g->stripes_off);
    shm->buckets = (uint32_t *)(base + g->buckets_off);
    shm->slots = (shm_slot *)(base + g->slots_off);
    shm->nstripes = g->nstripes;
    shm->nbuckets = g->nbuckets;
}

/* ---- one stripe's structures (caller holds the stripe lock) ---------------------------- */

static uint64_t shm_hash(const rl_shm *shm, const char *key, size_t len)
{
    return rl_siphash24(shm->hash_key, key, len);
}

static uint32_t shm_stripe_of(const rl_shm *shm, uint64_t h)
{
    return (uint32_t)h & (shm->nstripes - 1);
}

/* The high half picks the bucket: the low bits already picked the stripe. */
static uint32_t *shm_bucket(const rl_shm *shm, uint32_t s, uint64_t h)
{
    return &shm->buckets[(size_t)s * shm->nbuckets + ((uint32_t)(h >> 32) & (shm->nbuckets - 1))];
}

static int shm_expired(const shm_slot *sl, int64_t now_ms)
{
    return sl->expires_ms <= now_ms;
}

static uint32_t shm_find(const rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len)
{
    for (uint32_t i = *shm_bucket(shm, s, h); i != SHM_NIL; i = shm->slots[i].next) {
        const shm_slot *sl = &shm->slots[i];
        if (sl->hash == h && sl->keylen == len && memcmp(sl->key, key, len) == 0)
            return i;
    }
    return SHM_NIL;
}

static void shm_lru_unlink(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    shm_slot *sl = &shm->slots[i];
    if (sl->lru_prev != SHM_NIL)
        shm->slots[sl->lru_prev].lru_next = sl->lru_next;
    else
        st->lru_head = sl->lru_next;
    if (sl->lru_next != SHM_NIL)
        shm->slots[sl->lru_next].lru_prev = sl->lru_prev;
    else
        st->lru_tail = sl->lru_prev;
    sl->lru_prev = sl->lru_next = SHM_NIL;
}

static void shm_lru_push(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    shm_slot *sl = &shm->slots[i];
    sl->lru_prev = SHM_NIL;
    sl->lru_next = st->lru_head;
    if (st->lru_head != SHM_NIL)
        shm->slots[st->lru_head].lru_prev = i;
    else
        st->lru_tail = i;
    st->lru_head = i;
    sl->touch = ++st->seq;
}

static void shm_touch(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    if (st->lru_head != i) {
        shm_lru_unlink(shm, st, i);
        shm_lru_push(shm, st, i);
    } else {
        shm->slots[i].touch = ++st->seq;
    }
}

static void shm_free_push(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    shm->slots[i].next = st->free_head;
    st->free_head = i;
}

/* Takes slot i out of its chain and the LRU and puts it on the free list. */
static void shm_remove(rl_shm *shm, uint32_t s, uint32_t i)
{
    shm_stripe *st = &shm->stripes[s];
    shm_slot *sl = &shm->slots[i];
    uint32_t *link = shm_bucket(shm, s, sl->hash);

    while (*link != i && *link != SHM_NIL)
        link = &shm->slots[*link].next;
    if (*link == i)
        *link = sl->next;
    shm_lru_unlink(shm, st, i);
    sl->in_use = 0;
    atomic_signal_fence(memory_order_seq_cst); /* in_use clear before the slot is reused */
    shm_free_push(shm, st, i);
    st->used--;
}

/* A new entry for key in stripe s. Reclaims expired entries from the LRU tail first, then
 * takes a free slot, else a never-used one, else evicts the tail. SHM_NIL only if the stripe
 * owns no slot at all. */
static uint32_t shm_insert(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len,
                           int64_t now_ms)
{
    shm_stripe *st = &shm->stripes[s];
    uint32_t i;
    shm_slot *sl;

    for (int k = 0; k < SHM_RECLAIM_PER_INSERT; k++) {
        i = st->lru_tail;
        if (i == SHM_NIL || !shm_expired(&shm->slots[i], now_ms))
            break;
        shm_remove(shm, s, i);
        atomic_fetch_add_explicit(&shm->hdr->expired, 1, memory_order_relaxed);
    }
    if (st->free_head == SHM_NIL && st->fresh < st->nslots)
        shm_free_push(shm, st, st->first + st->fresh++);
    if (st->free_head == SHM_NIL) {
        i = st->lru_tail;
        if (i == SHM_NIL) {
            atomic_fetch_add_explicit(&shm->hdr->insert_failures, 1, memory_order_relaxed);
            return SHM_NIL;
        }
        atomic_fetch_add_explicit(shm_expired(&shm->slots[i], now_ms) ? &shm->hdr->expired
                                                                       : &shm->hdr->evictions,
                                  1, memory_order_relaxed);
        shm_remove(shm, s, i);
    }

    i = st->free_head;
    sl = &shm->slots[i];
    st->free_head = sl->next;
    sl->hash = h;
    sl->keylen = (uint16_t)len;
    memcpy(sl->key, key, len);
    /* The key is complete before in_use says so: crash repair trusts in_use. */
    atomic_signal_fence(memory_order_seq_cst);
    sl->in_use = 1;
    sl->next = *shm_bucket(shm, s, h);
    *shm_bucket(shm, s, h) = i;
    shm_lru_push(shm, st, i);
    st->used++;
    return i;
}

/* ---- crash repair ---------------------------------------------------------------------- */

typedef struct shm_order {
    uint64_t touch;
    uint32_t slot;
} shm_order;

static int shm_order_cmp(const void *a, const void *b)
{
    const shm_order *x = a, *y = b;
    return (x->touch > y->touch) - (x->touch < y->touch);
}

/* Is slot sl a key that belongs in stripe s? Recomputes its hash: nothing of a slot written
 * by a process that died is trusted beyond in_use, key and keylen. */
static int shm_slot_valid(const rl_shm *shm, uint32_t s, shm_slot *sl)
{
    if (sl->in_use != 1 || sl->keylen > RL_KEY_MAX)
        return 0;
    sl->hash = shm_hash(shm, sl->key, sl->keylen);
    return shm_stripe_of(shm, sl->hash) == s &&
           shm_find(shm, s, sl->hash, sl->key, sl->keylen) == SHM_NIL;
}

/* Rebuilds stripe s's chains, LRU and free list from its slots. The LRU order comes from
 * `touch`; without memory to sort, slot order is used (only eviction order suffers). */
static void shm_rebuild(rl_shm *shm, uint32_t s)
{
    shm_stripe *st = &shm->stripes[s];
    shm_order *live = malloc((size_t)st->fresh * sizeof *live);
    size_t nlive = 0;

    for (uint32_t b = 0; b < shm->nbuckets; b++)
        shm->buckets[(size_t)s * shm->nbuckets + b] = SHM_NIL;
    st->lru_head = st->lru_tail = st->free_head = SHM_NIL;
    st->used = 0;
    st->seq = 0;

    /* Backwards, so that the free list hands out low slots first. */
    if (st->fresh > st->nslots)
        st->fresh = st->nslots;
    for (uint32_t i = st->first + st->fresh; i-- > st->first;) {
        shm_slot *sl = &shm->slots[i];
        if (!shm_slot_valid(shm, s, sl)) {
            sl->in_use = 0;
            shm_free_push(shm, st, i);
            continue;
        }
        sl->next = *shm_bucket(shm, s, sl->hash);
        *shm_bucket(shm, s, sl->hash) = i;
        st->used++;
        if (sl->touch > st->seq)
            st->seq = sl->touch;
        if (live != NULL) {
            live[nlive].touch = sl->touch;
            live[nlive++].slot = i;
        } else {
            shm_lru_push(shm, st, i);
        }
    }
    if (live != NULL) {
        /* Oldest first, so the newest ends at the head; touches are renumbered above seq. */
        qsort(live, nlive, sizeof *live, shm_order_cmp);
        for (size_t k = 0; k < nlive; k++)
            shm_lru_push(shm, st, live[k].slot);
        free(live);
    }
    st->dirty = 0;
}

/* Locks stripe s, repairing it when its previous owner died mid-mutation. */
static int shm_lock(rl_shm *shm, uint32_t s)
{
    shm_stripe *st = &shm->stripes[s];
    int rc = pthread_mutex_lock(&st->lock);

    if (rc == EOWNERDEAD) {
        if (st->dirty)
            shm_rebuild(shm, s);
        rc = pthread_mutex_consistent(&st->lock);
        if (rc != 0) /* leaves it ENOTRECOVERABLE: every later locker gets the error */
            pthread_mutex_unlock(&st->lock);
    }
    if (rc != 0) {
        shm_seterr(shm, "shm \"%s\": cannot lock stripe %u: %s%s", shm->name, s, strerror(rc),
                   rc == ENOTRECOVERABLE ? "; remove the segment and restart" : "");
        return -1;
    }
    return 0;
}

static void shm_unlock(rl_shm *shm, uint32_t s)
{
    pthread_mutex_unlock(&shm->stripes[s].lock);
}

/* Test hook (RL_SHM_TEST_DIE_IN_LOCK=1 at open): die holding the locks, dirty, with the
 * stripes' indexes wiped as a half-done mutation could leave them, so that only a rebuild
 * from the slots can find the keys again. */
static void shm_test_die(rl_shm *shm, const uint32_t *locked, size_t nlocked)
{
    for (size_t k = 0; k < nlocked; k++) {
        shm_stripe *st = &shm->stripes[locked[k]];
        memset(&shm->buckets[(size_t)locked[k] * shm->nbuckets], 0xff,
               shm->nbuckets * sizeof(uint32_t));
        st->lru_head = st->lru_tail = st->free_head = SHM_NIL;
    }
    _exit(9);
}

/* ---- decisions ------------------------------------------------------------------------- */

static int64_t shm_expiry(int64_t now_ms, int64_t ttl_ms)
{
    return now_ms > INT64_MAX - ttl_ms ? INT64_MAX : now_ms + ttl_ms;
}

static int shm_check_items(rl_shm *shm, const rl_item *items, size_t n)
{
    if (n > RL_MAX_MATCH) {
        shm_seterr(shm, "shm: %zu rules in one decision, at most %d", n, RL_MAX_MATCH);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].cost < 1) {
            shm_seterr(shm, "shm: item %zu: cost %lld must be >= 1", i,
                       (long long)items[i].cost);
            return -1;
        }
        if (items[i].rule == NULL || items[i].res == NULL ||
            (items[i].key == NULL && items[i].keylen != 0)) {
            shm_seterr(shm, "shm: item %zu: missing rule, result or key", i);
            return -1;
        }
        if (items[i].keylen > RL_KEY_MAX) {
            shm_seterr(shm, "shm: item %zu: key of %zu bytes, at most %d", i, items[i].keylen,
                       RL_KEY_MAX);
            return -1;
        }
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
static void shm_report_uncharged(rl_shm *shm, rl_item *items, size_t n, const uint32_t *found,
                                 int64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        rl_state unused;
        int64_t unused_ttl;
        if (!items[i].res->allowed)
            continue;
        rl_algo_decide(items[i].rule, found[i] != SHM_NIL ? &shm->slots[found[i]].state : NULL,
                       now_ms, 0, &unused, &unused_ttl, items[i].res);
    }
}

int rl_shm_decide(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms)
{
    uint64_t hash[RL_MAX_MATCH];
    uint32_t stripe[RL_MAX_MATCH], order[RL_MAX_MATCH], found[RL_MAX_MATCH];
    rl_state next[RL_MAX_MATCH];
    int64_t ttl[RL_MAX_MATCH];
    int repair[RL_MAX_MATCH];
    size_t nlocked;
    int allowed = 1;

    if (shm_check_items(shm, items, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        hash[i] = shm_hash(shm, key, items[i].keylen);
        stripe[i] = shm_stripe_of(shm, hash[i]);
    }
    nlocked = shm_lock_order(stripe, n, order);
    for (size_t k = 0; k < nlocked; k++) {
        if (shm_lock(shm, order[k]) < 0) {
            while (k-- > 0) {
                shm->stripes[order[k]].dirty = 0;
                shm_unlock(shm, order[k]);
            }
            return -1;
        }
        shm->stripes[order[k]].dirty = 1;
    }
    if (shm->die_in_lock)
        shm_test_die(shm, order, nlocked);

    /* Decide every rule on the stored states, changing nothing yet. */
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        rl_state cur;
        int live;

        found[i] = shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        live = found[i] != SHM_NIL && !shm_expired(&shm->slots[found[i]], now_ms);
        if (live)
            cur = shm->slots[found[i]].state;
        else
            found[i] = SHM_NIL;
        repair[i] = rl_algo_decide(items[i].rule, live ? &cur : NULL, now_ms, items[i].cost,
                                   &next[i], &ttl[i], items[i].res) & RL_ALGO_REPAIR;
        allowed &= items[i].res->allowed != 0 || items[i].rule->dry_run;
    }
    if (!allowed)
        shm_report_uncharged(shm, items, n, found, now_ms);

    /* Admitted: store every admitting item (a dry run may refuse). Refused: store none (but a
     * repaired one, see algo.h), and keep the keys recent, so a key that is being refused is
     * not the one evicted (that would hand it a full bucket). */
    for (size_t i = 0; i < n; i++) {
        shm_stripe *st = &shm->stripes[stripe[i]];
        const char *key = items[i].keylen ? items[i].key : "";
        uint32_t at;

        if (!(allowed && items[i].res->allowed) && !(repair[i] && found[i] != SHM_NIL)) {
            if (found[i] != SHM_NIL)
                shm_touch(shm, st, found[i]);
            continue;
        }
        /* Looked up again: an earlier insert of this batch may have reclaimed or evicted. */
        at = shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        if (at == SHM_NIL)
            at = shm_insert(shm, stripe[i], hash[i], key, items[i].keylen, now_ms);
        else
            shm_touch(shm, st, at);
        if (at == SHM_NIL)
            continue; /* counted in insert_failures; the decision stands */
        shm->slots[at].state = next[i];
        shm->slots[at].expires_ms = shm_expiry(now_ms, ttl[i]);
    }

    for (size_t k = nlocked; k-- > 0;) {
        shm->stripes[order[k]].dirty = 0;
        shm_unlock(shm, order[k]);
    }
    return allowed;
}

/* ---- raw entries (the refusal cache, refusal.c) ---------------------------------------- */

/* One key, one stripe lock: the checks and the locking of rl_shm_get and rl_shm_put. */
static int shm_raw_lock(rl_shm *shm, const char *key, size_t len, uint64_t *h, uint32_t *s)
{
    if (len > RL_KEY_MAX) {
        shm_seterr(shm, "shm: key of %zu bytes, at most %d", len, RL_KEY_MAX);
        return -1;
    }
    *h = shm_hash(shm, key, len);
    *s = shm_stripe_of(shm, *h);
    if (shm_lock(shm, *s) < 0)
        return -1;
    shm->stripes[*s].dirty = 1;
    return 0;
}

static void shm_raw_unlock(rl_shm *shm, uint32_t s)
{
    shm->stripes[s].dirty = 0;
    shm_unlock(shm, s);
}

int rl_shm_get(rl_shm *shm, const char *key, size_t len, int64_t now_ms, rl_state *out)
{
    uint64_t h;
    uint32_t s, i;
    int live;

    if (shm_raw_lock(shm, key, len, &h, &s) < 0)
        return -1;
    i = shm_find(shm, s, h, key, len);
    live = i != SHM_NIL && !shm_expired(&shm->slots[i], now_ms);
    if (live)
        *out = shm->slots[i].state;
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
    i = shm_find(shm, s, h, key, len);
    if (i == SHM_NIL)
        i = shm_insert(shm, s, h, key, len, now_ms);
    else
        shm_touch(shm, &shm->stripes[s], i);
    if (i != SHM_NIL) {
        shm->slots[i].state = *st;
        shm->slots[i].expires_ms = shm_expiry(now_ms, ttl_ms);
    }
    shm_raw_unlock(shm, s);
    return 0;
}

int rl_shm_stats(rl_shm *shm, rl_shm_stat *out)
{
    int64_t used = 0;

    for (uint32_t s = 0; s < shm->nstripes; s++) {
        if (shm_lock(shm, s) < 0)
            return -1;
        used += shm->stripes[s].used;
        shm_unlock(shm, s);
    }
    out->capacity = (int64_t)shm->hdr->capacity;
    out->entries = used;
    out->evictions = (int64_t)atomic_load_explicit(&shm->hdr->evictions, memory_order_relaxed);
    out->expired_reclaimed =
        (int64_t)atomic_load_explicit(&shm->hdr->expired, memory_order_relaxed);
    out->insert_failures =
        (int64_t)atomic_load_explicit(&shm->hdr->insert_failures, memory_order_relaxed);
    out->stripes = shm->nstripes;
    return 0;
}

const char *rl_shm_errstr(const rl_shm *shm)
{
    return shm->errstr;
}

/* ---- creating and attaching ------------------------------------------------------------ */

static void shm_operr(rl_error *err, const char *fmt, ...) RL_PRINTF(2, 3);
static void shm_operr(rl_error *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
}

static int64_t shm_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void shm_nap(void)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int shm_random_key(uint8_t *key, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(key + got, len - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int shm_init_stripes(rl_shm *shm, int64_t capacity, rl_error *err)
{
    pthread_mutexattr_t attr;
    uint32_t first = 0;
    int rc = pthread_mutexattr_init(&attr);

    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    for (uint32_t s = 0; rc == 0 && s < shm->nstripes; s++) {
        shm_stripe *st = &shm->stripes[s];
        /* The first capacity % S stripes own one slot more. */
        st->nslots = (uint32_t)(capacity / shm->nstripes) +
                     ((uint64_t)s < (uint64_t)capacity % shm->nstripes);
        st->first = first;
        first += st->nslots;
        st->lru_head = st->lru_tail = st->free_head = SHM_NIL;
        rc = pthread_mutex_init(&st->lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0)
        shm_operr(err, "shm \"%s\": cannot initialise its locks: %s", shm->name, strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* We created the name (O_EXCL): size, initialise, publish. On failure the name is removed so
 * no half-made segment stays behind. */
static int shm_create(rl_shm *shm, int fd, const shm_geom *g, int64_t capacity, rl_error *err)
{
    unsigned char *base;
    shm_header *h;
    int rc;

    if (ftruncate(fd, (off_t)g->size) < 0) {
        shm_operr(err, "shm \"%s\": cannot size it to %zu bytes for capacity %lld: %s",
                  shm->name, g->size, (long long)capacity, strerror(errno));
        goto fail;
    }
    /* Reserve the memory now: tmpfs is sparse, and a page that cannot be had later would be
     * a SIGBUS in the middle of a request instead of an error here. */
    rc = posix_fallocate(fd, 0, (off_t)g->size);
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
        shm_operr(err,
                  "shm \"%s\": capacity %lld needs %zu MiB of shared memory: %s (see df "
                  "/dev/shm; lower shm.capacity)",
                  shm->name, (long long)capacity, g->size >> 20, strerror(rc));
        goto fail;
    }
    base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        shm_operr(err, "shm \"%s\": cannot map %zu bytes for capacity %lld: %s", shm->name,
                  g->size, (long long)capacity, strerror(errno));
        goto fail;
    }
    shm_bind(shm, base, g->size, g);
    if (shm_random_key(shm->hash_key, sizeof shm->hash_key) < 0) {
        shm_operr(err, "shm \"%s\": getrandom: %s", shm->name, strerror(errno));
        goto fail;
    }

    h = shm->hdr;
    h->layout = SHM_LAYOUT;
    h->header_size = sizeof(shm_header);
    h->stripe_size = sizeof(shm_stripe);
    h->slot_size = sizeof(shm_slot);
    h->mutex_size = sizeof(pthread_mutex_t);
    h->key_max = RL_KEY_MAX;
    h->capacity = (uint64_t)capacity;
    h->size = g->size;
    h->nstripes = g->nstripes;
    h->nbuckets = g->nbuckets;
    h->stripes_off = g->stripes_off;
    h->buckets_off = g->buckets_off;
    h->slots_off = g->slots_off;
    memcpy(h->hash_key, shm->hash_key, sizeof h->hash_key);
    memset(shm->buckets, 0xff, (size_t)g->nstripes * g->nbuckets * sizeof(uint32_t));
    if (shm_init_stripes(shm, capacity, err) < 0)
        goto fail;
    atomic_store_explicit(&h->magic, SHM_MAGIC, memory_order_release);
    return 0;

fail:
    if (shm->base != NULL)
        munmap(shm->base, shm->size);
    shm->base = NULL;
    shm_unlink(shm->name);
    return -1;
}

static int shm_check_header(rl_shm *shm, const shm_header *h, const shm_geom *g,
                            int64_t capacity, size_t st_size, rl_error *err)
{
    const char *n = shm->name;

    if (h->layout != SHM_LAYOUT || h->header_size != sizeof(shm_header) ||
        h->stripe_size != sizeof(shm_stripe) || h->slot_size != sizeof(shm_slot) ||
        h->mutex_size != sizeof(pthread_mutex_t) || h->key_max != RL_KEY_MAX) {
        shm_operr(err,
                  "shm \"%s\": exists with another layout (version %u, slot %u bytes; this "
                  "build: version %u, slot %zu bytes); stop the old processes and remove it "
                  "with: rm /dev/shm%s",
                  n, h->layout, h->slot_size, SHM_LAYOUT, sizeof(shm_slot), n);
        return -1;
    }
    if (h->capacity != (uint64_t)capacity) {
        shm_operr(err,
                  "shm \"%s\": exists with capacity %llu, config says %lld; remove it with: "
                  "rm /dev/shm%s (processes attached keep their copy) or use the same capacity",
                  n, (unsigned long long)h->capacity, (long long)capacity, n);
        return -1;
    }
    if (h->size != g->size || st_size != g->size || h->nstripes != g->nstripes ||
        h->nbuckets != g->nbuckets || h->stripes_off != g->stripes_off ||
        h->buckets_off != g->buckets_off || h->slots_off != g->slots_off) {
        shm_operr(err,
                  "shm \"%s\": damaged (size %zu, expected %zu); remove it with: rm /dev/shm%s",
                  n, st_size, g->size, n);
        return -1;
    }
    return 0;
}

/* Another process created the name: wait (bounded) until it is sized and published, then
 * check it was made for the same layout and capacity. */
static int shm_attach(rl_shm *shm, int fd, const shm_geom *g, int64_t capacity,
                      int64_t start, rl_error *err)
{
    const int64_t wait_ms =
        SHM_ATTACH_WAIT_MS + (int64_t)(g->size >> 30) * SHM_ATTACH_WAIT_MS_PER_GIB;
    const int64_t deadline = start + wait_ms;
    const char *n = shm->name;
    struct stat st;
    unsigned char *base;
    uint64_t magic;

    for (;;) {
        if (fstat(fd, &st) < 0) {
            shm_operr(err, "shm \"%s\": fstat: %s", n, strerror(errno));
            return -1;
        }
        if (st.st_size != 0)
            break;
        if (shm_monotonic_ms() > deadline) {
            shm_operr(err,
                      "shm \"%s\": exists but is empty after %d ms (its creator died?); "
                      "remove it with: rm /dev/shm%s",
                      n, (int)wait_ms, n);
            return -1;
        }
        shm_nap();
    }
    /* ftruncate sets the whole size at once: a nonzero size is the creator's final size. */
    if ((uint64_t)st.st_size < sizeof(shm_header) || (uint64_t)st.st_size > SIZE_MAX) {
        shm_operr(err, "shm \"%s\": exists but is not a rate-limit table (%lld bytes)", n,
                  (long long)st.st_size);
        return -1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        shm_operr(err, "shm \"%s\": cannot map %lld bytes: %s", n, (long long)st.st_size,
                  strerror(errno));
        return -1;
    }
    shm->base = base;
    shm->size = (size_t)st.st_size;

    while ((magic = atomic_load_explicit(&((shm_header *)base)->magic, memory_order_acquire)) !=
           SHM_MAGIC) {
        if (magic != 0) {
            shm_operr(err, "shm \"%s\": exists but is not a rate-limit table (magic %#llx)", n,
                      (unsigned long long)magic);
            goto fail;
        }
        if (shm_monotonic_ms() > deadline) {
            shm_operr(err,
                      "shm \"%s\": exists but was not initialised within %d ms (its creator "
                      "died?); remove it with: rm /dev/shm%s",
                      n, (int)wait_ms, n);
            goto fail;
        }
        shm_nap();
    }
    if (shm_check_header(shm, (const shm_header *)base, g, capacity, (size_t)st.st_size, err) <
        0)
        goto fail;
    shm_bind(shm, base, (size_t)st.st_size, g);
    memcpy(shm->hash_key, shm->hdr->hash_key, sizeof shm->hash_key);
    return 0;

fail:
    munmap(base, (size_t)st.st_size);
    shm->base = NULL;
    return -1;
}

static int shm_check_name(const char *name, rl_error *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len < 2 || len > NAME_MAX || name[0] != '/' || strchr(name + 1, '/') != NULL) {
        shm_operr(err, "shm name \"%s\": must be \"/\" then 1 to %d characters without \"/\"",
                  name != NULL ? name : "(null)", NAME_MAX - 1);
        return -1;
    }
    return 0;
}

rl_shm *rl_shm_open(const char *name, int64_t capacity, rl_error *err)
{
    const char *hook = getenv("RL_SHM_TEST_DIE_IN_LOCK");
    const int64_t start = shm_monotonic_ms();
    shm_geom g;
    rl_shm *shm;
    int rc = -1;

    if (shm_check_name(name, err) < 0)
        return NULL;
    if (shm_geometry(capacity, &g) < 0) {
        shm_operr(err, "shm \"%s\": capacity %lld out of range [%d, %lld]", name,
                  (long long)capacity, RL_SHM_CAPACITY_MIN, (long long)RL_SHM_CAPACITY_MAX);
        return NULL;
    }
    shm = calloc(1, sizeof *shm);
    if (shm == NULL) {
        shm_operr(err, "shm \"%s\": out of memory", name);
        return NULL;
    }
    snprintf(shm->name, sizeof shm->name, "%s", name);
    shm->die_in_lock = hook != NULL && strcmp(hook, "1") == 0;

    for (;;) {
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            rc = shm_create(shm, fd, &g, capacity, err);
            close(fd);
            break;
        }
        if (errno != EEXIST) {
            shm_operr(err, "shm \"%s\": cannot create it: %s", name, strerror(errno));
            break;
        }
        fd = shm_open(name, O_RDWR, 0);
        if (fd < 0) {
            /* Removed between our two opens (a creator that failed): try creating again. */
            if (errno == ENOENT && shm_monotonic_ms() - start <= SHM_ATTACH_WAIT_MS)
                continue;
            shm_operr(err, "shm \"%s\": cannot open it: %s", name, strerror(errno));
            break;
        }
        rc = shm_attach(shm, fd, &g, capacity, start, err);
        close(fd);
        break;
    }
    if (rc < 0) {
        free(shm);
        return NULL;
    }
    return shm;
}

void rl_shm_close(rl_shm *shm)
{
    if (shm == NULL)
        return;
    munmap(shm->base, shm->size);
    free(shm);
}

int rl_shm_unlink(const char *name)
{
    return shm_unlink(name) == 0 ? 0 : -1;
}
