/* redis_cluster_int.h -- the Redis Cluster router's state, shared by its four files (internal)
 *
 * redis_cluster.c keeps the nodes (one rl_redis handle and breaker per master) and pings them;
 * redis_cluster_map.c computes key slots, parses redirects and learns the slot map;
 * redis_cluster_route.c decides a request's slot groups on their masters, following redirects;
 * redis_cluster_refund.c gives back what a group reserved when another group refused.
 *
 * Data: nodes[0..nnodes), each a node known by "HOST:PORT" with its own rl_redis handle (its
 * connection, AUTH, FUNCTION LOAD or SCRIPT LOAD: redis.c through redis_node.h) and its own
 * circuit breaker (and nofunc: the node refused the refund as a function);
 * map[slot], the index in nodes of the slot's master, or NODE_NONE. The seeds are the first
 * nodes. Nodes are only ever added (at most RL_CLUSTER_NODES_MAX), never removed, so an index
 * stays valid for the router's life; a node that left the cluster just stops being in the map.
 */
#ifndef RL_REDIS_CLUSTER_INT_H
#define RL_REDIS_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "failover.h"
#include "redis_cluster.h"
#include "stats.h"

#define NODE_NONE 0xffff
#define NODE_ROW_UNSET (-2)

_Static_assert(RL_CLUSTER_NODES_MAX < NODE_NONE, "node indexes fit the map");

/* The refund function's name: "rl_refund_" and 16 hex digits (redis_cluster_refund.c). */
#define REFUND_NAME_LEN (10 + 16)

typedef struct cl_node {
    char hostport[RL_CLUSTER_HOST_MAX + 8]; /* "HOST:PORT", its name in the map */
    char host[RL_CLUSTER_HOST_MAX + 1];
    rl_redis_config cfg; /* the router's, naming this node, without cluster seeds */
    rl_redis *conn;
    rl_breaker breaker;
    int nofunc; /* the node refused the refund as a function: EVAL it */
    /* Its row in the pool's statistics (stats_nodes.c), claimed at its first count
     * (rl_cl_node_row); NODE_ROW_UNSET before. */
    int row;
} cl_node;

/* The items of one slot: c->items[first .. first + n). */
typedef struct cl_group {
    unsigned slot;
    size_t first, n;
    int node;    /* the node that decided it */
    int asked;   /* ... after an ASK: a refund needs ASKING too */
    int ret;     /* 1, 0, -1 */
    int64_t now; /* the time it was decided at */
} cl_group;

struct rl_cluster {
    const rl_redis_config *cfg; /* borrowed */
    rl_stats_seg *stats;        /* borrowed: the pool's, where nodes are counted; NULL: not */
    cl_node *nodes[RL_CLUSTER_NODES_MAX];
    size_t nnodes;
    uint16_t map[RL_CLUSTER_SLOTS];
    uint16_t next[RL_CLUSTER_SLOTS]; /* scratch: the map being taken */
    int have_map;
    int stale; /* refresh the map at the next decision */
    int64_t last_now;
    char errstr[RL_ERRSTR_MAX];
    char refund_name[REFUND_NAME_LEN + 1];
    char *refund_lib; /* owned: the refund's function library, refund_len bytes */
    size_t refund_len;

    /* Per-decision scratch: the items grouped by slot, and keys (keycap bytes each). */
    rl_item items[RL_MAX_MATCH];
    cl_group groups[RL_MAX_MATCH];
    char *keys;
    size_t keycap;
    const char
        *prefix; /* cfg->prefix, "" for none, and its length: found once, at rl_cluster_new */
    size_t plen;
};

/* Sets c->errstr (redis_cluster.c). */
RL_PRINTF(2, 3) void rl_cl_error(rl_cluster *c, const char *fmt, ...);
/* The index of node HOST:PORT, added when new. -1 when the table is full or out of memory
 * (errstr set) (redis_cluster.c). */
int rl_cl_node_get(rl_cluster *c, const char *host, size_t hostlen, int port);
/* Whether a node's breaker is open now (without taking its half-open probe) (redis_cluster.c). */
int rl_cl_node_open(const cl_node *node, int64_t t);
/* The node's row in the pool's statistics, claimed at the first call (c->stats NULL: -1,
 * nothing counted) (redis_cluster.c). */
int rl_cl_node_row(rl_cluster *c, cl_node *node);
/* A node answered: its breaker closes (and its row says so). It failed: its breaker counts
 * the failure (and its row: a failed decision when decision, else an error's time only)
 * (redis_cluster.c). */
void rl_cl_node_answered(rl_cluster *c, cl_node *node);
void rl_cl_node_down(rl_cluster *c, cl_node *node, int decision);
/* Learns the map from the first node that answers CLUSTER SLOTS by the deadline. 0, or -1
 * with errstr (redis_cluster_map.c). */
int rl_cl_refresh(rl_cluster *c, int64_t deadline);
/* Names the refund function and builds its library into c (redis_cluster_refund.c). 0, or -1
 * when out of memory. */
int rl_cl_refund_init(rl_cluster *c);
/* Gives back what group g reserved on the node that decided it (redis_cluster_refund.c). */
void rl_cl_refund(rl_cluster *c, const cl_group *g, int64_t now_ms, int64_t deadline);

#endif
