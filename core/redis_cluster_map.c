/* redis_cluster_map.c -- the Redis Cluster slot map: key slots, redirects, CLUSTER SLOTS
 *
 * Data: c->map[slot] (redis_cluster_int.h), the index of the slot's master in c->nodes, or
 * NODE_NONE; c->next is the scratch a new map is built in, so a reply of the wrong shape
 * leaves the map as it was. A key's slot is CRC16 (XModem) of its hash tag or of the key.
 *
 * The map is learnt with CLUSTER SLOTS from any node that answers (known nodes first, in
 * order, so the seeds are tried when nothing else is known), at the first decision and
 * again at the start of a decision after anything said it is stale: a MOVED, a node that
 * failed, a slot without a master, a CLUSTERDOWN (redis_cluster_route.c sets c->stale).
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "redis_cluster_int.h"
#include "redis_node.h"

/* ---- slots ---- */

unsigned rl_cluster_crc16(const char *buf, size_t len)
{
    unsigned crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

unsigned rl_cluster_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close != NULL && close > key + from)
            return rl_cluster_crc16(key + from, (size_t)(close - key - from)) % RL_CLUSTER_SLOTS;
    }
    return rl_cluster_crc16(key, len) % RL_CLUSTER_SLOTS;
}

int rl_cluster_parse_redirect(const char *line, int *ask, unsigned *slot, char *host,
                              size_t hostsize, int *port)
{
    const char *p, *colon;
    char *end;
    unsigned long s;
    long pt;

    if (strncmp(line, "MOVED ", 6) == 0) {
        *ask = 0;
        p = line + 6;
    } else if (strncmp(line, "ASK ", 4) == 0) {
        *ask = 1;
        p = line + 4;
    } else {
        return -1;
    }
    if (*p < '0' || *p > '9')
        return -1;
    s = strtoul(p, &end, 10);
    if (s >= RL_CLUSTER_SLOTS || *end != ' ')
        return -1;
    p = end + 1;
    colon = strrchr(p, ':');
    if (colon == NULL || colon == p || (size_t)(colon - p) >= hostsize || colon[1] < '0' ||
        colon[1] > '9')
        return -1;
    pt = strtol(colon + 1, &end, 10);
    if (*end != '\0' || pt < 1 || pt > 65535)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *slot = (unsigned)s;
    *port = (int)pt;
    return 0;
}

/* ---- the slot map ---- */

int rl_cluster_take_map(rl_cluster *c, const redisReply *reply, const char *asked)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        rl_cl_error(c, "redis cluster: CLUSTER SLOTS: %s",
                    reply->type == REDIS_REPLY_ARRAY ? "no slot is served" : "not an array");
        return -1;
    }
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++)
        c->next[s] = NODE_NONE;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        const redisReply *m;
        int idx;

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            r->element[2]->type != REDIS_REPLY_ARRAY || r->element[0]->integer < 0 ||
            r->element[1]->integer >= RL_CLUSTER_SLOTS ||
            r->element[0]->integer > r->element[1]->integer) {
            rl_cl_error(c, "redis cluster: CLUSTER SLOTS: range %zu is not [start, end, master]",
                        i);
            return -1;
        }
        m = r->element[2];
        if (m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING ||
            m->element[1]->type != REDIS_REPLY_INTEGER || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535) {
            rl_cl_error(c, "redis cluster: CLUSTER SLOTS: range %zu: master is not [host, port]",
                        i);
            return -1;
        }
        /* An empty host is "the node you asked" (a node alone has not learnt its address). */
        if (m->element[0]->len == 0 && asked != NULL)
            idx = rl_cl_node_get(c, asked, strlen(asked), (int)m->element[1]->integer);
        else
            idx = rl_cl_node_get(c, m->element[0]->str, m->element[0]->len,
                                 (int)m->element[1]->integer);
        if (idx < 0)
            return -1;
        for (long long s = r->element[0]->integer; s <= r->element[1]->integer; s++)
            c->next[s] = (uint16_t)idx;
    }
    memcpy(c->map, c->next, sizeof c->map);
    c->have_map = 1;
    c->stale = 0;
    return 0;
}

int rl_cluster_slot_node(const rl_cluster *c, unsigned slot, char *hostport, size_t size)
{
    if (slot >= RL_CLUSTER_SLOTS || c->map[slot] == NODE_NONE)
        return -1;
    snprintf(hostport, size, "%s", c->nodes[c->map[slot]]->hostport);
    return 0;
}

int rl_cl_refresh(rl_cluster *c, int64_t deadline)
{
    static const char *const argv[] = {"CLUSTER", "SLOTS"};
    static const size_t argvlen[] = {7, 5};
    int tried = 0;

    for (size_t i = 0; i < c->nnodes && rl_clock_mono_ms() < deadline; i++) {
        cl_node *node = c->nodes[i];
        redisReply *reply;

        if (rl_cl_node_open(node, rl_clock_mono_ms()))
            continue;
        tried++;
        reply = rl_redis_node_command(node->conn, deadline, 1, 0, "CLUSTER SLOTS", 2,
                                      (const char **)argv, argvlen);
        if (reply == NULL) {
            rl_cl_node_down(c, node, 0);
            rl_cl_error(c, "redis cluster: slot map: %s", rl_redis_errstr(node->conn));
            continue;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            rl_cl_error(c, "redis cluster: slot map: %s: %.200s", node->hostport, reply->str);
        } else if (rl_cluster_take_map(c, reply, node->host) == 0) {
            freeReplyObject(reply);
            return 0;
        }
        freeReplyObject(reply);
    }
    if (tried == 0)
        rl_cl_error(c, "redis cluster: slot map: no node to ask (every breaker open)");
    return -1;
}
