/* fcgi_loop.h -- serve requests: the FastCGI server loop, or one plain CGI request */
#ifndef FILTER_FCGI_LOOP_H
#define FILTER_FCGI_LOOP_H

#include "ratelimit.h"

/* Serves until SIGTERM/SIGINT (FastCGI on fd 0, as the web server spawned us) or for the one
 * request in the environment (plain CGI, when fd 0 is not a listening socket). *cfg and *lim
 * are the caller's; a SIGHUP reload replaces both (freeing the old ones), so the caller frees
 * whatever they point to on return. Returns 0 on a clean exit, or -1 on a runtime failure
 * (already logged). */
int loop_run(rl_config **cfg, rl_limiter **lim);

#endif
