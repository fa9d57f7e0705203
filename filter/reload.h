/* reload.h -- load the configuration again, for SIGHUP (see reload.c) */
#ifndef FILTER_RELOAD_H
#define FILTER_RELOAD_H

#include "ratelimit.h"

/* Loads `path` and opens a limiter on it. On success returns 0 with the new config and
 * limiter in *cfg and *lim (the caller owns them; lim may be NULL: the limiter is then only
 * opened to prove it can be, and closed). On failure logs
 * "reload: WHY: keeping the running configuration" and returns -1. */
int reload_load(const char *path, rl_config **cfg, rl_limiter **lim);

#endif
