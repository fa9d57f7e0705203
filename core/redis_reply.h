/* redis_reply.h -- the check of the decision script's reply (internal; redis.c)
 *
 * Exposed on its own so that a fuzz target (tests/fuzz/fuzz_redis_reply.c) can feed it any
 * reply a hiredis reader makes of arbitrary bytes, through the same code a decision uses.
 */
#ifndef RL_REDIS_REPLY_H
#define RL_REDIS_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "backend.h"

/* Checks reply (borrowed) against the shape the script returns for items[0..n), n >= 1: an
 * array of 4n + 1 integers in [0, 2^53], per rule (allowed 0|1, remaining <= the rule's
 * burst (GCRA) or count, reset, retry-after: 0 when admitted, >= 1 and = reset when refused),
 * then the time decided at. On success fills every items[i].res, sets *now_ms and returns 1
 * when all are admitted, 0 when refused. Anything else: -1, nothing filled, and a one-line
 * reason naming `where` in err (errsize bytes). Never trusts the reply's sizes beyond what
 * hiredis built. */
int rl_redis_take_reply(const redisReply *reply, rl_item *items, size_t n, int64_t *now_ms,
                        const char *where, char *err, size_t errsize);

#endif
