/* shm_int.h -- what the shared-memory table's files share (internal)
 *
 * shm.c creates, attaches and closes the segment (and documents the layout), shm_gen.c
 * replaces a segment that cannot serve a configuration by a new generation (carrying its live
 * entries over) and tells -t what an open would do, shm_table.c keeps one stripe's structures
 * (index, CLOCK eviction, free list, crash repair, locks) and shm_decide.c makes decisions and
 * serves raw entries and stats. What every decision runs is inline below, so that a decision
 * makes no call into shm_table.c on its common path: a slot's fields, the key's hash, the
 * chain walk and its key compare, and the lock's trylock, checks and unlock (their repair and
 * wait paths stay out of line, in shm_table.c). See shm.c for the layout and its invariants.
 */
#ifndef RL_SHM_INT_H
#define RL_SHM_INT_H

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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "siphash.h"

#define SHM_MAGIC 0x31304d4853544c52ULL /* "RLTSHM01" in little-endian bytes */
/* 2: slots sized at open, CLOCK eviction; 3: repairs counter; 4: a stripe is one cache line
 * (its slot range is derived from the capacity, not stored), keys hashed with SipHash-1-3 */
#define SHM_LAYOUT 4u
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
/* A stripe lock not had within this is reported, never waited on forever. */
#define SHM_LOCK_TIMEOUT_MS 2000
/* Looks at a held stripe lock before sleeping on it (shm_table.c, shm_spin_lock). */
#define SHM_SPIN 64
#define SHM_SPIN_BACKOFF 16 /* the most pauses between two looks */
/* Where glibc's shm_open keeps names: a segment is put in place with link(2) or rename(2). */
#define SHM_DIR "/dev/shm"
/* A segment being made is named NAME SHM_NEW_TAG PID "-" SERIAL until it is put in place. */
#define SHM_NEW_TAG ".new-"
#define SHM_NEW_SUFFIX_MAX 32
/* How long an opener waits for another process's replacement of the segment (it holds the
 * old one's flock meanwhile): 5 s, plus 30 ms per MiB of the old segment to copy (measured:
 * 2 to 3 s for a full table of 10^6 keys, 118 MiB, on two loaded cores). */
#define SHM_REPLACE_WAIT_MS 5000
#define SHM_REPLACE_WAIT_MS_PER_MIB 30
#define SHM_OPEN_ROUNDS 16 /* times an open may find the name changed under it */

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
    uint32_t nbuckets;   /* per stripe */
    uint32_t generation; /* 1 for a new name, +1 for each replacement; 0 before generations */
    uint64_t capacity;
    uint64_t size; /* of the whole segment */
    uint64_t stripes_off, buckets_off, slots_off;
    uint8_t hash_key[RL_SIPHASH_KEY_SIZE];
    _Atomic uint64_t evictions;
    _Atomic uint64_t expired;
    _Atomic uint64_t insert_failures;
    _Atomic uint64_t repairs; /* stripes rebuilt: found damaged or left by a dead owner */
} shm_header;

/* One cache line: the lock and everything a decision reads or writes of its stripe, so that
 * a lock handed from one process to another moves one line, and no stripe shares a line with
 * another. The slots a stripe owns, [first, first + nslots), are not stored: every process
 * derives them from the capacity (rl_shm_bind, rl_shm.span). */
typedef struct shm_stripe {
    _Alignas(SHM_ALIGN) pthread_mutex_t lock; /* robust, process-shared */
    uint32_t dirty;                           /* 1 while a holder may be mid-mutation */
    uint32_t used;
    uint32_t hand; /* CLOCK hand: the next slot to look at is first + hand, hand < fresh */
    uint32_t free_head;
    uint32_t fresh; /* slots [first, first+fresh) have been used at least once */
} shm_stripe;

_Static_assert(sizeof(shm_stripe) == SHM_ALIGN, "a stripe is one cache line");

/* A slot's fixed head. state_words int64 words follow it, then key_max key bytes. */
typedef struct shm_slot {
    uint32_t next; /* bucket chain when in use, free list when not */
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
    uint64_t capacity; /* ours, from the config, set before rl_shm_bind */
    /* Each stripe's [first, first + nslots), derived from capacity once at bind (the segment
     * does not store them): every index read from the segment is checked against these. */
    struct {
        uint32_t first, nslots;
    } span[SHM_STRIPES_MAX];
    uint8_t hash_key[RL_SIPHASH_KEY_SIZE]; /* copied from the header */
    /* Stripes this handle rebuilt (shm_rebuild): a decision's lookups stand, and are not
     * walked again before it stores, while this is unchanged and it inserted nothing. */
    uint64_t rebuilds;
#ifdef RL_TESTING
    int die_in_lock; /* test hook, see rl_shm_test_die (test builds only) */
#endif
    char note[NAME_MAX + 300]; /* what this open did to the segment in place, or "" (rl_shm_note) */
    /* Who the segments this open makes belong to (shm.user, shm.group, shm.mode; name unset):
     * a copy, read only while opening. Zeroed: the process's user and group, mode 0600. */
    rl_shm_config own;
    char name[NAME_MAX + 1];
    char errstr[256];
};

void rl_shm_seterr(rl_shm *shm, const char *fmt, ...) RL_PRINTF(2, 3);

/* What an existing segment's header says about serving a configuration (shm_judge). */
typedef enum shm_verdict {
    SHM_FITS,    /* same layout and capacity, slots at least as large: attach */
    SHM_CARRY,   /* ours, sound, but another capacity or smaller slots: a new generation,
                    live entries carried over */
    SHM_FRESH,   /* ours but another layout, or its header is inconsistent: a new, empty
                    generation */
    SHM_FOREIGN, /* not a rate-limit table: never touched */
} shm_verdict;

shm_verdict rl_shm_judge(const shm_header *h, size_t st_size, int64_t capacity, size_t key_max,
                         size_t state_words, shm_geom *og, char *why, size_t whylen);

int rl_shm_create(rl_shm *shm, int fd, const char *made, const shm_geom *g, int64_t capacity,
                  rl_error *err);

int rl_shm_make(rl_shm *shm, const shm_geom *g, int64_t capacity, rl_shm *from, int replace,
                const rl_shm_config *own, rl_error *err);

int rl_shm_replace(rl_shm *shm, int fd, unsigned char *base, size_t size, const shm_geom *og,
                   const shm_geom *want, int64_t capacity, rl_error *err);

void rl_shm_sweep(const char *name);

void rl_shm_bind(rl_shm *shm, unsigned char *base, size_t size, const shm_geom *g);

uint32_t rl_shm_find_repair(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len);

int rl_shm_geometry(int64_t capacity, size_t key_max, size_t state_words, shm_geom *g);

size_t rl_shm_key_room(size_t key_max, size_t state_words);

uint32_t rl_shm_insert(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len,
                       int64_t now_ms, const uint32_t *pinned, size_t npinned);

int rl_shm_lock_slow(rl_shm *shm, uint32_t s, int rc);

#ifdef RL_TESTING
void rl_shm_test_die(rl_shm *shm, const uint32_t *locked, size_t nlocked);
#endif

/* ---- a slot's fields (inline: every decision uses each of them; caller holds the lock) -- */

static inline shm_slot *rl_shm_slot_at(const rl_shm *shm, uint32_t i)
{
    return (shm_slot *)(shm->slots + (size_t)i * shm->slot_size);
}

static inline int64_t *rl_shm_words(shm_slot *sl)
{
    return (int64_t *)(sl + 1);
}

static inline char *rl_shm_key(const rl_shm *shm, shm_slot *sl)
{
    return (char *)(rl_shm_words(sl) + shm->state_words);
}

static inline int rl_shm_expired(const shm_slot *sl, int64_t now_ms)
{
    return sl->expires_ms <= now_ms;
}

/* ---- the index (inline: every decision hashes its key and walks one chain) ------------ */

static inline uint64_t rl_shm_hash(const rl_shm *shm, const char *key, size_t len)
{
    return rl_siphash13(shm->hash_key, key, len);
}

static inline uint32_t rl_shm_stripe_of(const rl_shm *shm, uint64_t h)
{
    return (uint32_t)h & (shm->nstripes - 1);
}

/* The high half picks the bucket: the low bits already picked the stripe. */
static inline uint32_t *rl_shm_bucket(const rl_shm *shm, uint32_t s, uint64_t h)
{
    return &shm->buckets[(size_t)s * shm->nbuckets + ((uint32_t)(h >> 32) & (shm->nbuckets - 1))];
}

static inline uint64_t rl_shm_load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t rl_shm_load4(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* a[0..len) == b[0..len), for a key found in a chain. Inline word compares rather than a
 * memcmp call, which made the walk save and restore its registers around it: 8 bytes at a
 * time, the last 8 (or 4, below 8 bytes) overlapping what was already compared. */
static inline int rl_shm_key_eq(const char *a, const char *b, size_t len)
{
    size_t k;

    if (len >= 8) {
        for (k = 0; k + 8 < len; k += 8)
            if (rl_shm_load8(a + k) != rl_shm_load8(b + k))
                return 0;
        return rl_shm_load8(a + len - 8) == rl_shm_load8(b + len - 8);
    }
    if (len >= 4)
        return rl_shm_load4(a) == rl_shm_load4(b) &&
               rl_shm_load4(a + len - 4) == rl_shm_load4(b + len - 4);
    for (k = 0; k < len; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

/* Walks the chain, every index bounds-checked and at most nslots links followed.
 * SHM_NIL = absent; SHM_NIL - 1 = the chain is damaged. */
__attribute__((always_inline)) static inline uint32_t
rl_shm_find_checked(const rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len)
{
    const uint32_t first = shm->span[s].first, nslots = shm->span[s].nslots;
    uint32_t steps = 0;

    for (uint32_t i = *rl_shm_bucket(shm, s, h); i != SHM_NIL; steps++) {
        /* fresh is read at each link: a walk never trusts what it read before a compare */
        uint32_t fresh = shm->stripes[s].fresh;
        shm_slot *sl;
        if (i - first >= fresh || fresh > nslots || steps >= nslots)
            return SHM_NIL - 1;
        sl = rl_shm_slot_at(shm, i);
        if (sl->keylen == len && sl->in_use == 1 && rl_shm_key_eq(rl_shm_key(shm, sl), key, len))
            return i;
        i = sl->next;
    }
    return SHM_NIL;
}

/* The slot holding key in stripe s, or SHM_NIL. A damaged chain rebuilds the stripe
 * (counted in repairs) and is walked again (rl_shm_find_repair, shm_table.c). Always
 * inlined: out of line, saving and restoring registers cost as much as a short walk. */
__attribute__((always_inline)) static inline uint32_t
rl_shm_find(rl_shm *shm, uint32_t s, uint64_t h, const char *key, size_t len)
{
    uint32_t i = rl_shm_find_checked(shm, s, h, key, len);
    if (__builtin_expect(i == SHM_NIL - 1, 0))
        return rl_shm_find_repair(shm, s, h, key, len);
    return i;
}

/* Copies w[0..words) of a slot, words past the table's state_words reading as 0. Callers
 * pass what they use (the rule's words, not RL_STATE_WORDS): with a sliding_log rule in the
 * config every slot is 66 words, and a GCRA decision must not move 0.5 KB twice. A loop, not
 * memcpy: most rules keep 2 or 3 words, fewer instructions than the call. */
static inline void rl_shm_load_state(const rl_shm *shm, shm_slot *sl, rl_state *st, size_t words)
{
    const int64_t *w = rl_shm_words(sl);
    size_t have = words < shm->state_words ? words : shm->state_words, k;
    for (k = 0; k < have; k++)
        st->w[k] = w[k];
    for (; k < words; k++)
        st->w[k] = 0;
}

/* Stores w[0..words) of st, as far as the slot has room. */
static inline void rl_shm_store_state(const rl_shm *shm, shm_slot *sl, const rl_state *st,
                                      size_t words)
{
    int64_t *w = rl_shm_words(sl);
    size_t have = words < shm->state_words ? words : shm->state_words;
    for (size_t k = 0; k < have; k++)
        w[k] = st->w[k];
}

/* ---- a stripe's checks and its lock (inline: every decision takes them) ---------------- */

/* Is i one of stripe s's used slots? Indexes read from the segment are never trusted; the
 * stripe's bounds are our own (rl_shm_bind), only `fresh` is read from the segment. */
static inline int rl_shm_in_stripe(const rl_shm *shm, uint32_t s, uint32_t i)
{
    uint32_t fresh = shm->stripes[s].fresh;
    return i - shm->span[s].first < fresh && fresh <= shm->span[s].nslots;
}

/* Validated, never trusted: is any of the stripe's fields out of range? */
static inline int rl_shm_stripe_bad(const rl_shm *shm, uint32_t s)
{
    const shm_stripe *st = &shm->stripes[s];
    return st->fresh > shm->span[s].nslots || st->used > st->fresh ||
           (st->fresh > 0 && st->hand >= st->fresh) ||
           (st->free_head != SHM_NIL && !rl_shm_in_stripe(shm, s, st->free_head));
}

/* Locks stripe s, repairing it when its previous owner died mid-mutation or its fields are
 * out of range. Uncontended: one trylock and the checks, no clock read. Contended: a short
 * spin, then a wait bounded by SHM_LOCK_TIMEOUT_MS (rl_shm_lock_slow, shm_table.c). 0, or
 * -1 with the handle's error. */
static inline int rl_shm_lock(rl_shm *shm, uint32_t s)
{
    int rc = pthread_mutex_trylock(&shm->stripes[s].lock);

    if (__builtin_expect(rc == 0 && !rl_shm_stripe_bad(shm, s), 1))
        return 0;
    return rl_shm_lock_slow(shm, s, rc);
}

static inline void rl_shm_unlock(rl_shm *shm, uint32_t s)
{
    pthread_mutex_unlock(&shm->stripes[s].lock);
}

#endif
