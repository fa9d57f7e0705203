/* prefork.h -- the standalone daemon: one master, N worker processes on a shared socket */
#ifndef FILTER_PREFORK_H
#define FILTER_PREFORK_H

#include "ratelimit.h"

#define PREFORK_WORKERS_MAX 1024

/* Serves on listen_fd (from listen_open, owned by the caller) with `workers` processes until
 * SIGTERM/SIGINT. Each worker opens its own limiter after fork and runs the FastCGI loop; a
 * worker that dies is logged and restarted, after a delay that grows while workers keep dying
 * young. *cfg is the caller's; a SIGHUP reload replaces it (freeing the old one). Returns 0 after a clean stop, -1 on a runtime failure (logged). */
int prefork_run(rl_config **cfg, int listen_fd, int workers);

#endif
