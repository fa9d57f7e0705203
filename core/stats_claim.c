/* stats_claim.c -- claiming a named row of a table in the statistics segment
 *
 * Open addressing from the name's FNV-1a hash (names come from the operator's config or from
 * Redis, never from clients). A row goes FREE -> CLAIMING (the one process whose compare-and-
 * swap wins) -> NAMED (release, after its name and fields are written), and never back while
 * the segment lives. A reader that meets a row being claimed waits up to wait_ms for it to be
 * named, then passes it over: a claimer that died there loses the row, it never corrupts it.
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "stats_claim.h"

static uint32_t claim_hash(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* Waits for a row being claimed to be named: 1 when it was, 0 when its claimer is gone. */
static int claim_wait_named(_Atomic uint32_t *state, int64_t wait_ms)
{
    const int64_t deadline = rl_clock_mono_ms() + wait_ms;

    while (atomic_load_explicit(state, memory_order_acquire) != RL_CLAIM_NAMED) {
        if (rl_clock_mono_ms() > deadline)
            return 0;
        rl_clock_nap_ms(1);
    }
    return 1;
}

int rl_stats_claim(const rl_claim_table *t, const char *name, void (*init)(void *row, void *ud),
                   void *ud)
{
    uint32_t home = claim_hash(name) % t->nrows;

    for (uint32_t k = 0; k < t->nrows; k++) {
        uint32_t i = (home + k) % t->nrows;
        char *row = (char *)t->rows + (size_t)i * t->row_size;
        _Atomic uint32_t *state = (_Atomic uint32_t *)(void *)row;
        char *rname = row + t->name_off;
        uint32_t st = atomic_load_explicit(state, memory_order_acquire);

        if (st == RL_CLAIM_FREE) {
            uint32_t expected = RL_CLAIM_FREE;
            if (atomic_compare_exchange_strong_explicit(state, &expected, RL_CLAIM_CLAIMING,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                snprintf(rname, t->name_size, "%s", name);
                if (init != NULL)
                    init(row, ud);
                atomic_store_explicit(state, RL_CLAIM_NAMED, memory_order_release);
                return (int)i;
            }
            st = expected;
        }
        if (st == RL_CLAIM_CLAIMING && !claim_wait_named(state, t->wait_ms))
            continue;
        if (strncmp(rname, name, t->name_size) == 0)
            return (int)i;
    }
    return -1;
}
