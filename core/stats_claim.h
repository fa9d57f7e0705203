/* stats_claim.h -- claiming a named row of a table in the statistics segment (internal)
 *
 * Used for the rules' slots (stats.c) and the Redis nodes' rows (stats_nodes.c): every process
 * of a pool finds the same row for the same name, and the first one to meet a name claims a
 * free row for it.
 */
#ifndef RL_STATS_CLAIM_H
#define RL_STATS_CLAIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A row's state, its first member (_Atomic uint32_t). */
enum { RL_CLAIM_FREE = 0, RL_CLAIM_CLAIMING = 1, RL_CLAIM_NAMED = 2 };

typedef struct rl_claim_table {
    void *rows; /* nrows rows of row_size bytes, each starting with its state */
    size_t row_size;
    size_t name_off; /* where a row's name is (name_size bytes, NUL-terminated) */
    size_t name_size;
    uint32_t nrows;
    int64_t wait_ms; /* how long a row being claimed is waited for before it is passed over */
} rl_claim_table;

/* The index of the row named name, claimed for it when none is: probing starts at the name's
 * hash. A claimer writes the name, then calls init(row, ud) (may be NULL) for the row's other
 * fields, before the row is published as named. -1 when every row is taken by another name. */
int rl_stats_claim(const rl_claim_table *t, const char *name, void (*init)(void *row, void *ud),
                   void *ud);

#endif
