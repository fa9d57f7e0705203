/* shm.c -- the host-wide shared-memory table: key -> rl_state, bounded by CLOCK eviction
 *
 * Every process of a pool maps one named POSIX segment, each at its own address, so nothing
 * inside it is a pointer: references are byte offsets from the segment start or slot indexes.
 *
 *   [header][stripe x S][bucket heads: uint32 x S*B][slot x capacity]
 *
 * header  immutable after creation except its atomic counters. `magic` is stored last (release)
 *         by the creator, before the segment even has its name (shm_gen.c); an attacher
 *         reads nothing else before it sees it (acquire). It records the capacity, key_max,
 *         state_words, slot size and generation the segment was made for. An opener whose
 *         configuration needs another capacity or larger slots does not attach: it replaces
 *         the segment by a new generation that carries the live entries over (shm_gen.c);
 *         one that needs smaller slots attaches and uses the segment's own sizes.
 * stripe  S = a power of 2 <= 64 independent sub-tables, each with its own robust,
 *         process-shared mutex. A key lives in stripe (hash & (S-1)), hash = SipHash-1-3 of
 *         the key under a random 128-bit key chosen by the creator (no hash flooding). A stripe
 *         owns the slots [first, first+nslots) (derived from the capacity by every process, not
 *         stored: a stripe, its lock included, is one 64-byte line), B bucket heads (chains
 *         through slot.next, full key compared), a CLOCK hand and a free list (slot.next of
 *         free slots). Slots [first+fresh, first+nslots) were never used and are still all
 *         zero: creation writes no slot, so it costs the same for any size (pages are reserved
 *         up front by posix_fallocate, never touched). S shrinks for small capacities so
 *         that every stripe owns >= 16 slots (>= RL_MAX_MATCH: one request never evicts its
 *         own keys).
 * slot    sized at creation from the configuration, not from the maxima: a 16-byte head (chain
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
 * reach this path with RL_SHM_TEST_DIE_IN_LOCK=1 (read at open; see rl_shm_test_die), in
 * test builds only (-DRL_TESTING, the GNUmakefile's $(B)/testing/): a release build has
 * neither the hook nor the getenv.
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

#include "shm_int.h"
#include "shm_owner.h"
#include "clock.h"
#include "error.h"

/* ---- errors ---------------------------------------------------------------------------- */

void rl_shm_seterr(rl_shm *shm, const char *fmt, ...) RL_PRINTF(2, 3);
void rl_shm_seterr(rl_shm *shm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rl_errbuf_vset(shm->errstr, sizeof shm->errstr, fmt, ap);
    va_end(ap);
}

/* ---- creating and attaching ------------------------------------------------------------ */

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

static int shm_init_stripes(rl_shm *shm, rl_error *err)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);

    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    for (uint32_t s = 0; rc == 0 && s < shm->nstripes; s++) {
        shm_stripe *st = &shm->stripes[s];
        st->free_head = SHM_NIL;
        rc = pthread_mutex_init(&st->lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0)
        rl_errorf(err, "shm \"%s\": cannot initialise its locks: %s", shm->name, strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* We created `made` (O_EXCL, a name nobody else opens: shm_gen.c puts it in place once it is
 * complete): size, initialise, publish. On failure the name is removed so no half-made segment
 * stays behind. */
int rl_shm_create(rl_shm *shm, int fd, const char *made, const shm_geom *g, int64_t capacity,
                  rl_error *err)
{
    unsigned char *base;
    shm_header *h;
    int rc;

    if (ftruncate(fd, (off_t)g->size) < 0) {
        rl_errorf(err, "shm \"%s\": cannot size it to %zu bytes for capacity %lld: %s", shm->name,
                  g->size, (long long)capacity, strerror(errno));
        goto fail;
    }
    /* Reserve the memory now: tmpfs is sparse, and a page that cannot be had later would be
     * a SIGBUS in the middle of a request instead of an error here. */
    rc = posix_fallocate(fd, 0, (off_t)g->size);
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
        rl_errorf(err,
                  "shm \"%s\": capacity %lld needs %zu MiB of shared memory: %s (see df "
                  "/dev/shm; lower shm.capacity)",
                  shm->name, (long long)capacity, g->size >> 20, strerror(rc));
        goto fail;
    }
    base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rl_errorf(err, "shm \"%s\": cannot map %zu bytes for capacity %lld: %s", shm->name, g->size,
                  (long long)capacity, strerror(errno));
        goto fail;
    }
    rl_shm_bind(shm, base, g->size, g);
    if (shm_random_key(shm->hash_key, sizeof shm->hash_key) < 0) {
        rl_errorf(err, "shm \"%s\": getrandom: %s", shm->name, strerror(errno));
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
    h->generation = 1;
    memcpy(h->hash_key, shm->hash_key, sizeof h->hash_key);
    memset(shm->buckets, 0xff, (size_t)g->nstripes * g->nbuckets * sizeof(uint32_t));
    if (shm_init_stripes(shm, err) < 0)
        goto fail;
    atomic_store_explicit(&h->magic, SHM_MAGIC, memory_order_release);
    return 0;

fail:
    if (shm->base != NULL)
        munmap(shm->base, shm->size);
    shm->base = NULL;
    shm_unlink(made);
    return -1;
}

/* What an existing segment can do for a configuration of (capacity, key_max, state_words);
 * og gets the segment's own geometry (valid unless SHM_FRESH or SHM_FOREIGN), why a sentence
 * saying what differs. The header is read, never trusted: every field is checked against the
 * geometry its capacity, key size and state words imply, and against the object's size. */
shm_verdict rl_shm_judge(const shm_header *h, size_t st_size, int64_t capacity, size_t key_max,
                         size_t state_words, shm_geom *og, char *why, size_t whylen)
{
    uint64_t magic = atomic_load_explicit(&((shm_header *)h)->magic, memory_order_acquire);

    if (magic != SHM_MAGIC) {
        snprintf(why, whylen, "is not a rate-limit table (magic %#llx)", (unsigned long long)magic);
        return SHM_FOREIGN;
    }
    if (h->layout != SHM_LAYOUT || h->header_size != sizeof(shm_header) ||
        h->stripe_size != sizeof(shm_stripe) || h->mutex_size != sizeof(pthread_mutex_t)) {
        snprintf(why, whylen, "was made by another build (layout %u; this build: layout %u)",
                 h->layout, SHM_LAYOUT);
        return SHM_FRESH;
    }
    if (h->capacity > (uint64_t)RL_SHM_CAPACITY_MAX ||
        rl_shm_geometry((int64_t)h->capacity, h->key_max, h->state_words, og) < 0 ||
        h->slot_size != og->slot_size || h->size != og->size || st_size != og->size ||
        h->nstripes != og->nstripes || h->nbuckets != og->nbuckets ||
        h->stripes_off != og->stripes_off || h->buckets_off != og->buckets_off ||
        h->slots_off != og->slots_off) {
        snprintf(why, whylen, "is damaged (header inconsistent with its %zu bytes)", st_size);
        return SHM_FRESH;
    }
    if (h->capacity != (uint64_t)capacity) {
        snprintf(why, whylen, "has capacity %llu, the configuration %lld",
                 (unsigned long long)h->capacity, (long long)capacity);
        return SHM_CARRY;
    }
    if (h->key_max < key_max || h->state_words < state_words) {
        snprintf(why, whylen,
                 "holds keys of up to %u bytes and %u state words, the configuration needs %zu "
                 "and %zu (a longer rule name, a sliding_log rule or Redis switched on)",
                 h->key_max, h->state_words, key_max, state_words);
        return SHM_CARRY;
    }
    snprintf(why, whylen, "fits");
    return SHM_FITS;
}

/* Another process made the name: map it and wait (bounded) until it is published; a segment
 * made by this build is always published before it has its name, so the wait is for older
 * builds' creators. 0 with *base and *size mapped, or -1 with err. */
static int shm_map_published(rl_shm *shm, int fd, int64_t start, unsigned char **basep,
                             size_t *sizep, rl_error *err)
{
    const char *n = shm->name;
    int64_t deadline = start + SHM_ATTACH_WAIT_MS;
    struct stat st;
    unsigned char *base;
    uint64_t magic;

    if (rl_shm_wait_sized(fd, n, start, SHM_ATTACH_WAIT_MS, &st, err) != 0)
        return -1;
    /* ftruncate sets the whole size at once: a nonzero size is the creator's final size. */
    if ((uint64_t)st.st_size < sizeof(shm_header) || (uint64_t)st.st_size > SIZE_MAX) {
        rl_errorf(err, "shm \"%s\": exists but is not a rate-limit table (%lld bytes)", n,
                  (long long)st.st_size);
        return -1;
    }
    deadline += (int64_t)((uint64_t)st.st_size >> 30) * SHM_ATTACH_WAIT_MS_PER_GIB;
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rl_errorf(err, "shm \"%s\": cannot map %lld bytes: %s", n, (long long)st.st_size,
                  strerror(errno));
        return -1;
    }
    while ((magic = atomic_load_explicit(&((shm_header *)base)->magic, memory_order_acquire)) !=
           SHM_MAGIC) {
        if (magic != 0) {
            rl_errorf(err, "shm \"%s\": exists but is not a rate-limit table (magic %#llx)", n,
                      (unsigned long long)magic);
            goto fail;
        }
        if (rl_clock_mono_ms() > deadline) {
            rl_errorf(err,
                      "shm \"%s\": exists but was not initialised within %d ms (its creator "
                      "died?); remove it with: rm /dev/shm%s",
                      n, (int)(deadline - start), n);
            goto fail;
        }
        rl_clock_nap_ms(2);
    }
    *basep = base;
    *sizep = (size_t)st.st_size;
    return 0;

fail:
    munmap(base, (size_t)st.st_size);
    return -1;
}

static int shm_check_name(const char *name, rl_error *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len < 2 || len > NAME_MAX - SHM_NEW_SUFFIX_MAX || name[0] != '/' ||
        strchr(name + 1, '/') != NULL) {
        rl_errorf(err, "shm name \"%s\": must be \"/\" then 1 to %d characters without \"/\"",
                  name != NULL ? name : "(null)", NAME_MAX - SHM_NEW_SUFFIX_MAX - 1);
        return -1;
    }
    return 0;
}

/* The existing segment behind fd, published: attach when it fits; otherwise replace it by a
 * new generation (shm_gen.c). 0 attached or replaced, 1 to start over (the name changed
 * meanwhile), -1 with err. */
static int shm_use(rl_shm *shm, int fd, const shm_geom *want, int64_t capacity, int64_t start,
                   rl_error *err)
{
    unsigned char *base;
    size_t size;
    shm_geom og;
    char why[200];
    shm_verdict v;
    int rc;

    if (shm_map_published(shm, fd, start, &base, &size, err) < 0)
        return -1;
    v = rl_shm_judge((const shm_header *)base, size, capacity, shm->key_max, shm->state_words, &og,
                     why, sizeof why);
    if (v == SHM_FITS) {
        /* Slots may be larger than we need: the segment's own sizes say where a key is. */
        shm->key_max = ((shm_header *)base)->key_max;
        shm->state_words = ((shm_header *)base)->state_words;
        rl_shm_bind(shm, base, size, &og);
        memcpy(shm->hash_key, shm->hdr->hash_key, sizeof shm->hash_key);
        return 0;
    }
    if (v == SHM_FOREIGN) {
        rl_errorf(err, "shm \"%s\": exists but %s; remove it with: rm /dev/shm%s", shm->name, why,
                  shm->name);
        munmap(base, size);
        return -1;
    }
    rc = rl_shm_replace(shm, fd, base, size, v == SHM_CARRY ? &og : NULL, want, capacity, err);
    munmap(base, size);
    return rc;
}

rl_shm *rl_shm_open(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                    rl_error *err)
{
    return rl_shm_open_owned(name, capacity, key_max, state_words, NULL, err);
}

rl_shm *rl_shm_open_owned(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                          const rl_shm_config *own, rl_error *err)
{
    const int64_t start = rl_clock_mono_ms();
    shm_geom g;
    rl_shm *shm;
    int rc = -1;

    if (shm_check_name(name, err) < 0)
        return NULL;
    if (capacity < RL_SHM_CAPACITY_MIN || capacity > RL_SHM_CAPACITY_MAX) {
        rl_errorf(err, "shm \"%s\": capacity %lld out of range [%d, %lld]", name,
                  (long long)capacity, RL_SHM_CAPACITY_MIN, (long long)RL_SHM_CAPACITY_MAX);
        return NULL;
    }
    if (key_max < 1 || key_max > RL_KEY_MAX || state_words < 1 || state_words > RL_STATE_WORDS ||
        rl_shm_geometry(capacity, key_max, state_words, &g) < 0) {
        rl_errorf(err,
                  "shm \"%s\": key_max %zu or state_words %zu out of range [1, %d], "
                  "[1, %d]",
                  name, key_max, state_words, RL_KEY_MAX, RL_STATE_WORDS);
        return NULL;
    }
    key_max = rl_shm_key_room(key_max, state_words); /* same slots: g stays right */
    shm = calloc(1, sizeof *shm);
    if (shm == NULL) {
        rl_errorf(err, "shm \"%s\": out of memory", name);
        return NULL;
    }
    snprintf(shm->name, sizeof shm->name, "%s", name);
    if (own != NULL)
        shm->own = *own;
    shm->own.name = NULL; /* the caller's: not kept */
#ifdef RL_TESTING
    {
        const char *hook = getenv("RL_SHM_TEST_DIE_IN_LOCK");
        shm->die_in_lock = hook != NULL && strcmp(hook, "1") == 0;
    }
#endif

    /* Each round either ends or found the name changed under it (created, replaced or
     * removed by another process in between): only processes of different configurations
     * replacing each other's generations in a loop can use up the rounds. */
    for (int round = 0;; round++) {
        int fd;
        shm->capacity = (uint64_t)capacity;
        shm->key_max = (uint32_t)key_max;
        shm->state_words = (uint32_t)state_words;
        if (round == SHM_OPEN_ROUNDS) {
            rl_errorf(err, "shm \"%s\": replaced by other processes %d times while opening it",
                      name, SHM_OPEN_ROUNDS);
            rc = -1;
            break;
        }
        /* EACCES on an empty segment: one an older build created under the name and has not
         * given to its owner yet (this build publishes only complete, owned segments). */
        while ((fd = shm_open(name, O_RDWR, 0)) < 0 &&
               rl_clock_mono_ms() - start <= SHM_ATTACH_WAIT_MS && rl_shm_wait_owner(name, errno))
            ;
        if (fd < 0 && errno == ENOENT) {
            rc = rl_shm_make(shm, &g, capacity, NULL, 0, &shm->own, err);
        } else if (fd < 0) {
            rl_shm_open_error(name, errno, err);
            rc = -1;
        } else {
            rc = shm_use(shm, fd, &g, capacity, start, err);
            close(fd);
        }
        if (rc != 1)
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
    if (shm_check_name(name, NULL) == 0)
        rl_shm_sweep(name);
    return shm_unlink(name) == 0 ? 0 : -1;
}
