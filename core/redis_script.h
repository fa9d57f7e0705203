/* redis_script.h -- the GCRA script redis.c runs with EVALSHA (internal; see redis_script.c) */
#ifndef RL_REDIS_SCRIPT_H
#define RL_REDIS_SCRIPT_H

/* The Lua source, NUL-terminated. Static storage, never freed. */
extern const char rl_redis_script[];

#endif
