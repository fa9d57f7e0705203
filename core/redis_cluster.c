/* redis_cluster.c -- the Redis Cluster router: slot map, one handle per master, redirects
 *
 * Data: nodes[0..nnodes), each a node known by "HOST:PORT" with its own rl_redis handle (its
 * connection, AUTH, FUNCTION LOAD or SCRIPT LOAD: redis.c through redis_node.h) and its own
 * circuit breaker (and nofunc: the node refused the refund as a function);
 * map[slot], the index in nodes of the slot's master, or NODE_NONE. The seeds are the first
 * nodes. Nodes are only ever added (at most RL_CLUSTER_NODES_MAX), never removed, so an index
 * stays valid for the router's life; a node that left the cluster just stops being in the map.
 *
 * The map is learnt with CLUSTER SLOTS from any node that answers (known nodes first, in
 * order, so the seeds are tried when nothing else is known), at the first decision and
 * again at the start of a decision after anything said it is stale: a MOVED, a node that
 * failed, a slot without a master, a CLUSTERDOWN. A MOVED also moves its one slot at once,
 * so the decision goes on; an ASK sends ASKING and the script to its target for this decision
 * only (the slot is being migrated: the map is right again once it is done).
 *
 * One deadline per decision, command_timeout_ms from its start, bounds all of it: the map
 * refresh, every group, every redirect (at most HOPS_MAX per group) and the refunds.
 *
 * Several slots. The items of one request are grouped by the slot of their key; keys.c puts
 * one client's keys under one hash tag, so rules keyed by the same material share a slot and
 * their group is decided atomically by one script, as on one server. Rules keyed by other
 * material may fall in other slots, on other masters. Such a request is decided by
 * reserve-then-confirm: every group's script decides and, when it admits, stores its charge
 * (the reservation); when every group admitted the request is admitted and the reservations
 * simply stay. When any group refused or failed, each group that admitted is refunded in the
 * same decision by REFUND_LUA below, which gives back at most what the reservation took --
 * never more than a state without it would hold, even after other requests charged the same
 * keys meanwhile. So the worst case is a brief over-refusal (a request decided between a
 * reservation and its refund sees it; a refund that fails or runs out of time is lost),
 * never an over-admission.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "failover.h"
#include "keys.h"
#include "siphash.h"
#include "redis_cluster.h"
#include "redis_io.h"
#include "redis_node.h"

#define NODE_NONE 0xffff
#define HOPS_MAX 5 /* redirects and TRYAGAIN waits one group may take */
#define TRYAGAIN_MS 2

_Static_assert(RL_CLUSTER_NODES_MAX < NODE_NONE, "node indexes fit the map");

/* Gives back what one decision's admitted items charged (KEYS: their keys; ARGV[1]: the
 * decision's now; ARGV[2]: the refund's now, or -1 for Redis' TIME; then per key algorithm,
 * count, period_ms, burst, cost). Windows and the log: the decision's own units in the
 * decision's own window, exactly (counts commute). GCRA: the charge less the time elapsed
 * since it was made -- a later request may have found the state idle and started from its
 * own now, so giving back the whole charge could hand out capacity that was never ours.
 * Nothing is written when nothing is to be given back; the expiry is kept. Returns the keys
 * refunded. */
static const char REFUND_LUA[] =
    "local floor = math.floor\n"
    "local dnow, now = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "if now < 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = t[1] * 1000 + floor(t[2] / 1000)\n"
    "end\n"
    "local done = 0\n"
    "for i = 1, #KEYS do\n"
    "  local a = 5 * i - 2\n"
    "  local algo, count, period = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + "
    "2])\n"
    "  local cost = tonumber(ARGV[a + 4])\n"
    "  local s, v = redis.call('GET', KEYS[i]), nil\n"
    "  if s and algo == 0 then\n"
    "    local tat, frac = string.match(s, '^(%d+):(%d+)$')\n"
    "    tat, frac = tonumber(tat), tonumber(frac)\n"
    "    local back = cost * period - (now - dnow) * count\n"
    "    if tat and frac and tat >= now and back > 0 then\n"
    "      local d = (tat - now) * count + frac - back\n"
    "      if d < 0 then d = 0 end\n"
    "      local q = floor(d / count)\n"
    "      v = string.format('%d:%d', now + q, d - q * count)\n"
    "    end\n"
    "  elseif s and algo == 1 then\n"
    "    local ws, wu = string.match(s, '^f:(%-?%d+):(%-?%d+)$')\n"
    "    ws, wu = tonumber(ws), tonumber(wu)\n"
    "    if ws and wu and ws == dnow - dnow % period and wu > 0 then\n"
    "      v = string.format('f:%d:%d', ws, math.max(wu - cost, 0))\n"
    "    end\n"
    "  elseif s and algo == 2 then\n"
    "    local ws, wp, wc = string.match(s, '^s:(%-?%d+):(%-?%d+):(%-?%d+)$')\n"
    "    ws, wp, wc = tonumber(ws), tonumber(wp), tonumber(wc)\n"
    "    local ds = dnow - dnow % period\n"
    "    if ws and wp and wc and ws == ds and wc > 0 then\n"
    "      v = string.format('s:%d:%d:%d', ws, wp, math.max(wc - cost, 0))\n"
    "    elseif ws and wp and wc and ws == ds + period and wp > 0 then\n"
    "      v = string.format('s:%d:%d:%d', ws, math.max(wp - cost, 0), wc)\n"
    "    end\n"
    "  elseif s and algo == 3 then\n"
    "    local base, offs = string.match(s, '^l:(%-?%d+):([%d,]*)$')\n"
    "    base = tonumber(base)\n"
    "    if base and offs then\n"
    "      local o, left = {}, cost\n"
    "      for x in string.gmatch(offs, '%d+') do\n"
    "        if left > 0 and base + tonumber(x) == dnow then left = left - 1\n"
    "        else o[#o + 1] = x end\n"
    "      end\n"
    "      if left < cost then v = string.format('l:%d:', base) .. table.concat(o, ',') end\n"
    "    end\n"
    "  end\n"
    "  if v then\n"
    "    redis.call('SET', KEYS[i], v, 'KEEPTTL')\n"
    "    done = done + 1\n"
    "  end\n"
    "end\n"
    "return done\n";

/* The refund as a Redis 7 function library, loaded on a node at its first refund (and again
 * after "Function not found") and run by FCALL: REFUND_LUA's text as the body of a function
 * registered under the library's name, "rl_refund_" and a hash of the text (so two builds
 * with different refunds never replace each other's library). A node that refuses FUNCTION
 * or FCALL (Redis < 7, an ACL) gets EVAL of REFUND_LUA. */
#define REFUND_NAME_FMT "rl_refund_%016" PRIx64
#define REFUND_NAME_LEN (10 + 16)
#define REFUND_HEAD_FMT "#!lua name=%s\nlocal name = '%s'\nlocal function refund(KEYS, ARGV)\n"
#define REFUND_TAIL "end\nredis.register_function(name, refund)\n"

typedef struct cl_node {
    char hostport[RL_CLUSTER_HOST_MAX + 8]; /* "HOST:PORT", its name in the map */
    char host[RL_CLUSTER_HOST_MAX + 1];
    rl_redis_config cfg; /* the router's, naming this node, without cluster seeds */
    rl_redis *conn;
    rl_breaker breaker;
    int nofunc; /* the node refused the refund as a function: EVAL it */
    /* This process' counters, for rl_cluster_nodes: only ever incremented. */
    int64_t decisions, failures, redirects;
} cl_node;

/* The items of one slot: c->items[first .. first + n). */
typedef struct cl_group {
    unsigned slot;
    size_t first, n;
    int node;    /* the node that decided it */
    int asked;   /* ... after an ASK: a refund needs ASKING too */
    int ret;     /* 1, 0, -1 */
    int64_t now; /* the time it was decided at */
} cl_group;

struct rl_cluster {
    const rl_redis_config *cfg; /* borrowed */
    cl_node *nodes[RL_CLUSTER_NODES_MAX];
    size_t nnodes;
    uint16_t map[RL_CLUSTER_SLOTS];
    uint16_t next[RL_CLUSTER_SLOTS]; /* scratch: the map being taken */
    int have_map;
    int stale; /* refresh the map at the next decision */
    int64_t last_now;
    char errstr[RL_ERRSTR_MAX];
    char refund_name[REFUND_NAME_LEN + 1];
    char *refund_lib; /* owned: the refund's function library, refund_len bytes */
    size_t refund_len;

    /* Per-decision scratch: the items grouped by slot, and keys (keycap bytes each). */
    rl_item items[RL_MAX_MATCH];
    cl_group groups[RL_MAX_MATCH];
    char *keys;
    size_t keycap;
};

RL_PRINTF(2, 3)
static void cl_error(rl_cluster *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
}

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

/* ---- nodes ---- */

/* The index of node HOST:PORT, added when new. -1 when the table is full or out of memory
 * (errstr set). */
static int cl_node_get(rl_cluster *c, const char *host, size_t hostlen, int port)
{
    char name[RL_CLUSTER_HOST_MAX + 8];
    cl_node *node;

    if (hostlen == 0 || hostlen > RL_CLUSTER_HOST_MAX || memchr(host, '\0', hostlen) != NULL) {
        cl_error(c, "redis cluster: invalid node address");
        return -1;
    }
    snprintf(name, sizeof name, "%.*s:%d", (int)hostlen, host, port);
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i]->hostport, name) == 0)
            return (int)i;
    if (c->nnodes == RL_CLUSTER_NODES_MAX) {
        cl_error(c, "redis cluster: more than %d nodes", RL_CLUSTER_NODES_MAX);
        return -1;
    }
    node = calloc(1, sizeof *node);
    if (node == NULL) {
        cl_error(c, "redis cluster: out of memory");
        return -1;
    }
    memcpy(node->host, host, hostlen);
    memcpy(node->hostport, name, sizeof name);
    node->cfg = *c->cfg;
    node->cfg.host = node->host;
    node->cfg.port = port;
    node->cfg.socket = NULL;
    node->cfg.cluster = NULL;
    node->cfg.ncluster = 0;
    node->conn = rl_redis_new(&node->cfg);
    if (node->conn == NULL) {
        free(node);
        cl_error(c, "redis cluster: out of memory");
        return -1;
    }
    rl_breaker_init(&node->breaker, c->cfg->breaker_failures > 0 ? c->cfg->breaker_failures : 1,
                    c->cfg->breaker_open_ms > 0 ? c->cfg->breaker_open_ms : 1,
                    c->cfg->breaker_open_max_ms > 0 ? c->cfg->breaker_open_max_ms : 1);
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
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++)
        c->map[s] = NODE_NONE;
    c->keycap = rl_keys_redis_len(strlen(prefix), RL_KEY_MAX, RL_RULE_ID_MAX - 1) + 1;
    c->keys = malloc(RL_MAX_MATCH * c->keycap);
    if (c->keys == NULL)
        goto fail;
    {
        static const uint8_t key[RL_SIPHASH_KEY_SIZE] = {0};
        size_t cap =
            sizeof REFUND_HEAD_FMT + 2 * REFUND_NAME_LEN + sizeof REFUND_LUA + sizeof REFUND_TAIL;
        int len;

        snprintf(c->refund_name, sizeof c->refund_name, REFUND_NAME_FMT,
                 rl_siphash24(key, REFUND_LUA, sizeof REFUND_LUA - 1));
        c->refund_lib = malloc(cap);
        if (c->refund_lib == NULL)
            goto fail;
        len = snprintf(c->refund_lib, cap, REFUND_HEAD_FMT "%s" REFUND_TAIL, c->refund_name,
                       c->refund_name, REFUND_LUA);
        if (len < 0 || (size_t)len >= cap)
            goto fail;
        c->refund_len = (size_t)len;
    }
    for (size_t i = 0; i < cfg->ncluster; i++) {
        const char *seed = cfg->cluster[i];
        const char *colon = strrchr(seed, ':');
        if (colon == NULL || cl_node_get(c, seed, (size_t)(colon - seed), atoi(colon + 1)) < 0)
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

/* ---- the slot map ---- */

int rl_cluster_take_map(rl_cluster *c, const redisReply *reply, const char *asked)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        cl_error(c, "redis cluster: CLUSTER SLOTS: %s",
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
            cl_error(c, "redis cluster: CLUSTER SLOTS: range %zu is not [start, end, master]", i);
            return -1;
        }
        m = r->element[2];
        if (m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING ||
            m->element[1]->type != REDIS_REPLY_INTEGER || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535) {
            cl_error(c, "redis cluster: CLUSTER SLOTS: range %zu: master is not [host, port]", i);
            return -1;
        }
        /* An empty host is "the node you asked" (a node alone has not learnt its address). */
        if (m->element[0]->len == 0 && asked != NULL)
            idx = cl_node_get(c, asked, strlen(asked), (int)m->element[1]->integer);
        else
            idx =
                cl_node_get(c, m->element[0]->str, m->element[0]->len, (int)m->element[1]->integer);
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

/* Whether a node's breaker is open now (without taking its half-open probe). */
static int cl_node_open(const cl_node *node, int64_t t)
{
    return rl_breaker_remaining(&node->breaker, t) > 0;
}

size_t rl_cluster_nodes(const rl_cluster *c, rl_redis_node_stats *out, size_t cap)
{
    int64_t t = rl_clock_mono_ms();

    for (size_t i = 0; i < c->nnodes && i < cap; i++) {
        const cl_node *node = c->nodes[i];
        snprintf(out[i].node, sizeof out[i].node, "%s", node->hostport);
        out[i].breaker_open = cl_node_open(node, t);
        out[i].decisions = node->decisions;
        out[i].failures = node->failures;
        out[i].redirects = node->redirects;
    }
    return c->nnodes;
}

/* Learns the map from the first node that answers CLUSTER SLOTS by the deadline. 0, or -1
 * with errstr. */
static int cl_refresh(rl_cluster *c, int64_t deadline)
{
    static const char *const argv[] = {"CLUSTER", "SLOTS"};
    static const size_t argvlen[] = {7, 5};
    int tried = 0;

    for (size_t i = 0; i < c->nnodes && rl_clock_mono_ms() < deadline; i++) {
        cl_node *node = c->nodes[i];
        redisReply *reply;

        if (cl_node_open(node, rl_clock_mono_ms()))
            continue;
        tried++;
        reply = rl_redis_node_command(node->conn, deadline, 1, 0, "CLUSTER SLOTS", 2,
                                      (const char **)argv, argvlen);
        if (reply == NULL) {
            rl_breaker_failure(&node->breaker, rl_clock_mono_ms());
            cl_error(c, "redis cluster: slot map: %s", rl_redis_errstr(node->conn));
            continue;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            cl_error(c, "redis cluster: slot map: %s: %.200s", node->hostport, reply->str);
        } else if (rl_cluster_take_map(c, reply, node->host) == 0) {
            freeReplyObject(reply);
            return 0;
        }
        freeReplyObject(reply);
    }
    if (tried == 0)
        cl_error(c, "redis cluster: slot map: no node to ask (every breaker open)");
    return -1;
}

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
            cl_error(c, "redis cluster: slot %u has no master in the slot map", g->slot);
            return -1;
        }
        node = c->nodes[idx];
        if (t >= deadline) {
            cl_error(c, "redis cluster: %s: timed out (after %d redirects)", node->hostport, hop);
            return -1;
        }
        if (!rl_breaker_allow(&node->breaker, t)) {
            cl_error(c, "redis cluster: %s: circuit breaker open after: %s", node->hostport,
                     rl_redis_errstr(node->conn));
            return -1;
        }
        ret = rl_redis_node_decide(node->conn, c->items + g->first, g->n, now_ms, deadline, asking,
                                   line, sizeof line);
        if (ret >= 0) {
            rl_breaker_success(&node->breaker);
            node->decisions++;
            g->node = idx;
            g->asked = asking;
            g->now = rl_redis_last_now(node->conn);
            return ret;
        }
        if (ret != RL_REDIS_REDIRECTED) {
            rl_breaker_failure(&node->breaker, rl_clock_mono_ms());
            node->failures++;
            c->stale = 1;
            cl_error(c, "%s", rl_redis_errstr(node->conn));
            return -1;
        }
        rl_breaker_success(&node->breaker); /* it answered */
        if (rl_cluster_parse_redirect(line, &ask, &slot, host, sizeof host, &port) == 0) {
            int to = cl_node_get(c, host, strlen(host), port);
            node->redirects++;
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
            cl_error(c, "redis cluster: %s: %s", node->hostport, line);
            return -1;
        }
    }
    cl_error(c, "redis cluster: slot %u: more than %d redirects", g->slot, HOPS_MAX);
    return -1;
}

/* Runs the refund argv[2..argc) (numkeys, keys, arguments) on node by deadline: FCALL of the
 * refund function, loading it first when the node has not got it, or EVAL where the node
 * refuses functions (node->nofunc). The reply (the caller frees it), or NULL. */
static redisReply *cl_refund_call(rl_cluster *c, cl_node *node, int asked, int64_t deadline,
                                  int argc, const char **argv, size_t *argvlen)
{
    redisReply *reply;

    if (!node->nofunc) {
        argv[0] = "FCALL";
        argvlen[0] = 5;
        argv[1] = c->refund_name;
        argvlen[1] = REFUND_NAME_LEN;
        reply = rl_redis_node_command(node->conn, deadline, 0, asked, "FCALL refund", argc, argv,
                                      argvlen);
        if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
            return reply;
        if (strcmp(reply->str, "ERR Function not found") == 0) {
            const char *largv[] = {"FUNCTION", "LOAD", "REPLACE", c->refund_lib};
            size_t llen[] = {8, 4, 7, c->refund_len};
            int loaded;

            freeReplyObject(reply);
            reply = rl_redis_node_command(node->conn, deadline, 0, 0, "FUNCTION LOAD refund", 4,
                                          largv, llen);
            if (reply == NULL)
                return NULL;
            loaded = reply->type == REDIS_REPLY_STRING;
            freeReplyObject(reply);
            if (loaded)
                return rl_redis_node_command(node->conn, deadline, 0, asked, "FCALL refund", argc,
                                             argv, argvlen);
        } else if (strncmp(reply->str, "ERR unknown command", 19) == 0 ||
                   strncmp(reply->str, "NOPERM", 6) == 0) {
            freeReplyObject(reply);
        } else {
            return reply; /* the refund's own error, or a redirect: as EVAL's would be */
        }
        node->nofunc = 1;
    }
    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = REFUND_LUA;
    argvlen[1] = sizeof REFUND_LUA - 1;
    return rl_redis_node_command(node->conn, deadline, 0, asked, "EVAL refund", argc, argv,
                                 argvlen);
}

/* Gives back what group g reserved (REFUND_LUA) on the node that decided it. A refund that
 * fails is lost: the charge stays, a brief over-refusal (errstr is left as the decision's). */
static void cl_refund(rl_cluster *c, const cl_group *g, int64_t now_ms, int64_t deadline)
{
    const char *prefix = c->cfg->prefix != NULL ? c->cfg->prefix : "";
    size_t plen = strlen(prefix);
    const char *argv[3 + RL_MAX_MATCH + 2 + 5 * RL_MAX_MATCH];
    size_t argvlen[sizeof argv / sizeof argv[0]];
    char nums[3 + 5 * RL_MAX_MATCH][24];
    int argc = 0, nn = 0, nkeys = 0;
    size_t i;
    redisReply *reply;

#define CL_NUM(v)                                                                                  \
    do {                                                                                           \
        argvlen[argc] = (size_t)snprintf(nums[nn], sizeof nums[nn], "%" PRId64, (int64_t)(v));     \
        argv[argc++] = nums[nn++];                                                                 \
    } while (0)

    argc += 2; /* FCALL name or EVAL script: cl_refund_call */
    argc++;    /* numkeys, below */
    for (i = 0; i < g->n; i++) {
        const rl_item *it = &c->items[g->first + i];
        char *k = c->keys + (size_t)nkeys * c->keycap;
        if (!it->res->allowed)
            continue; /* a dry run's refusal stored nothing */
        argvlen[argc] = (size_t)(rl_keys_redis(k, prefix, plen, it->client, strlen(it->client),
                                               it->rule->key_id, it->rule->key_id_len) -
                                 k);
        argv[argc++] = k;
        nkeys++;
    }
    if (nkeys == 0)
        return;
    argvlen[2] = (size_t)snprintf(nums[nn], sizeof nums[nn], "%d", nkeys);
    argv[2] = nums[nn++];
    CL_NUM(g->now);
    CL_NUM(now_ms < 0 ? -1 : now_ms);
    for (i = 0; i < g->n; i++) {
        const rl_item *it = &c->items[g->first + i];
        if (!it->res->allowed)
            continue;
        CL_NUM(it->rule->algo);
        CL_NUM(it->rule->count);
        CL_NUM(it->rule->period_ms);
        CL_NUM(it->rule->burst);
        CL_NUM(it->cost);
    }
#undef CL_NUM
    reply = cl_refund_call(c, c->nodes[g->node], g->asked, deadline, argc, argv, argvlen);
    if (reply != NULL)
        freeReplyObject(reply);
}

/* Groups items[0..n) by the slot of their key into c->items and c->groups (in the order
 * slots first appear). The number of groups, or -1 for a key that cannot be made. */
static int cl_group_items(rl_cluster *c, rl_item *items, size_t n)
{
    const char *prefix = c->cfg->prefix != NULL ? c->cfg->prefix : "";
    size_t plen = strlen(prefix), ng = 0, k = 0;
    unsigned slots[RL_MAX_MATCH];

    for (size_t i = 0; i < n; i++) {
        size_t clen = strnlen(items[i].client, RL_KEY_MAX + 1);
        char *end;

        if (clen > RL_KEY_MAX) {
            cl_error(c, "redis: key for client \"%.64s...\" is too long", items[i].client);
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
    int ms = c->cfg->command_timeout_ms;
    int64_t deadline = ms > 0 ? rl_clock_mono_ms() + ms : INT64_MAX / 2;
    int ng, admitted = 1, failed = 0;

    if (n == 0)
        return 1;
    if (n > RL_MAX_MATCH) {
        cl_error(c, "redis: invalid batch (%zu rules)", n);
        return -1;
    }
    ng = cl_group_items(c, items, n);
    if (ng < 0)
        return -1;
    if ((!c->have_map || c->stale) && cl_refresh(c, deadline) < 0 && !c->have_map)
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
            cl_refund(c, &c->groups[i], now_ms, deadline);
    if (failed)
        return -1;
    c->errstr[0] = '\0';
    return 0;
}

int rl_cluster_ping(rl_cluster *c)
{
    static const char *const argv[] = {"PING"};
    static const size_t argvlen[] = {4};
    int ms = c->cfg->command_timeout_ms;
    int64_t deadline = ms > 0 ? rl_clock_mono_ms() + ms : INT64_MAX / 2;
    char seen[RL_CLUSTER_NODES_MAX] = {0};

    if ((!c->have_map || c->stale) && cl_refresh(c, deadline) < 0)
        return -1;
    for (size_t s = 0; s < RL_CLUSTER_SLOTS; s++) {
        int idx = c->map[s];
        redisReply *reply;
        if (idx == NODE_NONE) {
            c->stale = 1;
            cl_error(c, "redis cluster: slot %zu has no master", s);
            return -1;
        }
        if (seen[idx])
            continue;
        seen[idx] = 1;
        reply = rl_redis_node_command(c->nodes[idx]->conn, deadline, 0, 0, "PING", 1,
                                      (const char **)argv, argvlen);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            c->stale = 1;
            cl_error(c, "redis cluster: %s: %s", c->nodes[idx]->hostport,
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
