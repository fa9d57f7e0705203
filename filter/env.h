/* env.h -- the RATE_LIMIT_* environment variables over a loaded configuration (env.c) */
#ifndef FILTER_ENV_H
#define FILTER_ENV_H

#include "ratelimit.h"

/* Applies the variables that are set to cfg through rl_config_override. 0, or -1 with
 * err->text naming the variable and quoting its value. */
int env_apply(rl_config *cfg, rl_error *err);

#endif
