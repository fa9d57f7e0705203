/* refusal.c -- the host-wide cache of Redis refusals, kept in the shared-memory table
 *
 * When Redis refuses a request for rule R and client C with retry_after W, nothing can make
 * R admit C's requests of that cost or more before W has passed: a refusal changes no state,
 * and whatever else happens meanwhile (other hosts' admissions) only consumes more. So until
 * then every process of this host can refuse such requests itself, without a round trip:
 * a flood from one client costs Redis one call per retry_after instead of one per request.
 *
 * Entries live in the shm table under the refusal key of keys.c (NAME 0x1e MATERIAL): no
 * cache key can equal a rule key. The entry's rl_state holds
 *   w[0] = refused until (local wall-clock ms), w[1] = remaining at the refusal,
 *   w[2] = the cost that was refused
 * and expires at w[0], so the table reclaims it like any expired state.
 *
 * Clocks: the end is computed on the local clock from the time taken *before* the request
 * was sent, plus W measured by Redis' clock at the moment it decided (later): the cached end
 * is never later than the real one, whatever the offset between the two clocks, so the cache
 * can only send a request to Redis early, never refuse one Redis would admit. The entry is
 * host-wide (one host, one wall clock).
 *
 * A cached refusal reports remaining as it was at the refusal (exact for cost 1: remaining
 * stays 0 until the retry time; for larger costs it may have grown meanwhile).
 */
#include "fmacros.h"

#include <string.h>

#include "keys.h"
#include "refusal.h"

/* The cache key of an item (keys.c: NAME 0x1e MATERIAL), into buf (RL_KEY_MAX+1). */
static int refusal_key(const rl_item *it, char *buf)
{
    return rl_keys_refusal(it->key, it->keylen, it->rule->key_id_len, buf);
}

int rl_refusal_check(rl_shm *shm, rl_item *items, size_t n, int64_t now_ms, size_t *hits)
{
    char key[RL_KEY_MAX + 1];
    int nhits = 0;

    for (size_t i = 0; i < n; i++) {
        rl_state st;
        int r;

        if (items[i].rule->dry_run || refusal_key(&items[i], key) < 0)
            continue;
        r = rl_shm_get(shm, key, items[i].keylen, now_ms, &st);
        if (r < 0)
            return -1;
        if (r == 0 || st.w[0] <= now_ms || items[i].cost < st.w[2])
            continue;
        rl_rule_result *res = items[i].res;
        res->rule = items[i].rule;
        res->allowed = 0;
        res->limit = items[i].rule->count;
        res->window_ms = items[i].rule->period_ms;
        res->remaining = st.w[1];
        res->retry_after_ms = st.w[0] - now_ms;
        res->reset_ms = res->retry_after_ms;
        hits[nhits++] = i;
    }
    return nhits;
}

void rl_refusal_note(rl_shm *shm, const rl_item *items, size_t n, int64_t sent_ms)
{
    char key[RL_KEY_MAX + 1];

    for (size_t i = 0; i < n; i++) {
        const rl_rule_result *res = items[i].res;
        rl_state st;

        if (res->allowed || items[i].rule->dry_run || res->retry_after_ms < 1 ||
            refusal_key(&items[i], key) < 0)
            continue;
        st.w[0] = sent_ms + res->retry_after_ms;
        st.w[1] = res->remaining;
        st.w[2] = items[i].cost;
        /* A failure only costs a later round trip: the cache is an optimisation. */
        (void)rl_shm_put(shm, key, items[i].keylen, &st, sent_ms, res->retry_after_ms);
    }
}
