/* refusal.h -- the host-wide cache of Redis refusals (internal; see refusal.c) */
#ifndef RL_REFUSAL_H
#define RL_REFUSAL_H

#include "backend.h"

/* Looks up every item's rule and client. Each one cached as refused for a cost <= the item's
 * cost until after now_ms gets its result filled (allowed 0, remaining, retry_after and reset =
 * the time left) and its index stored in hits[]. Returns the number of hits (0: ask Redis),
 * or -1 when shared memory failed (errstr in rl_shm_errstr; treat as 0). */
int rl_refusal_check(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms, size_t *hits);

/* Remembers the refusing items of a request Redis refused (dry-run items are never cached:
 * they must not refuse). sent_ms is the local time taken
 * before the request was sent: the refusal ends retry_after_ms after a moment no earlier than
 * that, so the cached end is never later than the real one. */
void rl_refusal_note(rl_shm *shm, const rl_item *items, size_t n, int64_t sent_ms);

#endif
