/* test_clock.h -- a clock of the test's own for a limiter (internal; RL_TESTING builds only)
 *
 * The unit tests decide at times they choose. The setter is compiled only with -DRL_TESTING
 * (the test library, build/testing/): a release library neither has nor exports it, and its
 * limiters always read CLOCK_REALTIME (lim->clock stays NULL).
 */
#ifndef RL_TEST_CLOCK_H
#define RL_TEST_CLOCK_H

#include <stdint.h>

#include "ratelimit.h"

/* Returns the milliseconds of some clock; ud is the pointer given to rl_limiter_set_clock. */
typedef int64_t (*rl_clock_fn)(void *ud);

#ifdef RL_TESTING
/* Replaces the wall clock (CLOCK_REALTIME, ms). With a clock set, the Redis backend also
 * decides at that time instead of reading Redis' TIME. */
void rl_limiter_set_clock(rl_limiter *lim, rl_clock_fn fn, void *ud);
#endif

#endif
