/* limiter_int.h -- the limiter handle, shared by limiter.c (deciding) and limiter_open.c
 * (opening, closing, what the handle says) (internal)
 *
 * Everything a decision needs lives here, in fixed per-handle buffers: no allocation on the
 * request path. One handle per thread.
 */
#ifndef RL_LIMITER_INT_H
#define RL_LIMITER_INT_H

#include "backend.h"
#include "config_types.h"
#include "failover.h"
#include "rule.h"
#include "stats.h"
#include "test_clock.h"

struct rl_limiter {
    const rl_config *cfg;
    rl_shm *shm;
    rl_redis *redis;     /* NULL when Redis is not enabled */
    rl_breaker breaker;  /* per process: when to skip Redis */
    rl_rule *shares;     /* owned: each rule with count and burst / redis.hosts, for the
                                shm fallback; NULL when hosts <= 1 (the rules themselves) */
    int redis_failing;   /* the last request Redis did not decide (failed or skipped) */
    int shm_failed;      /* the last shm decision failed */
    int unenforced;      /* some rule's on_redis_down is not "shm" */
    rl_stats_seg *stats; /* the pool's counters; NULL for a sandbox */
    int *slots;          /* owned: each rule's stats slot (-1: none) */
    char note[1200];     /* the table's note and the statistics' (rl_limiter_shm_note) */
    rl_clock_fn clock;   /* NULL: CLOCK_REALTIME (always, but in RL_TESTING builds) */
    void *clock_ud;
    char errstr[256];
    char keys[RL_MAX_MATCH][RL_KEY_MAX + 1];
    rl_item items[RL_MAX_MATCH];
    char material[RL_MAX_MATCH][RL_CLIENT_MAX + 1]; /* each item's client (key material) */
    char scratch[RL_KEY_SCRATCH];                   /* rl_rule_key's work space */
    char path[RL_PATH_MAX]; /* the request's canonical path, when the caller gave it raw */
};

#endif
