/* stats.h -- the pool-wide counters segment (internal; see stats.c and ratelimit.h) */
#ifndef RL_STATS_H
#define RL_STATS_H

#include <stdint.h>

#include "config_types.h"
#include "stats_nodes.h"

typedef struct rl_stats_seg rl_stats_seg;

/* Creates or attaches to the segment of the table named shm_name (its name + "-stats"); one
 * it creates is owned as own says (NULL: the process's user and group, mode 0600; see
 * shm_owner.h). A segment of another version or size (another build's) is replaced by a new
 * one, its counts lost (rl_stats_note says so). NULL with err on failure. */
rl_stats_seg *rl_stats_open(const char *shm_name, const rl_shm_config *own, rl_error *err);
void rl_stats_close(rl_stats_seg *st);
/* What rl_stats_open did to a segment of another version (one sentence, for the log: the
 * counters restart), or "". */
const char *rl_stats_note(const rl_stats_seg *st);
/* What rl_stats_open(shm_name, own) by this process would do with the segment in place,
 * changing nothing (for -t): 0 when it fits, or is absent and this process may create it owned
 * as own says; 1 with err's text saying so when it is another build's and would be replaced
 * (counters restart); -1 with err when an open would refuse it (a segment this user may not
 * open, or not remove when it is another build's; one never initialised; an owner it may not
 * give a new one to). */
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

/* ---- Redis node rows (stats_nodes.c) ---- */

/* The row of node addr ("HOST:PORT"), claimed when new with kind (RL_STAT_NODE_*):
 * 0..RL_STATS_NODES-1, RL_STATS_NODE_OTHER when every row is taken by other addresses, or -1
 * when st is NULL. Lock-free; once per node and process (keep the row), not per decision. */
int rl_stats_node(rl_stats_seg *st, const char *addr, int kind);
/* Relaxed atomic adds to a row; st NULL or row < 0: nothing. */
void rl_stats_node_add(rl_stats_seg *st, int row, rl_stat_node_counter c);
/* A failed decision: failures + 1 and the error's time. rl_stats_node_error: the time only. */
void rl_stats_node_failed(rl_stats_seg *st, int row);
void rl_stats_node_error(rl_stats_seg *st, int row);
/* This process' breaker for the row's node is open (1) or closed (0) now: written, with the
 * time, only when the row says otherwise (one relaxed load when it does not). */
void rl_stats_node_breaker(rl_stats_seg *st, int row, int open);
/* A process connected to the master of row that the sentinels named: it becomes the pool's
 * current master, a change counted (with its time) when another was current. */
void rl_stats_node_master(rl_stats_seg *st, int row);
/* The rows for rl_limiter_redis_nodes and rl_limiter_redis_sentinel. */
size_t rl_stats_nodes_read(const rl_stats_seg *st, rl_redis_node_stats *out, size_t cap);
int rl_stats_sentinel_read(const rl_stats_seg *st, rl_redis_sentinel_stats *out);
/* The node table inside the segment (stats.c, for stats_nodes.c). */
stats_node_table *rl_stats_node_table(const rl_stats_seg *st);

#endif
