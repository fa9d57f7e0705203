/* stats.c -- pool-wide counters in a small shared-memory segment of their own
 *
 * One segment per configuration, named after the table: shm.name + "-stats". Its size never
 * depends on the configuration, so every configuration a pool is reloaded with attaches to
 * the same segment:
 *
 *   [header: magic, version, sizes | global counters | latency buckets][slot x RL_STATS_SLOTS]
 *   [node table: Sentinel master | node row x RL_STATS_NODES | "other" row]
 *
 * header  written once by the creator, `magic` stored last (release); an attacher reads
 *         nothing else before it sees it (acquire), and refuses another version or size.
 * slot    one rule name's counters, claimed by name (stats_claim.c). `state` is 0 (free), 1
 *         (being claimed) or 2 (named): a name is written only by the process whose CAS
 *         took the slot from 0 to 1, and is
 *         read only after state 2 is seen (acquire). A name's home is hash(name) % SLOTS,
 *         probed linearly: two processes claiming one name meet at the same first free slot,
 *         one wins it, the other waits for state 2, compares and finds its name there, so a
 *         name never gets two slots. A claimer that died at state 1 is waited for at most
 *         STATS_CLAIM_WAIT_MS, then passed over (its slot is lost, not corrupt).
 *
 * Every counter is an _Atomic uint64_t updated with relaxed adds: no lock anywhere, and a
 * process that dies mid-request loses at most its own increments. Slots are never freed: a
 * rule renamed by a reload gets a new slot and the old name's keeps its counts (unreported);
 * once all RL_STATS_SLOTS are named, a new name is counted only in RL_STAT_UNSLOTTED.
 *
 * The node table (stats_nodes.h) holds one row per Redis node address, claimed as a rule's
 * slot is (stats_nodes.c). A segment of an older version (v2 had no node table) is refused
 * with the command that removes it, as any other version or size.
 */
#include "fmacros.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm_owner.h"
#include "stats.h"
#include "stats_claim.h"
#include "clock.h"
#include "error.h"

#define STATS_MAGIC 0x3130545453544c52ULL /* "RLTSTT01" in little-endian bytes */
#define STATS_VERSION 3u                  /* 2: the regex_limit counter; 3: the node table */
#define STATS_SUFFIX "-stats"
#define STATS_ATTACH_WAIT_MS 2000
#define STATS_CLAIM_WAIT_MS 100

typedef struct stats_slot {
    _Atomic uint32_t state;
    uint32_t pad;
    char name[RL_NAME_MAX];
    _Atomic uint64_t c[RL_STAT_RULE_COUNTERS];
} stats_slot;

typedef struct stats_header {
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t ncounters; /* RL_STAT_COUNTERS, RL_STATS_BUCKETS, RL_STAT_RULE_COUNTERS */
    uint32_t nbuckets;
    uint32_t nrule_counters;
    uint32_t nnodes; /* RL_STATS_NODES, each of node_size bytes */
    uint32_t node_size;
    uint32_t pad;
    _Atomic uint64_t global[RL_STAT_COUNTERS];
    _Atomic uint64_t latency[RL_STATS_BUCKETS];
} stats_header;

typedef struct stats_segment {
    stats_header h;
    stats_slot slots[RL_STATS_SLOTS];
    stats_node_table nodes;
} stats_segment;

struct rl_stats_seg {
    stats_segment *seg;
};

const char *const rl_stat_rule_counter_names[RL_STAT_RULE_COUNTERS] = {
    "allowed",   "refused",     "dry_run_refused", "fallback",
    "fail_open", "fail_closed", "refusal_cache",
};

const char *const rl_stat_counter_names[RL_STAT_COUNTERS] = {
    "requests",   "access_denied", "access_allowed", "missing_key",    "redis_errors",
    "shm_errors", "unchecked",     "unslotted",      "latency_sum_us", "regex_limit",
};

/* shm_name + "-stats" into buf. 0, or -1 when it would be too long for a POSIX name. */
static int stats_name(const char *shm_name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s" STATS_SUFFIX, shm_name);
    return n < 0 || (size_t)n >= size || n > NAME_MAX ? -1 : 0;
}

static void stats_init(stats_segment *s)
{
    s->h.version = STATS_VERSION;
    s->h.nslots = RL_STATS_SLOTS;
    s->h.header_size = sizeof(stats_header);
    s->h.slot_size = sizeof(stats_slot);
    s->h.ncounters = RL_STAT_COUNTERS;
    s->h.nbuckets = RL_STATS_BUCKETS;
    s->h.nrule_counters = RL_STAT_RULE_COUNTERS;
    s->h.nnodes = RL_STATS_NODES;
    s->h.node_size = sizeof(stats_node);
    atomic_store_explicit(&s->h.magic, STATS_MAGIC, memory_order_release);
}

static int stats_check(const stats_segment *s, const char *name, rl_error *err)
{
    if (s->h.version != STATS_VERSION || s->h.nslots != RL_STATS_SLOTS ||
        s->h.header_size != sizeof(stats_header) || s->h.slot_size != sizeof(stats_slot) ||
        s->h.ncounters != RL_STAT_COUNTERS || s->h.nbuckets != RL_STATS_BUCKETS ||
        s->h.nrule_counters != RL_STAT_RULE_COUNTERS || s->h.nnodes != RL_STATS_NODES ||
        s->h.node_size != sizeof(stats_node)) {
        rl_errorf(err,
                  "shm \"%s\": statistics of another version (%u; this build: %u); stop the "
                  "old processes and remove it with: rm /dev/shm%s",
                  name, s->h.version, STATS_VERSION, name);
        return -1;
    }
    return 0;
}

/* Waits (bounded) for the creator to size and publish the segment, then maps it. */
static stats_segment *stats_attach(int fd, const char *name, rl_error *err)
{
    const int64_t start = rl_clock_mono_ms(), deadline = start + STATS_ATTACH_WAIT_MS;
    struct stat st;
    stats_segment *s;

    if (rl_shm_wait_sized(fd, name, start, STATS_ATTACH_WAIT_MS, &st, err) != 0)
        return NULL;
    if ((size_t)st.st_size != sizeof(stats_segment)) {
        rl_errorf(err,
                  "shm \"%s\": exists with %lld bytes, statistics take %zu; remove it "
                  "with: rm /dev/shm%s",
                  name, (long long)st.st_size, sizeof(stats_segment), name);
        return NULL;
    }
    s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        rl_errorf(err, "shm \"%s\": cannot map it: %s", name, strerror(errno));
        return NULL;
    }
    while (atomic_load_explicit(&s->h.magic, memory_order_acquire) != STATS_MAGIC) {
        if (rl_clock_mono_ms() > deadline) {
            rl_errorf(err,
                      "shm \"%s\": exists but was not initialised (its creator died?); "
                      "remove it with: rm /dev/shm%s",
                      name, name);
            munmap(s, sizeof *s);
            return NULL;
        }
        rl_clock_nap_ms(1);
    }
    if (stats_check(s, name, err) < 0) {
        munmap(s, sizeof *s);
        return NULL;
    }
    return s;
}

static stats_segment *stats_create(int fd, const char *name, rl_error *err)
{
    stats_segment *s;

    if (ftruncate(fd, (off_t)sizeof *s) < 0) {
        rl_errorf(err, "shm \"%s\": cannot size it: %s", name, strerror(errno));
        shm_unlink(name);
        return NULL;
    }
    s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        rl_errorf(err, "shm \"%s\": cannot map it: %s", name, strerror(errno));
        shm_unlink(name);
        return NULL;
    }
    stats_init(s); /* the rest is zero: ftruncate's pages */
    return s;
}

rl_stats_seg *rl_stats_open(const char *shm_name, const rl_shm_config *own, rl_error *err)
{
    const int64_t deadline = rl_clock_mono_ms() + STATS_ATTACH_WAIT_MS;
    char name[NAME_MAX + 2];
    stats_segment *s = NULL;
    rl_stats_seg *st;

    if (stats_name(shm_name, name, sizeof name) < 0) {
        rl_errorf(err, "shm \"%s\": too long a name for its statistics segment", shm_name);
        return NULL;
    }
    for (int tries = 0; s == NULL && tries < 2; tries++) {
        int fd = rl_shm_create_owned(name, own, err); /* O_EXCL, given to its owner */
        if (fd >= 0) {
            s = stats_create(fd, name, err);
            close(fd);
            break;
        }
        if (fd == RL_SHM_OWN_FAILED)
            return NULL;
        if (errno != EEXIST) {
            rl_errorf(err, "shm \"%s\": cannot create it: %s", name, strerror(errno));
            return NULL;
        }
        while ((fd = shm_open(name, O_RDWR, 0)) < 0 && rl_clock_mono_ms() <= deadline &&
               rl_shm_wait_owner(name, errno))
            ; /* its creator has not given it to its owner yet */
        if (fd < 0) {
            if (errno == ENOENT)
                continue; /* removed between our two opens: create it again */
            rl_shm_open_error(name, errno, err);
            return NULL;
        }
        s = stats_attach(fd, name, err);
        close(fd);
        break;
    }
    if (s == NULL)
        return NULL;
    st = malloc(sizeof *st);
    if (st == NULL) {
        munmap(s, sizeof *s);
        rl_errorf(err, "out of memory");
        return NULL;
    }
    st->seg = s;
    return st;
}

void rl_stats_close(rl_stats_seg *st)
{
    if (st == NULL)
        return;
    munmap(st->seg, sizeof *st->seg);
    free(st);
}

int rl_stats_probe(const char *shm_name, const rl_shm_config *own, rl_error *err)
{
    char name[NAME_MAX + 1];
    struct stat st;
    stats_segment *s;
    int fd, rc = 0;

    if (stats_name(shm_name, name, sizeof name) < 0)
        return 0;                   /* rl_stats_open reports the name */
    fd = shm_open(name, O_RDWR, 0); /* as rl_stats_open: creates nothing */
    if (fd < 0 && errno == ENOENT)
        return rl_shm_may_give(name, own, err); /* a start creates it */
    if (fd < 0 && errno == EACCES) {
        rl_shm_open_error(name, errno, err);
        return -1;
    }
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size != sizeof(stats_segment)) {
        close(fd);
        rl_errorf(err,
                  "shm \"%s\": exists with %lld bytes, statistics take %zu; remove it with: "
                  "rm /dev/shm%s",
                  name, (long long)st.st_size, sizeof(stats_segment), name);
        return -1;
    }
    s = mmap(NULL, sizeof *s, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED)
        return 0;
    if (atomic_load_explicit(&s->h.magic, memory_order_acquire) != STATS_MAGIC) {
        rl_errorf(err, "shm \"%s\": exists but was not initialised; remove it with: rm /dev/shm%s",
                  name, name);
        rc = -1;
    } else {
        rc = stats_check(s, name, err);
    }
    munmap(s, sizeof *s);
    return rc;
}

int rl_stats_unlink(const char *shm_name)
{
    char name[NAME_MAX + 2];
    if (stats_name(shm_name, name, sizeof name) < 0)
        return -1;
    return shm_unlink(name) == 0 ? 0 : -1;
}

int rl_stats_slot(rl_stats_seg *st, const char *name)
{
    const rl_claim_table t = {
        .rows = st->seg->slots,
        .row_size = sizeof(stats_slot),
        .name_off = offsetof(stats_slot, name),
        .name_size = sizeof st->seg->slots[0].name,
        .nrows = RL_STATS_SLOTS,
        .wait_ms = STATS_CLAIM_WAIT_MS,
    };

    return rl_stats_claim(&t, name, NULL, NULL);
}

void rl_stats_add(rl_stats_seg *st, rl_stat_counter c, uint64_t n)
{
    if (st != NULL)
        atomic_fetch_add_explicit(&st->seg->h.global[c], n, memory_order_relaxed);
}

void rl_stats_rule_add(rl_stats_seg *st, int slot, rl_stat_rule_counter c)
{
    if (st == NULL)
        return;
    if (slot < 0)
        atomic_fetch_add_explicit(&st->seg->h.global[RL_STAT_UNSLOTTED], 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&st->seg->slots[slot].c[c], 1, memory_order_relaxed);
}

void rl_stats_latency(rl_stats_seg *st, uint64_t us)
{
    unsigned b = 0;

    if (st == NULL)
        return;
    while (b < RL_STATS_BUCKETS - 1 && us > (1ULL << b))
        b++;
    atomic_fetch_add_explicit(&st->seg->h.latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->seg->h.global[RL_STAT_LATENCY_SUM_US], us, memory_order_relaxed);
}

void rl_stats_read(const rl_stats_seg *st, rl_stats *out)
{
    stats_segment *s = st->seg;
    for (int i = 0; i < RL_STAT_COUNTERS; i++)
        out->global[i] = (int64_t)atomic_load_explicit(&s->h.global[i], memory_order_relaxed);
    for (int i = 0; i < RL_STATS_BUCKETS; i++)
        out->latency[i] = (int64_t)atomic_load_explicit(&s->h.latency[i], memory_order_relaxed);
}

void rl_stats_read_slot(const rl_stats_seg *st, int slot, int64_t *c)
{
    for (int i = 0; i < RL_STAT_RULE_COUNTERS; i++)
        c[i] = slot < 0 ? 0
                        : (int64_t)atomic_load_explicit(&st->seg->slots[slot].c[i],
                                                        memory_order_relaxed);
}

stats_node_table *rl_stats_node_table(const rl_stats_seg *st)
{
    return &st->seg->nodes;
}
