/* redis_node.h -- one node's handle as the cluster router uses it (internal; redis.c for
 * redis_cluster.c)
 *
 * A cluster node is an ordinary rl_redis handle (its own connection, AUTH, SCRIPT LOAD)
 * whose config names that node. The router drives it with these calls instead of
 * rl_redis_decide: they take the deadline of the whole decision (which spans several nodes
 * and redirects) rather than starting one of their own, and they hand back the cluster's
 * redirect and state errors (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) instead of treating them as a
 * failure: such an error reply leaves the connection up.
 */
#ifndef RL_REDIS_NODE_H
#define RL_REDIS_NODE_H

#include <hiredis/hiredis.h>

#include "backend.h"

/* rl_redis_node_decide's answer when the node sent a cluster error reply (in `redirect`). */
#define RL_REDIS_REDIRECTED (-2)

/* The monotonic ms by which a call (a decision, a PING) that starts now must end:
 * command_timeout_ms from now, or never for 0 (only a hand-made config says 0). */
int64_t rl_redis_call_deadline(const rl_redis_config *cfg);

/* Decides items[0..n) on this node by `deadline` (monotonic ms), as rl_redis_decide: 1, 0,
 * -1 (errstr set, connection dropped), or RL_REDIS_REDIRECTED with the error line (NUL-
 * terminated, cut to size) in redirect. asking: send ASKING first (an ASK redirect's retry). */
int rl_redis_node_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms, int64_t deadline,
                         int asking, char *redirect, size_t size);

/* Runs one command by `deadline` (connecting first if needed), the reply read within the
 * slot map's bounds when map (rl_rio_exchange_map), else a decision's. The reply (the caller
 * frees it; it may be an error reply), or NULL with errstr set. asking: ASKING first. */
redisReply *rl_redis_node_command(rl_redis *r, int64_t deadline, int map, int asking,
                                  const char *what, int argc, const char **argv,
                                  const size_t *argvlen);

#endif
