/* redis_cluster_route.c -- deciding a request on Redis Cluster: slot groups, redirects
 *
 * Data: per decision, c->items grouped by the slot of their key into c->groups (in the order
 * slots first appear), each decided on its slot's master by one script, following MOVED (the
 * slot moves in the map at once, so the decision goes on, and the map is refreshed at the next
 * decision), ASK (ASKING and the script on its target for this decision only: the slot is
 * being migrated) and TRYAGAIN (a short pause), at most HOPS_MAX per group.
 *
 * One deadline per decision, command_timeout_ms from its start, bounds all of it: the map
 * refresh, every group, every redirect and the refunds.
 *
 * Several slots. keys.c puts one client's keys under one hash tag, so rules keyed by the same
 * material share a slot and their group is decided atomically by one script, as on one
 * server. Rules keyed by other material may fall in other slots, on other masters. Such a
 * request is decided by reserve-then-confirm: every group's script decides and, when it
 * admits, stores its charge (the reservation); when every group admitted the request is
 * admitted and the reservations simply stay. When any group refused or failed, each group
 * that admitted is refunded in the same decision (redis_cluster_refund.c), which gives back
 * at most what the reservation took. So the worst case is a brief over-refusal (a request
 * decided between a reservation and its refund sees it; a refund that fails or runs out of
 * time is lost), never an over-admission.
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keys.h"
#include "redis_cluster_int.h"
#include "redis_node.h"

#define HOPS_MAX 5 /* redirects and TRYAGAIN waits one group may take */
#define TRYAGAIN_MS 2

/* ---- deciding ---- */

/* Waits ms, or until the deadline if sooner. */
static void cl_pause(int64_t deadline, int64_t ms)
{
    int64_t left = deadline - rl_clock_mono_ms();

    if (left < ms)
        ms = left;
    if (ms > 0)
        rl_clock_nap_ms((int)ms);
}

/* Decides one group on its slot's master, following redirects. 1, 0 or -1 (errstr). */
static int cl_decide_group(rl_cluster *c, cl_group *g, int64_t now_ms, int64_t deadline)
{
    int idx = c->map[g->slot], asking = 0;
    char line[RL_CLUSTER_HOST_MAX + 64];

    for (int hop = 0; hop <= HOPS_MAX; hop++) {
        cl_node *node;
        int64_t t = rl_clock_mono_ms();
        int ret, ask, port;
        unsigned slot;
        char host[RL_CLUSTER_HOST_MAX + 1];

        if (idx == NODE_NONE) {
            c->stale = 1;
            rl_cl_error(c, "redis cluster: slot %u has no master in the slot map", g->slot);
            return -1;
        }
        node = c->nodes[idx];
        if (t >= deadline) {
            rl_cl_error(c, "redis cluster: %s: timed out (after %d redirects)", node->hostport,
                        hop);
            return -1;
        }
        if (!rl_breaker_allow(&node->breaker, t)) {
            rl_cl_error(c, "redis cluster: %s: circuit breaker open after: %s", node->hostport,
                        rl_redis_errstr(node->conn));
            return -1;
        }
        ret = rl_redis_node_decide(node->conn, c->items + g->first, g->n, now_ms, deadline, asking,
                                   line, sizeof line);
        if (ret >= 0) {
            rl_cl_node_answered(c, node);
            rl_stats_node_add(c->stats, rl_cl_node_row(c, node), RL_STAT_NODE_DECISIONS);
            g->node = idx;
            g->asked = asking;
            g->now = rl_redis_last_now(node->conn);
            return ret;
        }
        if (ret != RL_REDIS_REDIRECTED) {
            rl_cl_node_down(c, node, 1);
            c->stale = 1;
            rl_cl_error(c, "%s", rl_redis_errstr(node->conn));
            return -1;
        }
        rl_cl_node_answered(c, node); /* with a redirect */
        if (rl_cluster_parse_redirect(line, &ask, &slot, host, sizeof host, &port) == 0) {
            int to = rl_cl_node_get(c, host, strlen(host), port);
            rl_stats_node_add(c->stats, rl_cl_node_row(c, node), RL_STAT_NODE_REDIRECTS);
            if (to < 0)
                return -1;
            if (!ask) {
                c->map[slot] = (uint16_t)to;
                c->stale = 1;
            }
            idx = to;
            asking = ask;
        } else if (strncmp(line, "TRYAGAIN", 8) == 0) {
            /* The slot is being migrated and its keys are split for now: shortly they are
             * not. */
            cl_pause(deadline, TRYAGAIN_MS);
            idx = c->map[g->slot];
            asking = 0;
        } else {
            c->stale = 1;
            rl_cl_error(c, "redis cluster: %s: %s", node->hostport, line);
            return -1;
        }
    }
    rl_cl_error(c, "redis cluster: slot %u: more than %d redirects", g->slot, HOPS_MAX);
    return -1;
}

/* Groups items[0..n) by the slot of their key into c->items and c->groups (in the order
 * slots first appear). The number of groups, or -1 for a key that cannot be made. */
static int cl_group_items(rl_cluster *c, rl_item *items, size_t n)
{
    const char *prefix = c->prefix;
    size_t plen = c->plen, ng = 0, k = 0;
    unsigned slots[RL_MAX_MATCH];

    for (size_t i = 0; i < n; i++) {
        size_t clen = strnlen(items[i].client, RL_KEY_MAX + 1);
        char *end;

        if (clen > RL_KEY_MAX) {
            rl_cl_error(c, "redis: key for client \"%.64s...\" is too long", items[i].client);
            return -1;
        }
        end = rl_keys_redis(c->keys, prefix, plen, items[i].client, clen, items[i].rule->key_id,
                            items[i].rule->key_id_len);
        slots[i] = rl_cluster_key_slot(c->keys, (size_t)(end - c->keys));
    }
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = 0; j < i && slots[j] != slots[i]; j++)
            ;
        if (j < i)
            continue; /* grouped with the first item of its slot */
        c->groups[ng] = (cl_group){.slot = slots[i], .first = k};
        for (j = i; j < n; j++)
            if (slots[j] == slots[i])
                c->items[k++] = items[j];
        c->groups[ng].n = k - c->groups[ng].first;
        ng++;
    }
    return (int)ng;
}

int rl_cluster_decide(rl_cluster *c, rl_item *items, size_t n, int64_t now_ms)
{
    int64_t deadline = rl_redis_call_deadline(c->cfg);
    int ng, admitted = 1, failed = 0;

    if (n == 0)
        return 1;
    if (n > RL_MAX_MATCH) {
        rl_cl_error(c, "redis: invalid batch (%zu rules)", n);
        return -1;
    }
    ng = cl_group_items(c, items, n);
    if (ng < 0)
        return -1;
    if ((!c->have_map || c->stale) && rl_cl_refresh(c, deadline) < 0 && !c->have_map)
        return -1;
    for (int i = 0; i < ng; i++) {
        cl_group *g = &c->groups[i];
        g->ret = cl_decide_group(c, g, now_ms, deadline);
        if (g->ret < 0) {
            failed = 1;
            break; /* the rest is not asked: nothing of theirs to refund */
        }
        admitted &= g->ret;
        if (g->now > c->last_now)
            c->last_now = g->now;
    }
    if (!failed && admitted) {
        c->errstr[0] = '\0';
        return 1;
    }
    for (int i = 0; i < ng && c->groups[i].ret >= 0; i++)
        if (c->groups[i].ret == 1 && (ng > 1))
            rl_cl_refund(c, &c->groups[i], now_ms, deadline);
    if (failed)
        return -1;
    c->errstr[0] = '\0';
    return 0;
}
