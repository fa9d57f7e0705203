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
 *         nothing else before it sees it (acquire). `magic` is at offset 0 in every version.
 * slot    one rule name's counters, claimed by name (stats_claim.c). `state` is 0 (free), 1
 *         (being claimed) or 2 (named): a name is written only by the process whose CAS
 *         took the slot from 0 to 1, and is read only after state 2 is seen (acquire). A
 *         name's home is hash(name) % SLOTS, probed linearly: two processes claiming one name
 *         meet at the same first free slot, one wins it, the other waits for state 2,
 *         compares and finds its name there, so a name never gets two slots. A claimer that
 *         died at state 1 is waited for at most STATS_CLAIM_WAIT_MS, then passed over (its
 *         slot is lost, not corrupt).
 *
 * Every counter is an _Atomic uint64_t updated with relaxed adds: no lock anywhere, and a
 * process that dies mid-request loses at most its own increments. Slots are never freed: a
 * rule renamed by a reload gets a new slot and the old name's keeps its counts (unreported);
 * once all RL_STATS_SLOTS are named, a new name is counted only in RL_STAT_UNSLOTTED.
 *
 * The node table (stats_nodes.h) holds one row per Redis node address, claimed as a rule's
 * slot is (stats_nodes.c).
 *
 * Another build's segment (another version, v2 had no node table, or another size) is
 * replaced, never refused: an upgrade must not take the pool down for its counters. Only a
 * published one is judged (our magic seen; a segment being made is waited for, within
 * STATS_ATTACH_WAIT_MS, and one never published within it is refused as before, not taken
 * for stale). The replacer holds flock(LOCK_EX) on the old segment from before it checks
 * that the name is still that file (st_dev, st_ino) until the new one, made O_EXCL under the
 * name and owned as shm_owner.h says, exists: of several processes finding one stale segment
 * exactly one removes it, and the others, once they get the lock, see the name on another
 * file (or none) and start over, attaching to the new one (or creating it). Processes of the
 * old build keep their mapping of the old segment and count into it until they exit; those
 * counts are not in the new one (counters, not limits: acceptable, and said in the log note).
 * A segment that is not ours to remove (another owner, in the sticky /dev/shm) or that this
 * user cannot open is refused with what to do, as before.
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
#include <sys/file.h>
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
#define STATS_OPEN_TRIES 5 /* passes of rl_stats_open: create, attach or replace */

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
    char note[NAME_MAX + 300]; /* what the open did to a stale segment, or "" (rl_stats_note) */
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

/* 0 when the published header s is this build's layout; else -1 with why ("version 2, this
 * build's 3"). */
static int stats_check(const stats_segment *s, char *why, size_t len)
{
    if (s->h.version != STATS_VERSION || s->h.nslots != RL_STATS_SLOTS ||
        s->h.header_size != sizeof(stats_header) || s->h.slot_size != sizeof(stats_slot) ||
        s->h.ncounters != RL_STAT_COUNTERS || s->h.nbuckets != RL_STATS_BUCKETS ||
        s->h.nrule_counters != RL_STAT_RULE_COUNTERS || s->h.nnodes != RL_STATS_NODES ||
        s->h.node_size != sizeof(stats_node)) {
        snprintf(why, len, "version %u, this build's %u", s->h.version, STATS_VERSION);
        return -1;
    }
    return 0;
}

/* The bytes of a segment of size bytes worth mapping: this layout's at most. */
static size_t stats_map_len(off_t size)
{
    return (uint64_t)size < sizeof(stats_segment) ? (size_t)size : sizeof(stats_segment);
}

/* A published segment (its magic seen, len bytes mapped at s, size bytes long): 0 when it is
 * this build's, 1 when another build's (why says how it differs). */
static int stats_judge(const stats_segment *s, off_t size, char *why, size_t len)
{
    if ((uint64_t)size != sizeof(stats_segment)) {
        snprintf(why, len, "%lld bytes, this build's %zu", (long long)size, sizeof(stats_segment));
        return 1;
    }
    return stats_check(s, why, len) < 0 ? 1 : 0;
}

/* The refusal of a segment whose magic is not (yet) ours: one of this size never published
 * (its creator died?), or not a statistics segment at all. */
static void stats_unpublished(const char *name, off_t size, rl_error *err)
{
    if ((uint64_t)size == sizeof(stats_segment))
        rl_errorf(err,
                  "shm \"%s\": exists but was not initialised (its creator died?); remove it "
                  "with: rm /dev/shm%s",
                  name, name);
    else
        rl_errorf(err,
                  "shm \"%s\": exists with %lld bytes, statistics take %zu; remove it with: "
                  "rm /dev/shm%s",
                  name, (long long)size, sizeof(stats_segment), name);
}

/* Waits (bounded) for the creator to size and publish the segment, then judges it. 0 with *out
 * mapped (this build's), 1 when it is another build's (why; nothing mapped), -1 with err
 * (empty or never published within the wait, or not ours at all: refused, as always). */
static int stats_attach(int fd, const char *name, struct stat *st, stats_segment **out, char *why,
                        size_t whylen, rl_error *err)
{
    const int64_t start = rl_clock_mono_ms(), deadline = start + STATS_ATTACH_WAIT_MS;
    stats_segment *s;
    size_t len;
    int rc;

    if (rl_shm_wait_sized(fd, name, start, STATS_ATTACH_WAIT_MS, st, err) != 0)
        return -1;
    if ((size_t)st->st_size < sizeof s->h.magic) {
        stats_unpublished(name, st->st_size, err);
        return -1;
    }
    len = stats_map_len(st->st_size);
    s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        rl_errorf(err, "shm \"%s\": cannot map it: %s", name, strerror(errno));
        return -1;
    }
    /* Even a segment of another size is judged only once published: the magic is at the
     * start in every version, and a segment still being made is never taken for stale. */
    while (atomic_load_explicit(&s->h.magic, memory_order_acquire) != STATS_MAGIC) {
        if (rl_clock_mono_ms() > deadline) {
            stats_unpublished(name, st->st_size, err);
            munmap(s, len);
            return -1;
        }
        rl_clock_nap_ms(1);
    }
    rc = stats_judge(s, st->st_size, why, whylen);
    if (rc != 0)
        munmap(s, len);
    else
        *out = s;
    return rc;
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

/* 0 when this process may remove the stale segment old (stat) from the sticky /dev/shm (its
 * owner or root), else -1 with err: the error a replacement by this user meets. */
static int stats_may_replace(const char *name, const struct stat *old, const char *why,
                             rl_error *err)
{
    if (geteuid() == 0 || geteuid() == old->st_uid)
        return 0;
    rl_errorf(err,
              "shm \"%s\": statistics of another version (%s), which this process (uid %ld) "
              "may not replace: they belong to uid %ld (gid %ld, mode %04o), and in the sticky "
              "/dev/shm only their owner or root may remove them; start once as their owner or "
              "as root, or remove them as root: rm /dev/shm%s",
              name, why, (long)geteuid(), (long)old->st_uid, (long)old->st_gid,
              (unsigned)(old->st_mode & 07777), name);
    return -1;
}

/* Replaces the stale segment open on fd (old: its stat; why: how it differs) by a new one,
 * owned as own says (as root, what own leaves unset is the old one's: the pool keeps its
 * statistics' owner). Serialised by flock(LOCK_EX) on the old segment, held until the new
 * one has the name, and done only while the name is still the old file's: of several
 * processes finding one stale segment, exactly one removes it; the others find the name on
 * another file (or none) and start over, attaching to the new one. Returns the new segment,
 * NULL with *again set (start over), or NULL with err; note is set once the old one is
 * removed. */
static stats_segment *stats_replace(int fd, const char *name, const struct stat *old,
                                    const char *why, const rl_shm_config *own, char *note,
                                    size_t notelen, int *again, rl_error *err)
{
    rl_shm_config adopted = {0};
    stats_segment *s = NULL;
    int nfd;

    if (rl_shm_flock_wait(fd, STATS_ATTACH_WAIT_MS) < 0) {
        rl_errorf(err,
                  "shm \"%s\": statistics of another version (%s): cannot lock it to replace "
                  "it: %s",
                  name, why,
                  errno == EWOULDBLOCK ? "another process held it too long" : strerror(errno));
        return NULL;
    }
    if (!rl_shm_still_named(name, fd)) {
        *again = 1; /* replaced (or removed) meanwhile */
        goto out;
    }
    if (stats_may_replace(name, old, why, err) < 0)
        goto out;
    if (own != NULL)
        adopted = *own;
    rl_shm_owner_adopt(&adopted, old);
    if (shm_unlink(name) < 0) {
        rl_errorf(err, "shm \"%s\": statistics of another version (%s): cannot remove it: %s", name,
                  why, strerror(errno));
        goto out;
    }
    /* This process replaced it, even when another one that found the name free makes the
     * new segment first: the note is ours to log, exactly once. */
    snprintf(note, notelen,
             "shm \"%s\": statistics of another version (%s) replaced: the counters restart at "
             "0 (processes of the old build still running count into the old segment, which is "
             "no longer shown)",
             name, why);
    nfd = rl_shm_create_owned(name, &adopted, err); /* O_EXCL, given to its owner */
    if (nfd == RL_SHM_OWN_FAILED)
        goto out;
    if (nfd < 0) {
        if (errno == EEXIST)
            *again = 1; /* a process that found the name free made it: attach to it */
        else
            rl_errorf(err, "shm \"%s\": cannot create it: %s", name, strerror(errno));
        goto out;
    }
    s = stats_create(nfd, name, err);
    close(nfd);
out:
    flock(fd, LOCK_UN);
    return s;
}

rl_stats_seg *rl_stats_open(const char *shm_name, const rl_shm_config *own, rl_error *err)
{
    char name[NAME_MAX + 2], why[80], note[sizeof((rl_stats_seg *)0)->note];
    stats_segment *s = NULL;
    rl_stats_seg *st;
    int failed = 0;

    note[0] = '\0';
    if (stats_name(shm_name, name, sizeof name) < 0) {
        rl_errorf(err, "shm \"%s\": too long a name for its statistics segment", shm_name);
        return NULL;
    }
    /* Each pass creates the segment, attaches to it, or replaces a stale one; a pass starts
     * over only when another process removed or replaced it meanwhile. */
    for (int tries = 0; s == NULL && !failed && tries < STATS_OPEN_TRIES; tries++) {
        const int64_t deadline = rl_clock_mono_ms() + STATS_ATTACH_WAIT_MS;
        struct stat sb;
        int again = 0, rc;
        int fd = rl_shm_create_owned(name, own, err); /* O_EXCL, given to its owner */
        if (fd >= 0) {
            s = stats_create(fd, name, err);
            close(fd);
            failed = s == NULL;
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
        rc = stats_attach(fd, name, &sb, &s, why, sizeof why, err);
        if (rc == 1)
            s = stats_replace(fd, name, &sb, why, own, note, sizeof note, &again, err);
        close(fd);
        failed = s == NULL && !again;
    }
    if (s == NULL) {
        if (!failed)
            rl_errorf(err,
                      "shm \"%s\": replaced by other processes %d times while this one opened "
                      "it (processes of two builds starting at once?); start again",
                      name, STATS_OPEN_TRIES);
        return NULL;
    }
    st = malloc(sizeof *st);
    if (st == NULL) {
        munmap(s, sizeof *s);
        rl_errorf(err, "out of memory");
        return NULL;
    }
    st->seg = s;
    snprintf(st->note, sizeof st->note, "%s", note);
    return st;
}

void rl_stats_close(rl_stats_seg *st)
{
    if (st == NULL)
        return;
    munmap(st->seg, sizeof *st->seg);
    free(st);
}

const char *rl_stats_note(const rl_stats_seg *st)
{
    return st->note;
}

int rl_stats_probe(const char *shm_name, const rl_shm_config *own, rl_error *err)
{
    rl_shm_config adopted = {0};
    char name[NAME_MAX + 1], why[80];
    struct stat st;
    stats_segment *s;
    size_t len;
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
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0; /* cannot tell: the start will say */
    }
    if ((size_t)st.st_size < sizeof s->h.magic) {
        close(fd);
        stats_unpublished(name, st.st_size, err);
        return -1;
    }
    len = stats_map_len(st.st_size);
    s = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED)
        return 0;
    if (atomic_load_explicit(&s->h.magic, memory_order_acquire) != STATS_MAGIC) {
        stats_unpublished(name, st.st_size, err); /* -t waits for no creator */
        rc = -1;
    } else if (stats_judge(s, st.st_size, why, sizeof why) != 0) {
        /* As stats_replace: its owner or root removes it and makes one owned as configured. */
        if (own != NULL)
            adopted = *own;
        rl_shm_owner_adopt(&adopted, &st);
        rc = stats_may_replace(name, &st, why, err) < 0 || rl_shm_may_give(name, &adopted, err) < 0
                 ? -1
                 : 1;
        if (rc == 1)
            rl_errorf(err,
                      "shm \"%s\": statistics of another version: replaced, counters restart (%s)",
                      name, why);
    }
    munmap(s, len);
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
