/* num.h -- integers written as decimal text without printf (internal; the request path
 * formats several per request: Redis arguments, RateLimit fields, answers)
 */
#ifndef RL_NUM_H
#define RL_NUM_H

#include <stdint.h>

/* The most bytes rl_put_int writes: "-9223372036854775808". */
#define RL_INT_TEXT_MAX 20

/* Writes v in decimal at p (no NUL; at most RL_INT_TEXT_MAX bytes). Returns the end. */
char *rl_put_int(char *p, int64_t v);

#endif
