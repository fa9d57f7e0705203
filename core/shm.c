/* shm.c -- the host-wide shared-memory table: key -> rl_state, bounded by CLOCK eviction
 *
 * Every process of a pool maps one named POSIX segment, each at its own address, so nothing
 * inside it is a pointer: references are byte offsets from the segment start or slot indexes.
 *
 *   [header][stripe x S][bucket heads: uint32 x S*B][slot x capacity]
 *
 * header  immutable after creation except its atomic counters. `magic` is stored last (release)
 *         by the creator; an attacher reads nothing else before it sees it (acquire). It
 *         records the capacity, key_max, state_words and slot size the segment was made for;
 *         an opener that asks for others is refused with a message that says how to fix it.
 * stripe  S = a power of 2 <= 64 independent sub-tables, each with its own robust,
 *         process-shared mutex. A key lives in stripe (hash & (S-1)), hash = SipHash-2-4 of
 *         the key under a random 128-bit key chosen by the creator (no hash flooding). A stripe
 *         owns the slots [first, first+nslots), B bucket heads (chains through slot.next, full
 *         key compared), a CLOCK hand and a free list (slot.next of free slots). Slots
 *         [first+fresh, first+nslots) were never used and are still all zero: creation writes
 *         no slot, so it costs the same for any size (pages are reserved up front by
 *         posix_fallocate, never touched). S shrinks for small capacities so that every stripe
 *         owns >= 16 slots (>= RL_MAX_MATCH: one request never evicts its own keys).
 * slot    sized at open from the configuration, not from the maxima: a 16-byte head (chain
 *         index, key length, in_use, the CLOCK `ref` bit, expiry in ms), then state_words
 *         int64 state words, then key_max key bytes, rounded up to 8 bytes. The key is not
 *         NUL-terminated and its hash is not stored: lookups compare length then bytes, and
 *         the rare removal rehashes the key to find its chain.
 *
 * Bytes per key: rl_shm_size(c, k, w) / c
 *             = roundup8(16 + 8*w + k)            the slot
 *             + 4 * B / (c / S)                   bucket heads, B = pow2 >= c/S: 4 to 8
 *             + (128 + 64*S) / c                  header and stripes, amortised
 * With rule names <= 15 bytes, k = 15 + 1 + RL_CLIENT_MAX = 80 and w = 3: slot 120, so
 * 124.0 bytes per key at c = 2^20, 124.2 at c = 10^6 (118.4 MiB), 125.3 at 10^5, 128.3 at
 * 1000. With the longest rule names (63 bytes, k = 128): slot 168, 172.2 at 10^6. w is the
 * largest rl_algo_state_words of the config's rules (limiter.c): 2 for GCRA alone (116.2 at
 * 10^6), 66 with a sliding log of 128 (628.2). A decision moves only its own rule's words.
 *
 * Invariants under the stripe lock, when `dirty` is 0: each slot of the stripe below `fresh`
 * is either in_use and in exactly one bucket chain, or free and in the free list; used = the
 * number of in_use slots; no two in_use slots hold the same key; hand < fresh (or 0).
 *
 * Eviction is CLOCK (second chance), an approximation of LRU that needs one byte per slot
 * instead of two 32-bit list links, which the 128-bytes-per-key budget has no room for. A use
 * of a key (admitted or refused) sets its `ref`; an insert sets none. When a stripe has no
 * free slot the hand sweeps its slots, clearing `ref` bits, and evicts the first one found
 * expired or unreferenced: a key is evicted only if it was not used since the hand last
 * passed it. So a client being refused, which keeps using its key, is not the one forgotten
 * while any quieter key exists. A sweep is bounded (SHM_SWEEP_MAX): past that many
 * referenced slots the one under the hand goes anyway, so the time under the lock is bounded.
 *
 * Crash repair: a decision sets `dirty` on its stripes after locking and clears it before
 * unlocking. A process that dies holding a lock leaves the robust mutex EOWNERDEAD; the next
 * locker sees dirty and rebuilds the stripe's chains and free list from the slots' own fields
 * (in_use, key), which are enough: `in_use` is set only after the key is written, and cleared
 * before it is overwritten. `ref` bits and the hand need no repair (any value is valid). State
 * words written when the owner died may be torn; every algorithm clamps any state to what
 * its limit allows (algo.h), so a torn state can never admit more than a full quota. Tests
 * reach this path with RL_SHM_TEST_DIE_IN_LOCK=1 (read at open; see shm_test_die).
 *
 * Expiry is amortised, no sweeper: an entry whose expiry <= now reads as absent, and every
 * insert first moves its stripe's hand over 2 slots, taking back those expired; the eviction
 * sweep takes an expired entry as soon as it meets one. A clock stepping back only makes
 * entries live longer.
 *
 * Time: a caller passing now_ms < 0 lets the table read CLOCK_REALTIME itself, once its locks
 * are held. Decisions on one key are then made in clock order: a caller that read the clock
 * and then waited for the lock would otherwise present an older time than a decision already
 * stored, which an algorithm must take as a clock step back, and GCRA's repair of a step back
 * (algo.h) would hand out up to that wait's worth of extra requests.
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
#define SHM_LAYOUT 2u                   /* 2: slots sized at open, CLOCK eviction */
#define SHM_NIL UINT32_MAX
#define SHM_STRIPES_MAX 64u
#define SHM_STRIPE_MIN_SLOTS 16
#define SHM_RECLAIM_PER_INSERT 2
#define SHM_SWEEP_MAX 256 /* referenced slots one eviction may pass over */
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
    uint32_t mutex_size;
    uint32_t slot_size; /* from key_max and state_words (shm_slot_size) */
    uint32_t key_max;
    uint32_t state_words;
    uint32_t nstripes;
    uint32_t nbuckets; /* per stripe */
    uint32_t reserved;
    uint64_t capacity;
    uint64_t size; /* of the whole segment */
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
    uint32_t hand; /* CLOCK hand: the next slot to look at is first + hand, hand < fresh */
    uint32_t free_head;
    uint32_t fresh; /* slots [first, first+fresh) have been used at least once */
} shm_stripe;

/* A slot's fixed head. state_words int64 words follow it, then key_max key bytes. */
typedef struct shm_slot {
    uint32_t next;      /* bucket chain when in use, free list when not */
    uint16_t keylen;
    uint8_t in_use;     /* 1 = holds a key; written after the key, cleared before reuse */
    uint8_t ref;        /* CLOCK: used since the hand last passed */
    int64_t expires_ms; /* reads as absent once now >= this */
} shm_slot;

_Static_assert(sizeof(shm_slot) == 16, "the slot head is 16 bytes (see bytes per key)");

/* Where everything goes; computed identically by creator and attachers. */
typedef struct shm_geom {
    uint32_t nstripes, nbuckets, slot_size;
    size_t stripes_off, buckets_off, slots_off, size;
} shm_geom;

struct rl_shm {
    unsigned char *base; /* the mapping; owned, munmapped by rl_shm_close */
    size_t size;
    shm_header *hdr;
    shm_stripe *stripes;
    uint32_t *buckets;
    unsigned char *slots;
    uint32_t nstripes, nbuckets;
    uint32_t slot_size, key_max, state_words;
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

/* Head, state words, key bytes, rounded to 8 so that every slot's words are aligned. */
static uint32_t shm_slot_size(uint32_t key_max, uint32_t state_words)
{
    return (uint32_t)((sizeof(shm_slot) + 8u * state_words + key_max + 7u) & ~7u);
}

static int shm_geometry(int64_t capacity, size_t key_max, size_t state_words, shm_geom *g)
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
    return shm_geometry(capacity, key_max, state_words, &g) == 0 ? g.size : 0;
}

static void shm_bind(rl_shm *shm, unsigned char *base, size_t size, const shm_geom *g)
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
}

/* ---- one stripe's structures (caller holds the stripe lock) ---------------------------- */

static shm_slot *shm_slot_at(const rl_shm *shm, uint32_t i)
{
    return (shm_slot *)(shm->slots + (size_t)i * shm->slot_size);
}

static int64_t *shm_words(shm_slot *sl)
{
    return (int64_t *)(sl + 1);
}

static char *shm_key(const rl_shm *shm, shm_slot *sl)
{
    return (char *)(shm_words(sl) + shm->state_words);
}

/* Copies w[0..words) of a slot, words past the table's state_words reading as 0. Callers
 * pass what they use (the rule's words, not RL_STATE_WORDS): with a sliding_log rule in the
 * config every slot is 66 words, and a GCRA decision must not move 0.5 KB twice. */
static void shm_load_state(const rl_shm *shm, shm_slot *sl, rl_state *st, size_t words)
{
    size_t have = words < shm->state_words ? words : shm->state_words;
    memcpy(st->w, shm_words(sl), have * sizeof(int64_t));
    if (have < words)
        memset(st->w + have, 0, (words - have) * sizeof(int64_t));
}

/* Stores w[0..words) of st, as far as the slot has room. */
static void shm_store_state(const rl_shm *shm, shm_slot *sl, const rl_state *st, size_t words)
{
    size_t have = words < shm->state_words ? words : shm->state_words;
    memcpy(shm_words(sl), st->w, have * sizeof(int64_t));
}

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
    for (uint32_t i = *shm_bucket(shm, s, h); i != SHM_NIL;) {
        shm_slot *sl = shm_slot_at(shm, i);
        if (sl->keylen == len && memcmp(shm_key(shm, sl), key, len) == 0)
            return i;
        i = sl->next;
    }
    return SHM_NIL;
}

static void shm_free_push(rl_shm *shm, shm_stripe *st, uint32_t i)
{
    shm_slot_at(shm, i)->next = st->free_head;
    st->free_head = i;
}

/* Takes slot i out of its chain and puts it on the free list. The chain is found by
 * rehashing the key: removals are rare (expiry, eviction), lookups are not, so the hash is
 * not worth 8 bytes a slot. */
static void shm_remove(rl_shm *shm, uint32_t s, uint32_t i)
{
    shm_stripe *st = &shm->stripes[s];
    shm_slot *sl = shm_slot_at(shm, i);
    uint32_t *link = shm_bucket(shm, s, shm_hash(shm, shm_key(shm, sl), sl->keylen));

    while (*link != i && *link != SHM_NIL)
        link = &shm_slot_at(shm, *link)->next;
    if (*link == i)
        *link = sl->next;
    sl->in_use = 0;
    atomic_signal_fence(memory_order_seq_cst); /* in_use clear before the slot is reused */
    shm_free_push(shm, st, i);
    st->used--;
}

static uint32_t shm_hand_next(shm_stripe *st)
{
    uint32_t i = st->first + st->hand;
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
        uint32_t i = shm_hand_next(st);
        shm_slot *sl = shm_slot_at(shm, i);
        if (!sl->in_use || shm_pinned(i, pinned, npinned)) {
            if (swept > 2 * (int)st->fresh)
                return -1; /* nothing evictable: cannot happen while nslots >= RL_MAX_MATCH */
            continue;
        }
        if (shm_expired(sl, now_ms)) {
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
static uint32_t shm_insert(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len,
                           int64_t now_ms, const uint32_t *pinned, size_t npinned)
{
    shm_stripe *st = &shm->stripes[s];
    uint32_t i;
    shm_slot *sl;

    /* Amortised expiry: the hand moves on over a few slots, taking back the expired ones (it
     * clears no `ref`: that is eviction's job), so that over fresh/2 inserts it has looked
     * at every slot. A just-stored (pinned) slot is never expired: its ttl is >= 1 ms. */
    for (int k = 0; k < SHM_RECLAIM_PER_INSERT && st->fresh > 0; k++) {
        i = shm_hand_next(st);
        sl = shm_slot_at(shm, i);
        if (sl->in_use && shm_expired(sl, now_ms)) {
            shm_remove(shm, s, i);
            atomic_fetch_add_explicit(&shm->hdr->expired, 1, memory_order_relaxed);
        }
    }
    if (st->free_head == SHM_NIL && st->fresh < st->nslots)
        shm_free_push(shm, st, st->first + st->fresh++);
    if (st->free_head == SHM_NIL && (st->fresh == 0 || shm_evict(shm, s, now_ms, pinned, npinned) < 0)) {
        atomic_fetch_add_explicit(&shm->hdr->insert_failures, 1, memory_order_relaxed);
        return SHM_NIL;
    }

    i = st->free_head;
    sl = shm_slot_at(shm, i);
    st->free_head = sl->next;
    sl->keylen = (uint16_t)len;
    sl->ref = 0; /* set by its next use: a key seen once is the first to go */
    memcpy(shm_key(shm, sl), key, len);
    /* The key is complete before in_use says so: crash repair trusts in_use. */
    atomic_signal_fence(memory_order_seq_cst);
    sl->in_use = 1;
    sl->next = *shm_bucket(shm, s, h);
    *shm_bucket(shm, s, h) = i;
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
    *h = shm_hash(shm, shm_key(shm, sl), sl->keylen);
    return shm_stripe_of(shm, *h) == s &&
           shm_find(shm, s, *h, shm_key(shm, sl), sl->keylen) == SHM_NIL;
}

/* Rebuilds stripe s's chains and free list from its slots. */
static void shm_rebuild(rl_shm *shm, uint32_t s)
{
    shm_stripe *st = &shm->stripes[s];

    for (uint32_t b = 0; b < shm->nbuckets; b++)
        shm->buckets[(size_t)s * shm->nbuckets + b] = SHM_NIL;
    st->free_head = SHM_NIL;
    st->used = 0;
    if (st->fresh > st->nslots)
        st->fresh = st->nslots;
    if (st->hand >= st->fresh)
        st->hand = 0;

    /* Backwards, so that the free list hands out low slots first. */
    for (uint32_t i = st->first + st->fresh; i-- > st->first;) {
        shm_slot *sl = shm_slot_at(shm, i);
        uint64_t h;
        if (!shm_slot_valid(shm, s, sl, &h)) {
            sl->in_use = 0;
            shm_free_push(shm, st, i);
            continue;
        }
        sl->next = *shm_bucket(shm, s, h);
        *shm_bucket(shm, s, h) = i;
        st->used++;
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
        st->free_head = SHM_NIL;
        st->used = 0;
    }
    _exit(9);
}

/* ---- decisions ------------------------------------------------------------------------- */

static int64_t shm_expiry(int64_t now_ms, int64_t ttl_ms)
{
    return now_ms > INT64_MAX - ttl_ms ? INT64_MAX : now_ms + ttl_ms;
}

/* Checks a batch; fills words[i], item i's state words (looked up once per decision). */
static int shm_check_items(rl_shm *shm, const rl_item *items, size_t n, size_t *words)
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
        if (items[i].keylen > shm->key_max) {
            shm_seterr(shm, "shm: item %zu: key of %zu bytes, at most %u (this table's key_max)",
                       i, items[i].keylen, shm->key_max);
            return -1;
        }
        /* A log cut short would forget admissions: refuse to decide rather than admit. */
        words[i] = rl_algo_state_words(items[i].rule);
        if (words[i] > shm->state_words) {
            shm_seterr(shm, "shm: item %zu: rule \"%s\" keeps %zu state words, this table %u",
                       i, items[i].rule->name, words[i], shm->state_words);
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

static int64_t shm_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rl_shm_decide(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms)
{
    uint64_t hash[RL_MAX_MATCH];
    uint32_t stripe[RL_MAX_MATCH], order[RL_MAX_MATCH], found[RL_MAX_MATCH];
    uint32_t pinned[RL_MAX_MATCH]; /* slots this batch stored: no insert may evict them */
    rl_state cur[RL_MAX_MATCH], next[RL_MAX_MATCH];
    size_t words[RL_MAX_MATCH];
    int64_t ttl[RL_MAX_MATCH];
    int repair[RL_MAX_MATCH];
    size_t nlocked, npinned = 0;
    int allowed = 1;

    if (shm_check_items(shm, items, n, words) < 0)
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
    if (now_ms < 0)
        now_ms = shm_realtime_ms(); /* under the locks: decisions on a key in clock order */

    /* Decide every rule on the stored states, changing nothing yet. */
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        shm_slot *sl = NULL;

        found[i] = shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        if (found[i] != SHM_NIL) {
            sl = shm_slot_at(shm, found[i]);
            if (shm_expired(sl, now_ms)) {
                found[i] = SHM_NIL;
                sl = NULL;
            } else {
                shm_load_state(shm, sl, &cur[i], words[i]);
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
     * the one evicted (that would hand it a full bucket). */
    for (size_t i = 0; i < n; i++) {
        const char *key = items[i].keylen ? items[i].key : "";
        uint32_t at;
        shm_slot *sl;

        if (!(allowed && items[i].res->allowed) && !(repair[i] && found[i] != SHM_NIL)) {
            if (found[i] != SHM_NIL)
                shm_slot_at(shm, found[i])->ref = 1;
            continue;
        }
        /* Looked up again: an earlier insert of this batch may have reclaimed an expired
         * entry (never one of this batch's: those are pinned). */
        at = shm_find(shm, stripe[i], hash[i], key, items[i].keylen);
        if (at == SHM_NIL)
            at = shm_insert(shm, stripe[i], hash[i], key, items[i].keylen, now_ms, pinned,
                            npinned);
        else
            shm_slot_at(shm, at)->ref = 1;
        if (at == SHM_NIL)
            continue; /* counted in insert_failures; the decision stands */
        pinned[npinned++] = at;
        sl = shm_slot_at(shm, at);
        shm_store_state(shm, sl, &next[i], words[i]);
        sl->expires_ms = shm_expiry(now_ms, ttl[i]);
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
    if (len > shm->key_max || (key == NULL && len != 0)) {
        shm_seterr(shm, "shm: key of %zu bytes, at most %u (this table's key_max)", len,
                   shm->key_max);
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
    live = i != SHM_NIL && !shm_expired(shm_slot_at(shm, i), now_ms);
    if (live)
        shm_load_state(shm, shm_slot_at(shm, i), out, RL_SHM_RAW_WORDS);
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
        i = shm_insert(shm, s, h, key, len, now_ms, NULL, 0);
    else
        shm_slot_at(shm, i)->ref = 1;
    if (i != SHM_NIL) {
        shm_store_state(shm, shm_slot_at(shm, i), st, RL_SHM_RAW_WORDS);
        shm_slot_at(shm, i)->expires_ms = shm_expiry(now_ms, ttl_ms);
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
        st->free_head = SHM_NIL;
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
    h->mutex_size = sizeof(pthread_mutex_t);
    h->slot_size = g->slot_size;
    h->key_max = shm->key_max;
    h->state_words = shm->state_words;
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
        h->stripe_size != sizeof(shm_stripe) || h->mutex_size != sizeof(pthread_mutex_t)) {
        shm_operr(err,
                  "shm \"%s\": exists with another layout (version %u; this build: version "
                  "%u); stop the old processes and remove it with: rm /dev/shm%s",
                  n, h->layout, SHM_LAYOUT, n);
        return -1;
    }
    if (h->capacity != (uint64_t)capacity) {
        shm_operr(err,
                  "shm \"%s\": exists with capacity %llu, config says %lld; remove it with: "
                  "rm /dev/shm%s (processes attached keep their copy) or use the same capacity",
                  n, (unsigned long long)h->capacity, (long long)capacity, n);
        return -1;
    }
    if (h->key_max != shm->key_max || h->state_words != shm->state_words ||
        h->slot_size != g->slot_size) {
        shm_operr(err,
                  "shm \"%s\": exists with keys of up to %u bytes and %u state words (slot %u "
                  "bytes), config needs %u and %u (slot %u): a rule name's length or the "
                  "algorithms changed; remove it with: rm /dev/shm%s (processes attached keep "
                  "their copy) or run the old and new configs under different shm.name",
                  n, h->key_max, h->state_words, h->slot_size, shm->key_max, shm->state_words,
                  g->slot_size, n);
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

rl_shm *rl_shm_open(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                    rl_error *err)
{
    const char *hook = getenv("RL_SHM_TEST_DIE_IN_LOCK");
    const int64_t start = shm_monotonic_ms();
    shm_geom g;
    rl_shm *shm;
    int rc = -1;

    if (shm_check_name(name, err) < 0)
        return NULL;
    if (capacity < RL_SHM_CAPACITY_MIN || capacity > RL_SHM_CAPACITY_MAX) {
        shm_operr(err, "shm \"%s\": capacity %lld out of range [%d, %lld]", name,
                  (long long)capacity, RL_SHM_CAPACITY_MIN, (long long)RL_SHM_CAPACITY_MAX);
        return NULL;
    }
    if (key_max < 1 || key_max > RL_KEY_MAX || state_words < 1 ||
        state_words > RL_STATE_WORDS || shm_geometry(capacity, key_max, state_words, &g) < 0) {
        shm_operr(err, "shm \"%s\": key_max %zu or state_words %zu out of range [1, %d], "
                  "[1, %d]", name, key_max, state_words, RL_KEY_MAX, RL_STATE_WORDS);
        return NULL;
    }
    shm = calloc(1, sizeof *shm);
    if (shm == NULL) {
        shm_operr(err, "shm \"%s\": out of memory", name);
        return NULL;
    }
    snprintf(shm->name, sizeof shm->name, "%s", name);
    shm->key_max = (uint32_t)key_max;
    shm->state_words = (uint32_t)state_words;
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
