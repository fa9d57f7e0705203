/* backend.h -- the two stores a decision can come from (internal)
 *
 * Both take the same batch: every rule a request matched, each with its key and cost, and
 * decide it atomically: admitted when every enforced item admits, and then every admitting
 * item is stored; refused, and then none is. A dry-run item (rule->dry_run) is decided and
 * reported like the others but its refusal neither refuses the batch nor is stored. They differ in where the state lives:
 * shm.c keeps it in a host-wide shared-memory table, redis.c in Redis for every host.
 */
#ifndef RL_BACKEND_H
#define RL_BACKEND_H

#include "algo.h"
#include "config_types.h"
#include "keys.h"

/* One rule's part of a decision. All pointers are borrowed for the call. */
typedef struct rl_item {
    const rl_rule *rule;
    const char *client; /* the client identity the key is built from */
    const char *key;    /* "RULE\x1fCLIENT": unique per rule and client, <= the store's key_max */
    size_t keylen;
    int64_t cost;        /* units this item charges, >= 1 */
    rl_rule_result *res; /* filled by the backend */
} rl_item;

/* ---- shared memory (shm.c) ---- */
typedef struct rl_shm rl_shm;

/* Capacities rl_shm_open accepts. Below the minimum a stripe could hold fewer slots than a
 * request has rules; above the maximum slot indexes would not fit in 32 bits with room to
 * spare (and the segment would be hundreds of GiB). */
#define RL_SHM_CAPACITY_MIN 16
#define RL_SHM_CAPACITY_MAX (1LL << 30)

/* A snapshot of the table, for metrics (rl_shm_stats). Counters are since the segment was
 * created. (The type is rl_shm_stat: C cannot give a type and a function one name.) */
typedef struct rl_shm_stat {
    int64_t capacity;          /* keys the table holds */
    int64_t entries;           /* keys in use, including expired ones not yet reclaimed */
    int64_t evictions;         /* live keys evicted (least recently used) to make room */
    int64_t expired_reclaimed; /* expired keys whose slot was taken back */
    int64_t insert_failures;   /* inserts that found no slot: always 0 unless damaged */
    int64_t stripes;           /* independent locks the table is split into */
    int64_t repairs;    /* stripes rebuilt (damaged, or owner died): their keys may be lost */
    int64_t generation; /* 1 for a new segment, +1 at each replacement (shm_gen.c) */
    int64_t key_max, state_words; /* the slots' sizes, at least what the opener asked for */
} rl_shm_stat;

/* Creates the named segment, or attaches to it when another process already did and it fits
 * (same layout and capacity, slots at least key_max and state_words large). A segment that
 * does not fit is replaced by a new generation made for this configuration, which starts with
 * every live entry of the old one (shm_gen.c). Slots are sized from key_max (the
 * longest key a decision may pass, 1..RL_KEY_MAX; limiter.c: longest rule name + 1 +
 * RL_CLIENT_MAX) and state_words (rl_state words kept per key, 1..RL_STATE_WORDS: the most
 * rl_algo_state_words of any rule decided in it; limiter.c). A decision moves only its rule's
 * words, and refuses a rule that needs more than state_words. NULL with err on failure. err
 * may be NULL.
 * The handle may be shared by threads; errstr then holds one of their last errors. */
rl_shm *rl_shm_open(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                    rl_error *err);
/* The same, creating the segment owned as own says (shm.user, shm.group, shm.mode; see
 * shm_owner.h); rl_shm_open is this with own NULL: the process's user and group, mode 0600. */
rl_shm *rl_shm_open_owned(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                          const rl_shm_config *own, rl_error *err);
void rl_shm_close(rl_shm *shm);
/* What rl_shm_open would do with the segment in place, without changing anything (for -t):
 * writes one sentence into out and returns RL_SHM_PLAN_NEW (no segment yet), _KEEP (it fits:
 * all state kept), _CARRY (replaced by a new generation, live entries carried over), _FRESH
 * (replaced by an empty one: another layout or damaged), _UNKNOWN (cannot be read), or -1
 * when rl_shm_open_owned(..., own, ...) by this process would fail (a foreign object, not
 * enough shared memory, a segment this user may not open or replace, an owner it may not give
 * a new segment to: shm_owner.h). A new segment's or generation's owner is said. */
enum {
    RL_SHM_PLAN_NEW,
    RL_SHM_PLAN_KEEP,
    RL_SHM_PLAN_CARRY,
    RL_SHM_PLAN_FRESH,
    RL_SHM_PLAN_UNKNOWN
};
int rl_shm_plan(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                const rl_shm_config *own, char *out, size_t len);
/* Calls fn for the key of every live entry of the segment in place, without locks and
 * without writing (a report for -t, not a decision: an entry changing meanwhile may be missed
 * or seen twice; every index and length is bounds-checked). 0, or -1 when there is no sound
 * segment to read. */
int rl_shm_scan(const char *name, void (*fn)(const char *key, size_t len, void *ud), void *ud);
/* What rl_shm_open did to the segment in place when it replaced it by a new generation (one
 * sentence, for the log), or "". */
const char *rl_shm_note(const rl_shm *shm);
/* rl_shm_note of the limiter's table, then rl_stats_note of its statistics, in one line, or
 * "" (limiter_open.c). */
const char *rl_limiter_shm_note(const rl_limiter *lim);
/* rl_shm_plan for the table cfg's limiter would open, and -1 too when its statistics segment
 * would refuse the start; a statistics segment the start would replace (another build's) adds
 * "; " and rl_stats_probe's sentence (limiter_open.c). */
int rl_limiter_shm_plan(const rl_config *cfg, char *out, size_t len);
/* For each rule i of cfg, the live entries of the table in place under its identity (live[i])
 * and under its name with another limit (stale[i]: a state the rule no longer reads). 0, or
 * -1 when there is no table to read. */
int rl_limiter_shm_census(const rl_config *cfg, int64_t *live, int64_t *stale);
/* Removes the name; processes attached keep their mapping. 0, or -1 when it did not exist. */
int rl_shm_unlink(const char *name);
/* Decides items[0..n) atomically at now_ms; now_ms < 0 means "read CLOCK_REALTIME once the
 * locks are held", which keeps decisions on a key in clock order. A key longer than key_max
 * is an error. Returns 1 when admitted (every enforced item admits), 0 when refused, -1 on
 * error (errstr via rl_shm_errstr). */
int rl_shm_decide(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms);
const char *rl_shm_errstr(const rl_shm *shm);
/* Raw access to one entry, for data that is not an algorithm's state (the refusal cache of
 * refusal.c keeps its entries here, under keys no rule key can equal, of at most key_max
 * bytes). Only w[0..RL_SHM_RAW_WORDS) of *st move, and only the table's state_words of those
 * are kept (the rest read as 0): open the table with state_words >= RL_SHM_RAW_WORDS to keep
 * them all. get: 1 and *out when key is live at now_ms, 0 when absent or expired, -1 on
 * error. put: stores *st until now_ms + ttl_ms (evicting a key not used recently if needed);
 * 0, or -1 on error. */
#define RL_SHM_RAW_WORDS 3
int rl_shm_get(rl_shm *shm, const char *key, size_t len, int64_t now_ms, rl_state *out);
int rl_shm_put(rl_shm *shm, const char *key, size_t len, const rl_state *st, int64_t now_ms,
               int64_t ttl_ms);
/* Bytes the segment occupies (see shm.c for the formula); 0 when an argument is out of
 * range. */
size_t rl_shm_size(int64_t capacity, size_t key_max, size_t state_words);
/* Fills *out. Takes each stripe's lock in turn: exact per stripe, not one instant. Not for the
 * request path. 0, or -1 with errstr. */
int rl_shm_stats(rl_shm *shm, rl_shm_stat *out);

/* ---- Redis (redis.c) ---- */
typedef struct rl_redis rl_redis;

/* Never connects; the first decide does, and a decide after a failure reconnects (when to
 * try again is failover.c's business). cfg is borrowed. */
rl_redis *rl_redis_new(const rl_redis_config *cfg);
void rl_redis_free(rl_redis *r);
/* Like rl_shm_decide, in one EVALSHA, for every algorithm. now_ms < 0 means "use Redis'
 * TIME". Returns 1 / 0, or -1 when Redis could not decide (connect, timeout, bad reply): the
 * caller falls back. */
int rl_redis_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms);
const char *rl_redis_errstr(const rl_redis *r);
/* PING (connecting first if needed), for health checks. 0, or -1 (errstr set). */
int rl_redis_ping(rl_redis *r);
/* 1 while a connection is up (the last decide succeeded), else 0: for health reports. */
int rl_redis_connected(const rl_redis *r);
/* The time (ms, Redis' clock or the now given) the last successful decide was made at. */
int64_t rl_redis_last_now(const rl_redis *r);
/* Counts r's nodes in the pool's statistics segment (stats_nodes.c): each cluster master, and
 * the master the sentinels name, in a row of its own. st NULL: not counted. Before the first
 * decide; st must outlive r. */
typedef struct rl_stats_seg rl_stats_seg;
void rl_redis_set_stats(rl_redis *r, rl_stats_seg *st);
/* This process' breaker in front of r is open (1) or closed (0) now: recorded in the row of
 * the master the sentinels named (a cluster's masters have breakers of their own; one
 * server has no row). */
void rl_redis_breaker(rl_redis *r, int open);

#endif
