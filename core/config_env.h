/* config_env.h -- environment overrides of a loaded config (internal; see config_env.c) */
#ifndef RL_CONFIG_ENV_H
#define RL_CONFIG_ENV_H

#include "ratelimit.h"

/* Applies the RATE_LIMIT_* variables to cfg (which owns its strings: replaced ones are
 * freed). 0, or -1 with err->text naming the variable and quoting its value. */
int rl_config_env(rl_config *cfg, rl_error *err);

/* "shm", "open" or "closed" into *out; 0, or -1 for anything else. */
int rl_parse_redis_down(const char *text, rl_redis_down *out);

#endif
