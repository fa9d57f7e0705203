/* failover.c -- a circuit breaker: stop asking a failing Redis, probe it now and then
 *
 *   CLOSED --(threshold consecutive failures)--> OPEN --(backoff elapsed)--> HALF_OPEN
 *   HALF_OPEN --(the probe succeeds)--> CLOSED      HALF_OPEN --(it fails)--> OPEN
 *
 * The open period starts at open_ms and doubles after each failed probe, up to open_max_ms;
 * a successful probe resets it.
 *
 * While open no request touches the network: the limiter decides from its fallback at once,
 * so a dead, stalled or hostile Redis costs at most `threshold` timeouts per open_ms per
 * process, instead of one per request -- each at most command_timeout_ms, since redis.c ends
 * a whole decision (reconnect, reloads and retries included) by one deadline and reports a
 * reply that trickles, stalls or is oversized as a failure. The breaker is also the reconnect policy: redis.c never waits
 * on its own, a closed breaker reconnects on the next request, an open one once per open_ms.
 *
 * Invariants: 0 <= failures < threshold while CLOSED; open_until is meaningful only while
 * OPEN. HALF_OPEN lasts one call: the caller that saw rl_breaker_allow return 1 reports its
 * outcome before anyone else asks (one thread per limiter).
 */
#include "fmacros.h"

#include "failover.h"

void rl_breaker_init(rl_breaker *b, int threshold, int64_t open_ms, int64_t open_max_ms)
{
    b->threshold = threshold >= 1 ? threshold : 1;
    b->open_ms = open_ms >= 1 ? open_ms : 1;
    b->open_max_ms = open_max_ms >= b->open_ms ? open_max_ms : b->open_ms;
    b->backoff = b->open_ms;
    b->state = RL_BREAKER_CLOSED;
    b->failures = 0;
    b->open_until = 0;
    b->opened = 0;
}

int rl_breaker_allow(rl_breaker *b, int64_t now)
{
    switch (b->state) {
    case RL_BREAKER_CLOSED: return 1;
    case RL_BREAKER_OPEN:
        if (now < b->open_until)
            return 0;
        b->state = RL_BREAKER_HALF_OPEN;
        return 1;
    case RL_BREAKER_HALF_OPEN:
    default:
        /* A probe that never reported (cannot happen with one thread): let this one probe. */
        return 1;
    }
}

void rl_breaker_success(rl_breaker *b)
{
    b->state = RL_BREAKER_CLOSED;
    b->failures = 0;
    b->backoff = b->open_ms;
}

/* Opens for the current back-off. A failed probe (from HALF_OPEN) doubles it first, up to
 * open_max_ms: a Redis that stays down is asked less and less often, a capped exponential
 * back-off of reconnects; success resets it. */
static void breaker_open(rl_breaker *b, int64_t now)
{
    if (b->state == RL_BREAKER_HALF_OPEN)
        b->backoff = b->backoff > b->open_max_ms / 2 ? b->open_max_ms : b->backoff * 2;
    b->state = RL_BREAKER_OPEN;
    b->open_until = now + b->backoff;
    b->failures = 0;
    b->opened++;
}

void rl_breaker_failure(rl_breaker *b, int64_t now)
{
    if (b->state != RL_BREAKER_CLOSED || ++b->failures >= b->threshold)
        breaker_open(b, now);
}

int64_t rl_breaker_remaining(const rl_breaker *b, int64_t now)
{
    if (b->state != RL_BREAKER_OPEN)
        return 0;
    return b->open_until > now ? b->open_until - now : 1;
}
