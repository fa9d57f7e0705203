/* clock.h -- the clocks every layer reads, in integer milliseconds (internal)
 *
 * Monotonic time for deadlines and waits (never jumps, so a deadline computed from it stays
 * a deadline); wall-clock time for what is shared between processes and hosts (a limit's
 * window in shared memory or Redis, a generation's stamp), which must agree across them.
 * Nothing is cached: each call reads the clock.
 */
#ifndef RL_CLOCK_H
#define RL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds: deadlines, timeouts, ages. */
int64_t rl_clock_mono_ms(void);
/* CLOCK_MONOTONIC in microseconds: a decision's latency. */
uint64_t rl_clock_mono_us(void);
/* CLOCK_REALTIME in milliseconds since the epoch: limit windows, shared across processes.
 * Inline: every shared-memory decision reads it under its stripe lock. */
static inline int64_t rl_clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
/* Sleeps about ms milliseconds (ms > 0), for polling loops and pauses with a deadline. */
void rl_clock_nap_ms(int ms);

#endif
