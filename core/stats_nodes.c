/* stats_nodes.c -- the Redis node rows of the pool's statistics segment
 *
 * Data (stats_nodes.h): rows[0..RL_STATS_NODES) each named by a node address "HOST:PORT",
 * then the "other" row (rows[RL_STATS_NODE_OTHER], never named), and the Sentinel master.
 *
 * Claiming is the rule slots' protocol (stats_claim.c): `state` goes 0 (free) -> 1 (being claimed,
 * by the one process whose CAS won) -> 2 (named, release); the address and kind are written
 * in between and read only after state 2 is seen (acquire). An address's home is
 * hash(address) % RL_STATS_NODES, probed linearly, so two processes claiming one address meet
 * at the same first free row and it never gets two rows; a claimer that died at state 1 is
 * waited for at most NODES_CLAIM_WAIT_MS, then passed over (that row is lost, not corrupt).
 * When every row is named by other addresses, a node counts in the "other" row. Rows are never
 * freed. A process claims a node's row once, when it first meets the node, and keeps its
 * index: the request path does relaxed atomic adds on a known row, never a search.
 *
 * Breaker state is the last change any process made: a process writes the row's state (and
 * the time) only when its own breaker for the node differs from what the row says, so a
 * closed breaker on a closed row costs one relaxed load per decision.
 *
 * Sentinel: `master` is 1 + the row of the master a process of the pool last connected to
 * (0: none yet). A process that connects to another master than `master` says swaps it in
 * with a CAS: only the process whose CAS won counts the change, so a failover that every
 * process of the pool follows counts once.
 */
#include "fmacros.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "stats.h"
#include "stats_claim.h"

#define NODES_CLAIM_WAIT_MS 100

/* The claimer's part of a row: what kind of node it is. */
static void nodes_init(void *row, void *ud)
{
    ((stats_node *)row)->kind = (uint32_t) * (const int *)ud;
}

int rl_stats_node(rl_stats_seg *st, const char *addr, int kind)
{
    rl_claim_table t;
    int i;

    if (st == NULL)
        return -1;
    t = (rl_claim_table){
        .rows = rl_stats_node_table(st)->rows,
        .row_size = sizeof(stats_node),
        .name_off = offsetof(stats_node, addr),
        .name_size = RL_STATS_NODE_ADDR,
        .nrows = RL_STATS_NODES,
        .wait_ms = NODES_CLAIM_WAIT_MS,
    };
    i = rl_stats_claim(&t, addr, nodes_init, &kind);
    return i < 0 ? RL_STATS_NODE_OTHER : i;
}

void rl_stats_node_add(rl_stats_seg *st, int row, rl_stat_node_counter c)
{
    if (st != NULL && row >= 0)
        atomic_fetch_add_explicit(&rl_stats_node_table(st)->rows[row].c[c], 1,
                                  memory_order_relaxed);
}

void rl_stats_node_error(rl_stats_seg *st, int row)
{
    if (st != NULL && row >= 0)
        atomic_store_explicit(&rl_stats_node_table(st)->rows[row].error_ms, rl_clock_real_ms(),
                              memory_order_relaxed);
}

void rl_stats_node_failed(rl_stats_seg *st, int row)
{
    rl_stats_node_add(st, row, RL_STAT_NODE_FAILURES);
    rl_stats_node_error(st, row);
}

void rl_stats_node_breaker(rl_stats_seg *st, int row, int open)
{
    stats_node *r;

    if (st == NULL || row < 0)
        return;
    r = &rl_stats_node_table(st)->rows[row];
    if (atomic_load_explicit(&r->breaker_open, memory_order_relaxed) == (uint32_t)(open != 0))
        return;
    /* Two processes changing it at once: the state and the time are each one of theirs. */
    atomic_store_explicit(&r->breaker_open, (uint32_t)(open != 0), memory_order_relaxed);
    atomic_store_explicit(&r->breaker_ms, rl_clock_real_ms(), memory_order_relaxed);
}

void rl_stats_node_master(rl_stats_seg *st, int row)
{
    stats_node_table *t;
    uint32_t seen, want = (uint32_t)row + 1;

    if (st == NULL || row < 0)
        return;
    t = rl_stats_node_table(st);
    seen = atomic_load_explicit(&t->master, memory_order_acquire);
    if (seen == want || !atomic_compare_exchange_strong_explicit(
                            &t->master, &seen, want, memory_order_acq_rel, memory_order_acquire))
        return; /* already current, or another process just swapped it */
    if (seen != 0) {
        atomic_store_explicit(&t->master_ms, rl_clock_real_ms(), memory_order_relaxed);
        atomic_fetch_add_explicit(&t->master_changes, 1, memory_order_relaxed);
    }
}

static const char *nodes_kind(uint32_t kind)
{
    return kind == RL_STAT_NODE_CLUSTER    ? "cluster"
           : kind == RL_STAT_NODE_SENTINEL ? "sentinel"
                                           : "other";
}

static void nodes_copy(const stats_node_table *t, size_t i, uint32_t master, rl_redis_node_stats *o)
{
    const stats_node *r = &t->rows[i];
    int other = i == RL_STATS_NODE_OTHER;

    snprintf(o->node, sizeof o->node, "%s", other ? "other" : r->addr);
    o->kind = nodes_kind(other ? 0 : r->kind);
    o->role =
        !other && r->kind == RL_STAT_NODE_SENTINEL && master != i + 1 ? "former master" : "master";
    o->breaker_open = (int)atomic_load_explicit(&r->breaker_open, memory_order_relaxed);
    o->breaker_changed_ms = atomic_load_explicit(&r->breaker_ms, memory_order_relaxed);
    o->last_error_ms = atomic_load_explicit(&r->error_ms, memory_order_relaxed);
    o->decisions =
        (int64_t)atomic_load_explicit(&r->c[RL_STAT_NODE_DECISIONS], memory_order_relaxed);
    o->failures = (int64_t)atomic_load_explicit(&r->c[RL_STAT_NODE_FAILURES], memory_order_relaxed);
    o->redirects =
        (int64_t)atomic_load_explicit(&r->c[RL_STAT_NODE_REDIRECTS], memory_order_relaxed);
}

/* Kind, then address: a stable order for the operator (rows are in hash order). */
static int nodes_cmp(const void *a, const void *b)
{
    const rl_redis_node_stats *x = a, *y = b;
    int k = strcmp(x->kind, y->kind);
    return k != 0 ? k : strcmp(x->node, y->node);
}

size_t rl_stats_nodes_read(const rl_stats_seg *st, rl_redis_node_stats *out, size_t cap)
{
    rl_redis_node_stats *all = malloc((RL_STATS_NODES + 1) * sizeof *all); /* ~21 KiB */
    const stats_node_table *t = rl_stats_node_table(st);
    uint32_t master = atomic_load_explicit(&t->master, memory_order_acquire);
    const stats_node *other = &t->rows[RL_STATS_NODE_OTHER];
    size_t n = 0;

    if (all == NULL)
        return 0;
    for (size_t i = 0; i < RL_STATS_NODES; i++)
        if (atomic_load_explicit(&t->rows[i].state, memory_order_acquire) == RL_CLAIM_NAMED)
            nodes_copy(t, i, master, &all[n++]);
    qsort(all, n, sizeof all[0], nodes_cmp);
    for (int c = 0; c < RL_STAT_NODE_COUNTERS; c++) {
        if (atomic_load_explicit(&other->c[c], memory_order_relaxed) != 0) {
            nodes_copy(t, RL_STATS_NODE_OTHER, master, &all[n++]);
            break;
        }
    }
    if (n > 0 && cap > 0)
        memcpy(out, all, (n < cap ? n : cap) * sizeof all[0]);
    free(all);
    return n;
}

int rl_stats_sentinel_read(const rl_stats_seg *st, rl_redis_sentinel_stats *out)
{
    const stats_node_table *t = rl_stats_node_table(st);
    uint32_t master = atomic_load_explicit(&t->master, memory_order_acquire);

    memset(out, 0, sizeof *out);
    if (master == 0 || master > RL_STATS_NODES + 1)
        return 0;
    snprintf(out->master, sizeof out->master, "%s",
             master - 1 == RL_STATS_NODE_OTHER ? "other" : t->rows[master - 1].addr);
    out->changes = (int64_t)atomic_load_explicit(&t->master_changes, memory_order_relaxed);
    out->changed_ms = atomic_load_explicit(&t->master_ms, memory_order_relaxed);
    return 1;
}
