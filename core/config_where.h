/* config_where.h -- where a configuration says Redis is (internal: the filter's admin status
 * and metrics report it; not part of the library's API)
 *
 * A view, not a copy: every string is borrowed from the rl_config and lives as long as it.
 */
#ifndef RL_CONFIG_WHERE_H
#define RL_CONFIG_WHERE_H

#include "ratelimit.h"

/* Redis as configured: enabled, and where (a cluster's seeds, else the sentinels and the
 * master's name, else socket, else host and port) and which db. */
typedef struct rl_redis_where {
    int enabled;
    const char *socket; /* NULL: TCP to host:port */
    const char *host;
    int port;
    int db;
    const char *const *cluster;   /* Redis Cluster seed nodes "HOST:PORT"; host/port unused ... */
    size_t ncluster;              /* ... when this is not 0 */
    const char *const *sentinels; /* Redis Sentinel addresses "HOST:PORT" ... */
    size_t nsentinels;            /* ... (not 0: host/port unused, the master is asked ... */
    const char *master_name;      /* ... of them by this name); NULL without sentinels */
} rl_redis_where;

void rl_config_redis_where(const rl_config *cfg, rl_redis_where *out);

#endif
