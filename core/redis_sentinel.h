/* redis_sentinel.h -- the master's address from Redis Sentinel (internal; redis_sentinel.c) */
#ifndef RL_REDIS_SENTINEL_H
#define RL_REDIS_SENTINEL_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

#define RL_SENTINEL_HOST_MAX 255 /* bytes of a master's host */
/* How often a connected process asks the sentinels again (redis.c). */
#define RL_SENTINEL_RECHECK_MS 1000

/* Asks cfg->sentinels in turn, by `deadline` (monotonic ms; each connect also bounded by
 * connect_timeout_ms), for the address of cfg->master_name: the first that answers wins. 0
 * and host (NUL-terminated, hostsize >= RL_SENTINEL_HOST_MAX + 1) and *port; -1 with the
 * reason in err (the last sentinel's). */
int rl_sentinel_master(const rl_redis_config *cfg, int64_t deadline, char *host, size_t hostsize,
                       int *port, char *err, size_t errsize);

#endif
