/* stats.h -- the pool-wide counters segment (internal; see stats.c and ratelimit.h) */
#ifndef RL_STATS_H
#define RL_STATS_H

#include <stdint.h>

#include "ratelimit.h"

typedef struct rl_stats_seg rl_stats_seg;

/* Creates or attaches to the segment of the table named shm_name (its name + "-stats"); one
 * it creates is owned as own says (NULL: the process's user and group, mode 0600; see
 * shm_owner.h). NULL with err on failure. */
rl_stats_seg *rl_stats_open(const char *shm_name, const rl_shm_config *own, rl_error *err);
void rl_stats_close(rl_stats_seg *st);
/* What rl_stats_open(shm_name, own) by this process would say about the segment in place,
 * changing nothing (for -t): 0 when it fits, or is absent and this process may create it owned
 * as own says; -1 with err when an open would refuse it (another version, a segment this user
 * may not open, an owner it may not give a new one to). */
int rl_stats_probe(const char *shm_name, const rl_shm_config *own, rl_error *err);
/* The slot of a rule name, claimed when new: 0..RL_STATS_SLOTS-1, or -1 when every slot is
 * taken by other names. Lock-free; for open time, not the request path. */
int rl_stats_slot(rl_stats_seg *st, const char *name);
/* Relaxed atomic adds; st may be NULL (no statistics: a sandbox limiter). */
void rl_stats_add(rl_stats_seg *st, rl_stat_counter c, uint64_t n);
void rl_stats_rule_add(rl_stats_seg *st, int slot, rl_stat_rule_counter c);
void rl_stats_latency(rl_stats_seg *st, uint64_t us);
/* Reads the global counters and histogram into out (the rules part is left alone). */
void rl_stats_read(const rl_stats_seg *st, rl_stats *out);
/* Reads one slot's counters into c[RL_STAT_RULE_COUNTERS]. */
void rl_stats_read_slot(const rl_stats_seg *st, int slot, int64_t *c);

#endif
