/* failover.h -- the circuit breaker between the limiter and Redis (internal; see failover.c) */
#ifndef RL_FAILOVER_H
#define RL_FAILOVER_H

#include <stdint.h>

typedef enum rl_breaker_state {
    RL_BREAKER_CLOSED = 0, /* Redis is asked */
    RL_BREAKER_OPEN,       /* Redis is skipped until open_until */
    RL_BREAKER_HALF_OPEN,  /* one probe is on its way; its outcome closes or re-opens */
} rl_breaker_state;

/* Per process (the limiter owns one); plain data, no locking: a limiter is used by one
 * thread at a time. Times are CLOCK_MONOTONIC ms, passed in so tests can drive it. */
typedef struct rl_breaker {
    int threshold;       /* consecutive failures that open it, >= 1 */
    int64_t open_ms;     /* how long it stays open the first time, >= 1 ... */
    int64_t open_max_ms; /* ... doubling after each failed probe up to this, >= open_ms */
    int64_t backoff;     /* how long the current (or next) open period lasts */
    rl_breaker_state state;
    int failures;       /* consecutive, while closed */
    int64_t open_until; /* while open: monotonic ms of the next probe */
    int64_t opened;     /* times it opened (first open and every re-open), for tests/metrics */
} rl_breaker;

void rl_breaker_init(rl_breaker *b, int threshold, int64_t open_ms, int64_t open_max_ms);
/* 1 when this request may ask Redis (closed, or the one probe of half-open), else 0. An open
 * breaker whose time is up turns half-open and lets exactly this caller through. */
int rl_breaker_allow(rl_breaker *b, int64_t now);
/* The outcome of a call that rl_breaker_allow let through. */
void rl_breaker_success(rl_breaker *b);
void rl_breaker_failure(rl_breaker *b, int64_t now);
/* Ms until the next probe while open (>= 1), else 0. */
int64_t rl_breaker_remaining(const rl_breaker *b, int64_t now);

#endif
