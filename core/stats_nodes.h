/* stats_nodes.h -- the Redis node rows of the statistics segment (internal; stats_nodes.c)
 *
 * The layout is part of the segment's (stats.c, STATS_VERSION): change one, bump the other.
 */
#ifndef RL_STATS_NODES_H
#define RL_STATS_NODES_H

#include <stdatomic.h>
#include <stdint.h>

#include "ratelimit.h"

#define RL_STATS_NODE_ADDR 264             /* "HOST:PORT" and its NUL, as rl_redis_node_stats */
#define RL_STATS_NODE_OTHER RL_STATS_NODES /* the row of the nodes that found no row of their own */

typedef enum rl_stat_node_counter {
    RL_STAT_NODE_DECISIONS = 0,
    RL_STAT_NODE_FAILURES,
    RL_STAT_NODE_REDIRECTS,
    RL_STAT_NODE_COUNTERS
} rl_stat_node_counter;

/* What a row's node is; written by its claimer before the row is named. */
enum { RL_STAT_NODE_CLUSTER = 1, RL_STAT_NODE_SENTINEL = 2 };

typedef struct stats_node {
    _Atomic uint32_t state; /* free, being claimed, named (as a rule's slot in stats.c) */
    uint32_t kind;          /* RL_STAT_NODE_CLUSTER or RL_STAT_NODE_SENTINEL */
    char addr[RL_STATS_NODE_ADDR];
    _Atomic uint64_t c[RL_STAT_NODE_COUNTERS];
    _Atomic uint32_t breaker_open; /* as the last process that changed it left it */
    uint32_t pad;
    _Atomic int64_t breaker_ms; /* epoch ms of that change, 0: never */
    _Atomic int64_t error_ms;   /* epoch ms of the last failure, 0: none */
} stats_node;

typedef struct stats_node_table {
    _Atomic uint32_t master; /* Sentinel: 1 + the row of the current master; 0: none yet */
    uint32_t pad;
    _Atomic uint64_t master_changes;
    _Atomic int64_t master_ms;
    stats_node rows[RL_STATS_NODES + 1]; /* the last one is RL_STATS_NODE_OTHER */
} stats_node_table;

#endif
