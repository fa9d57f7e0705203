/* redis_cluster.h -- the Redis Cluster router (internal; see redis_cluster_int.h for its files) */
#ifndef RL_REDIS_CLUSTER_H
#define RL_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "backend.h"

#define RL_CLUSTER_SLOTS 16384
#define RL_CLUSTER_NODES_MAX 64 /* nodes (masters) a router keeps a connection to */
#define RL_CLUSTER_HOST_MAX 255 /* bytes of a node's host */

typedef struct rl_cluster rl_cluster;

/* Never connects. cfg (borrowed) has cluster seeds. NULL when out of memory or a seed is not
 * "host:port" (the config loader has checked them). */
rl_cluster *rl_cluster_new(const rl_redis_config *cfg);
void rl_cluster_free(rl_cluster *c);
/* rl_redis_decide over the cluster: items grouped by slot, each group decided by its slot's
 * master; several groups are reserved then confirmed or refunded (redis_cluster_route.c). */
int rl_cluster_decide(rl_cluster *c, rl_item *items, size_t n, int64_t now_ms);
/* PING every master of the slot map (learning it first if needed). 0 or -1. */
int rl_cluster_ping(rl_cluster *c);
/* Counts the nodes in st, the pool's statistics (rl_redis_set_stats). */
void rl_cluster_set_stats(rl_cluster *c, rl_stats_seg *st);
const char *rl_cluster_errstr(const rl_cluster *c);
int rl_cluster_connected(const rl_cluster *c);
int64_t rl_cluster_last_now(const rl_cluster *c);

/* ---- exposed for the unit tests ---- */
/* CRC16-CCITT (XModem) as the Redis Cluster spec defines it. */
unsigned rl_cluster_crc16(const char *buf, size_t len);
/* The slot of a key: CRC16 of its hash tag (the bytes between the first '{' and the next '}'
 * when not empty) or of the whole key, mod 16384. */
unsigned rl_cluster_key_slot(const char *key, size_t len);
/* Parses "MOVED SLOT HOST:PORT" or "ASK SLOT HOST:PORT": 0 and *ask, *slot, host, *port; -1
 * for anything else. */
int rl_cluster_parse_redirect(const char *line, int *ask, unsigned *slot, char *host,
                              size_t hostsize, int *port);
/* Takes a CLUSTER SLOTS reply as the slot map (adding its masters as nodes); a master's
 * empty host means `asked`, the host of the node that answered (NULL: refused). 0, or -1 with
 * errstr for a reply of another shape (the map is then unchanged). */
int rl_cluster_take_map(rl_cluster *c, const redisReply *reply, const char *asked);
/* The master of slot in the map: 0 and host ("HOST:PORT"), or -1 when none is known. */
int rl_cluster_slot_node(const rl_cluster *c, unsigned slot, char *hostport, size_t size);

#endif
