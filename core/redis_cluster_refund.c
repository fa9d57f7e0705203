/* redis_cluster_refund.c -- giving back a slot group's reservation on Redis Cluster
 *
 * When a request's slot groups are decided on several masters and one refuses or fails,
 * every group that admitted is refunded in the same decision (redis_cluster_route.c) by
 * REFUND_LUA below, which gives back at most what the reservation took -- never more than a
 * state without it would hold, even after other requests charged the same keys meanwhile.
 * It runs as a Redis 7 function (FCALL, its library loaded on a node at its first refund) or,
 * on a node that refuses functions (cl_node.nofunc), by EVAL. A refund that fails is lost:
 * the charge stays, a brief over-refusal.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "redis_cluster_int.h"
#include "redis_node.h"
#include "siphash.h"

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
#define REFUND_HEAD_FMT "#!lua name=%s\nlocal name = '%s'\nlocal function refund(KEYS, ARGV)\n"
#define REFUND_TAIL "end\nredis.register_function(name, refund)\n"

int rl_cl_refund_init(rl_cluster *c)
{
    static const uint8_t key[RL_SIPHASH_KEY_SIZE] = {0};
    size_t cap =
        sizeof REFUND_HEAD_FMT + 2 * REFUND_NAME_LEN + sizeof REFUND_LUA + sizeof REFUND_TAIL;
    int len;

    snprintf(c->refund_name, sizeof c->refund_name, REFUND_NAME_FMT,
             rl_siphash24(key, REFUND_LUA, sizeof REFUND_LUA - 1));
    c->refund_lib = malloc(cap);
    if (c->refund_lib == NULL)
        return -1;
    len = snprintf(c->refund_lib, cap, REFUND_HEAD_FMT "%s" REFUND_TAIL, c->refund_name,
                   c->refund_name, REFUND_LUA);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    c->refund_len = (size_t)len;
    return 0;
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
void rl_cl_refund(rl_cluster *c, const cl_group *g, int64_t now_ms, int64_t deadline)
{
    const char *prefix = c->prefix;
    size_t plen = c->plen;
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
