/* redis_cluster.c -- the Redis Cluster router: its nodes, one handle and breaker per master
 *
 * Data (redis_cluster_int.h): nodes[0..nnodes), each "HOST:PORT" with its own rl_redis handle
 * and circuit breaker; the seeds are the first nodes. Nodes are only ever added (at most
 * RL_CLUSTER_NODES_MAX), never removed, so an index stays valid for the router's life.
 *
 * This file makes and frees the router and its nodes, finds each node's row in the pool's
 * statistics (rl_cl_node_row: once per node, at its first count; the request path then only
 * adds to it, stats_nodes.c) and pings every master of the map. The slot map is redis_cluster_map.c, deciding
 * redis_cluster_route.c, refunds redis_cluster_refund.c.
 */
#include "fmacros.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "keys.h"
#include "redis_cluster_int.h"
#include "redis_node.h"

void rl_cl_error(rl_cluster *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rl_errbuf_vset(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
}

/* ---- nodes ---- */

int rl_cl_node_get(rl_cluster *c, const char *host, size_t hostlen, int port)
{
    char name[RL_CLUSTER_HOST_MAX + 8];
    cl_node *node;

    if (hostlen == 0 || hostlen > RL_CLUSTER_HOST_MAX || memchr(host, '\0', hostlen) != NULL) {
        rl_cl_error(c, "redis cluster: invalid node address");
        return -1;
    }
    snprintf(name, sizeof name, "%.*s:%d", (int)hostlen, host, port);
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i]->hostport, name) == 0)
            return (int)i;
    if (c->nnodes == RL_CLUSTER_NODES_MAX) {
        rl_cl_error(c, "redis cluster: more than %d nodes", RL_CLUSTER_NODES_MAX);
        return -1;
    }
    node = calloc(1, sizeof *node);
    if (node == NULL) {
        rl_cl_error(c, "redis cluster: out of memory");
        return -1;
    }
    memcpy(node->host, host, hostlen);
    memcpy(node->hostport, name, sizeof name);
    node->row = NODE_ROW_UNSET;
    node->cfg = *c->cfg;
    node->cfg.host = node->host;
    node->cfg.port = port;
    node->cfg.socket = NULL;
    node->cfg.cluster = NULL;
    node->cfg.ncluster = 0;
    node->conn = rl_redis_new(&node->cfg);
    if (node->conn == NULL) {
        free(node);
        rl_cl_error(c, "redis cluster: out of memory");
        return -1;
    }
    /* rl_breaker_init itself clamps a hand-made config's zeros. */
    rl_breaker_init(&node->breaker, c->cfg->breaker_failures, c->cfg->breaker_open_ms,
                    c->cfg->breaker_open_max_ms);
    c->nodes[c->nnodes] = node;
    return (int)c->nnodes++;
}

rl_cluster *rl_cluster_new(const rl_redis_config *cfg)
{
    rl_cluster *c = calloc(1, sizeof *c);
    const char *prefix = cfg->prefix != NULL ? cfg->prefix : "";

    if (c == NULL)
        return NULL;
    c->cfg = cfg;
    c->prefix = prefix;
    c->plen = strlen(prefix);
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++)
        c->map[s] = NODE_NONE;
    c->keycap = rl_keys_redis_len(c->plen, RL_KEY_MAX, RL_RULE_ID_MAX - 1) + 1;
    c->keys = malloc(RL_MAX_MATCH * c->keycap);
    if (c->keys == NULL)
        goto fail;
    if (rl_cl_refund_init(c) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->ncluster; i++) {
        const char *seed = cfg->cluster[i];
        const char *colon = strrchr(seed, ':');
        if (colon == NULL || rl_cl_node_get(c, seed, (size_t)(colon - seed), atoi(colon + 1)) < 0)
            goto fail;
    }
    return c;
fail:
    rl_cluster_free(c);
    return NULL;
}

void rl_cluster_free(rl_cluster *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nnodes; i++) {
        rl_redis_free(c->nodes[i]->conn);
        free(c->nodes[i]);
    }
    free(c->keys);
    free(c->refund_lib);
    free(c);
}

const char *rl_cluster_errstr(const rl_cluster *c)
{
    return c->errstr;
}

int64_t rl_cluster_last_now(const rl_cluster *c)
{
    return c->last_now;
}

int rl_cluster_connected(const rl_cluster *c)
{
    if (!c->have_map)
        return 0;
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++)
        if (c->map[s] == NODE_NONE || !rl_redis_connected(c->nodes[c->map[s]]->conn))
            return 0;
    return 1;
}

int rl_cl_node_open(const cl_node *node, int64_t t)
{
    return rl_breaker_remaining(&node->breaker, t) > 0;
}

void rl_cluster_set_stats(rl_cluster *c, rl_stats_seg *st)
{
    c->stats = st;
}

int rl_cl_node_row(rl_cluster *c, cl_node *node)
{
    if (node->row == NODE_ROW_UNSET)
        node->row =
            c->stats != NULL ? rl_stats_node(c->stats, node->hostport, RL_STAT_NODE_CLUSTER) : -1;
    return node->row;
}

void rl_cl_node_answered(rl_cluster *c, cl_node *node)
{
    rl_breaker_success(&node->breaker);
    rl_stats_node_breaker(c->stats, rl_cl_node_row(c, node), 0);
}

void rl_cl_node_down(rl_cluster *c, cl_node *node, int decision)
{
    int row = rl_cl_node_row(c, node);
    int64_t t = rl_clock_mono_ms();

    rl_breaker_failure(&node->breaker, t);
    if (decision)
        rl_stats_node_failed(c->stats, row);
    else
        rl_stats_node_error(c->stats, row);
    rl_stats_node_breaker(c->stats, row, rl_cl_node_open(node, t));
}

int rl_cluster_ping(rl_cluster *c)
{
    static const char *const argv[] = {"PING"};
    static const size_t argvlen[] = {4};
    int64_t deadline = rl_redis_call_deadline(c->cfg);
    char seen[RL_CLUSTER_NODES_MAX] = {0};

    if ((!c->have_map || c->stale) && rl_cl_refresh(c, deadline) < 0)
        return -1;
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++) {
        int idx = c->map[s];
        redisReply *reply;
        if (idx == NODE_NONE) {
            c->stale = 1;
            rl_cl_error(c, "redis cluster: slot %zu has no master", s);
            return -1;
        }
        if (seen[idx])
            continue;
        seen[idx] = 1;
        reply = rl_redis_node_command(c->nodes[idx]->conn, deadline, 0, 0, "PING", 1,
                                      (const char **)argv, argvlen);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            c->stale = 1;
            rl_cl_error(c, "redis cluster: %s: %s", c->nodes[idx]->hostport,
                        reply == NULL ? rl_redis_errstr(c->nodes[idx]->conn) : reply->str);
            if (reply != NULL)
                freeReplyObject(reply);
            return -1;
        }
        freeReplyObject(reply);
    }
    c->errstr[0] = '\0';
    return 0;
}
