/* redis.c -- the Redis store: one persistent hiredis connection per handle
 *
 * A decision is one call of the script (ratelimit.lua) over every matched rule, so
 * Redis decides all rules atomically and, with now_ms < 0, on its own clock shared by every
 * host. Keys are PREFIX "{" CLIENT "}:" RULE-ID (keys.c): the hash tag keeps one client's keys in one
 * Redis Cluster slot, so a multi-rule script never crosses slots.
 *
 * Connecting (AUTH, SELECT, ROLE with Sentinel, loading the script) is redis_connect.c; the
 * command in the wire format and the check of its reply, redis_wire.c; the handle, redis_int.h.
 *
 * The script is loaded once per connection as a Redis 7 function library (FUNCTION LOAD
 * REPLACE of rl_redis_library, named after the script's SHA1) and run with FCALL, which calls
 * one function instead of running the whole chunk (making every helper closure) per call. A
 * server that answers FUNCTION LOAD with an error (Redis < 7, an ACL without +function) gets
 * SCRIPT LOAD and EVALSHA instead; r->fcall says which, per connection, found at every connect.
 *
 * The handle is connected (ctx != NULL: AUTH, SELECT and the load done, sha valid) or not
 * (ctx == NULL: the next decide connects). Any failure (connect, I/O, timeout, error reply, a
 * reply of the wrong shape or over the size bounds) frees the context -- hiredis contexts are
 * unusable after an error. This file never waits between attempts: when to try Redis again is
 * the circuit breaker's job (failover.c, driven by limiter.c), so there is one mechanism, not
 * two.
 *
 * One deadline per decision (and per PING): command_timeout_ms from the call's start bounds
 * all of it -- connect (also bounded by connect_timeout_ms), AUTH, SELECT, FUNCTION LOAD (or SCRIPT LOAD), the
 * FCALL (or EVALSHA), the reload and retry after "Function not found" (a FUNCTION FLUSH or
 * a restart) or NOSCRIPT, a reconnect -- on a non-blocking context polled for
 * the time left (redis_io.c), so no server, however slow or hostile, holds a decision longer.
 *
 * Instant reconnect: a connection kept from an earlier call is checked before use (without
 * waiting), and replaced when the server closed or reset it meanwhile; one that turns out dead
 * on first use anyway (closed or reset before any byte of the reply) is replaced and the
 * command sent once more, within the same deadline. So a Redis restart that happened while a
 * process was idle costs that process one connect, not a fallback decision.
 *
 * A command that timed out may still run once the server catches up: a timeout means
 * "unknown", and the state may have been consumed although the caller fell back.
 *
 * Writing to a connection the server closed raises SIGPIPE: the process must ignore it
 * (the filter does, and so do the tests); a library should not change signal dispositions.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "error.h"
#include "keys.h"
#include "redis_int.h"
#include "redis_node.h"
#include "redis_reply.h"

RL_PRINTF(2, 3)
void rl_redis_seterr(rl_redis *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rl_errbuf_vset(r->errstr, sizeof(r->errstr), fmt, ap);
    va_end(ap);
}

rl_redis *rl_redis_new(const rl_redis_config *cfg)
{
    rl_redis *r = calloc(1, sizeof(*r));
    const char *prefix = cfg->prefix != NULL ? cfg->prefix : "";

    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->prefix = prefix;
    r->plen = strlen(prefix);
    r->row = -1;
    if (cfg->ncluster > 0) {
        r->cluster = rl_cluster_new(cfg);
        if (r->cluster == NULL) {
            free(r);
            return NULL;
        }
    }
    /* prefix "{" client "}:" rule NUL, the client at most RL_KEY_MAX bytes. */
    r->keycap = rl_keys_redis_len(r->plen, RL_KEY_MAX, RL_RULE_ID_MAX - 1) + 1;
    /* "*ARGC\r\n", then every argument framed: the SHA1, the keys, the numbers. */
    r->cmd = malloc(REDIS_HEAD_MAX + RL_MAX_MATCH * (REDIS_BULK_MAX + r->keycap) +
                    REDIS_NUMS_MAX * (REDIS_BULK_MAX + REDIS_NUM_LEN));
    if (r->cmd == NULL) {
        rl_redis_free(r); /* and the cluster router made above */
        return NULL;
    }
    if (cfg->socket != NULL)
        snprintf(r->where, sizeof(r->where), "unix:%s", cfg->socket);
    else
        snprintf(r->where, sizeof(r->where), "%s:%d", cfg->host ? cfg->host : "127.0.0.1",
                 cfg->port);
    return r;
}

void rl_redis_free(rl_redis *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
        redisFree(r->ctx);
    rl_cluster_free(r->cluster);
    free(r->cmd);
    free(r);
}

const char *rl_redis_errstr(const rl_redis *r)
{
    return r->cluster != NULL ? rl_cluster_errstr(r->cluster) : r->errstr;
}

int rl_redis_connected(const rl_redis *r)
{
    return r->cluster != NULL ? rl_cluster_connected(r->cluster) : r->ctx != NULL;
}

int64_t rl_redis_last_now(const rl_redis *r)
{
    return r->cluster != NULL ? rl_cluster_last_now(r->cluster) : r->last_now_ms;
}

/* The connection failed: drop it (never reuse a context in error). errstr is already set.
 * Always returns -1. */
int rl_redis_fail(rl_redis *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    return -1;
}

/* Sends what the context's output buffer holds and reads the reply by the call's deadline:
 * RL_RIO_OK and the reply (the caller frees it), or another status after rl_redis_fail. */
static rl_rio_status redis_call(rl_redis *r, const char *what, redisReply **reply)
{
    char why[RL_ERRSTR_MAX / 2];
    rl_rio_status st = r->map ? rl_rio_exchange_map(r->ctx, r->deadline, reply, why, sizeof why)
                              : rl_rio_exchange(r->ctx, r->deadline, reply, why, sizeof why);

    r->last = st;
    if (st != RL_RIO_OK) {
        rl_redis_seterr(r, "redis %s: %s: %s", r->where, what, why);
        rl_redis_fail(r);
    }
    return st;
}

/* Runs the command argv[0..argc) (redis_call): the reply, or NULL after rl_redis_fail. */
redisReply *rl_redis_command(rl_redis *r, const char *what, int argc, const char **argv,
                             const size_t *argvlen)
{
    redisReply *reply = NULL;

    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
        rl_redis_seterr(r, "redis %s: %s: out of memory", r->where, what);
        rl_redis_fail(r);
        return NULL;
    }
    if (redis_call(r, what, &reply) != RL_RIO_OK)
        return NULL;
    return reply;
}

/* Runs a command that must answer with a status or a string. Returns the reply (the caller
 * frees it) or NULL after rl_redis_fail. */
redisReply *rl_redis_simple(rl_redis *r, const char *what, int argc, const char **argv,
                            const size_t *argvlen)
{
    redisReply *reply = rl_redis_command(r, what, argc, argv, argvlen);

    if (reply == NULL)
        return NULL;
    if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
        return reply;
    char shown[256];
    if (reply->type == REDIS_REPLY_ERROR)
        rl_redis_seterr(r, "redis %s: %s failed: %s", r->where, what,
                        rl_redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        rl_redis_seterr(r, "redis %s: %s: unexpected reply type %d", r->where, what, reply->type);
    freeReplyObject(reply);
    rl_redis_fail(r);
    return NULL;
}

/* Sends the built command, headed for how the connection runs the script (FCALL and the
 * function's name, or EVALSHA and the SHA1), and waits for the reply (redis_call). */
static rl_rio_status redis_send(rl_redis *r, redisReply **reply)
{
    const char *what = r->fcall ? "FCALL" : "EVALSHA";
    size_t hlen = rl_redis_put_head(r);

    if (redisAppendFormattedCommand(r->ctx, r->cmd + REDIS_HEAD_MAX - hlen, hlen + r->cmdlen) !=
        REDIS_OK) {
        rl_redis_seterr(r, "redis %s: %s: out of memory", r->where, what);
        rl_redis_fail(r);
        return RL_RIO_NOMEM;
    }
    return redis_call(r, what, reply);
}

/* Starts a call: fixes its deadline, drops a kept connection the server closed or reset
 * while it was idle, and connects when there is none. 1 when the call goes on a connection
 * kept from before (it may still turn out dead: worth one retry), 0 on a new one, -1 when
 * connecting failed (errstr set). */
static int redis_begin(rl_redis *r)
{
    /* A cluster node's call has the whole decision's deadline. */
    r->deadline = r->given > 0 ? r->given : rl_redis_call_deadline(r->cfg);
    if (r->ctx != NULL && !rl_rio_alive(r->ctx))
        rl_redis_fail(r);
    if (r->ctx != NULL && r->cfg->nsentinels > 0)
        rl_redis_recheck_master(r);
    if (r->ctx != NULL)
        return 1;
    return rl_redis_connect(r) < 0 ? -1 : 0;
}

/* Sends the built command on the connection redis_begin gave (kept: 1, new: 0). A kept one
 * found dead on first use -- closed or reset before any byte of the reply, as after a restart
 * the idle check could not see yet -- is replaced and the command sent once more, by the same
 * deadline. The server may then have run the first one too: a decision counted twice, which
 * only makes the limit stricter (as after any timeout). */
static rl_rio_status redis_send_once_more(rl_redis *r, int kept, redisReply **reply)
{
    rl_rio_status st = redis_send(r, reply);

    if (st != RL_RIO_CLOSED || !kept)
        return st;
    if (rl_redis_connect(r) < 0)
        return RL_RIO_IO;
    return redis_send(r, reply);
}

/* Checks the script's reply and fills the results (rl_redis_take_reply). 1 / 0 as
 * rl_redis_decide, or -1 with errstr set (the caller drops the connection). */
static int redis_take_reply(rl_redis *r, const redisReply *reply, rl_item *items, size_t n)
{
    int64_t now_ms;
    int ret = rl_redis_take_reply(reply, items, n, &now_ms, r->where, r->errstr, sizeof r->errstr);

    if (ret >= 0)
        r->last_now_ms = now_ms;
    return ret;
}

/* Runs a command (rl_redis_simple when simple, else rl_redis_command) on the connection
 * redis_begin gave (kept: 1): one found dead on first use is replaced and the command sent
 * once more, as in redis_send_once_more. The reply, or NULL after rl_redis_fail. */
static redisReply *redis_command_once_more(rl_redis *r, int kept, int simple, const char *what,
                                           int argc, const char **argv, const size_t *argvlen)
{
    redisReply *(*run)(rl_redis *, const char *, int, const char **, const size_t *) =
        simple ? rl_redis_simple : rl_redis_command;
    redisReply *reply = run(r, what, argc, argv, argvlen);

    if (reply == NULL && kept && r->last == RL_RIO_CLOSED && rl_redis_connect(r) == 0)
        reply = run(r, what, argc, argv, argvlen);
    return reply;
}

/* ASKING before an ASK redirect's retry, on the connection redis_begin gave (kept: 1). 0, or
 * -1 after rl_redis_fail. */
static int redis_asking(rl_redis *r, int kept)
{
    static const char *const argv[] = {"ASKING"};
    static const size_t argvlen[] = {6};
    redisReply *reply =
        redis_command_once_more(r, kept, 1, "ASKING", 1, (const char **)argv, argvlen);

    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    return 0;
}

/* A Redis Cluster error: a redirect or a cluster state the router handles. */
static int redis_cluster_error(const redisReply *reply)
{
    static const char *const kinds[] = {"MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"};

    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strncmp(reply->str, kinds[i], strlen(kinds[i])) == 0)
            return 1;
    return 0;
}

/* rl_redis_decide, and rl_redis_node_decide when redirect != NULL. */
static int redis_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms, int asking,
                        char *redirect, size_t size)
{
    redisReply *reply = NULL;
    int ret, kept;

    if (n == 0)
        return 1;
    if (n > RL_MAX_MATCH) {
        rl_redis_seterr(r, "redis: invalid batch (%zu rules)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].cost < 1) {
            rl_redis_seterr(r, "redis: invalid batch (item %zu: cost %" PRId64 ")", i,
                            items[i].cost);
            return -1;
        }
    }
    if (rl_redis_build(r, items, n, now_ms) < 0)
        return -1; /* bad input; the connection is fine */
    kept = redis_begin(r);
    if (kept < 0)
        return -1;
    if (asking) {
        if (redis_asking(r, kept) < 0)
            return -1;
        kept = 0;
    }
    if (redis_send_once_more(r, kept, &reply) != RL_RIO_OK)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR &&
        (strncmp(reply->str, "NOSCRIPT", 8) == 0 ||
         (r->fcall && strcmp(reply->str, "ERR Function not found") == 0))) {
        /* Flushed (SCRIPT FLUSH, FUNCTION FLUSH), or a failover to a server that never saw
         * it: load and retry once. */
        freeReplyObject(reply);
        reply = NULL;
        /* As the connection runs it: a server that refused FUNCTION once is not asked again. */
        if ((r->fcall ? rl_redis_load_script(r) : rl_redis_script_load(r)) < 0 ||
            (asking && redis_asking(r, 0) < 0) || redis_send(r, &reply) != RL_RIO_OK)
            return -1;
    }
    if (redirect != NULL && redis_cluster_error(reply)) {
        rl_redis_printable(redirect, size, reply->str, reply->len);
        rl_redis_seterr(r, "redis %s: %s: %s", r->where, r->fcall ? "FCALL" : "EVALSHA", redirect);
        freeReplyObject(reply);
        return RL_REDIS_REDIRECTED; /* the connection is fine */
    }
    ret = redis_take_reply(r, reply, items, n);
    freeReplyObject(reply);
    if (ret < 0)
        return rl_redis_fail(r);
    r->errstr[0] = '\0';
    return ret;
}

int rl_redis_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms)
{
    int ret;

    if (r->cluster != NULL)
        return rl_cluster_decide(r->cluster, items, n, now_ms);
    ret = redis_decide(r, items, n, now_ms, 0, NULL, 0);
    if (r->row >= 0) { /* with Sentinel: counted against the master last named */
        if (ret < 0)
            rl_stats_node_failed(r->stats, r->row);
        else
            rl_stats_node_add(r->stats, r->row, RL_STAT_NODE_DECISIONS);
    }
    return ret;
}

void rl_redis_set_stats(rl_redis *r, rl_stats_seg *st)
{
    r->stats = st;
    if (r->cluster != NULL)
        rl_cluster_set_stats(r->cluster, st);
}

void rl_redis_breaker(rl_redis *r, int open)
{
    rl_stats_node_breaker(r->stats, r->row, open);
}

int64_t rl_redis_call_deadline(const rl_redis_config *cfg)
{
    int ms = cfg->command_timeout_ms;

    /* No timeout configured (only a hand-made config can say 0): no deadline. */
    return ms > 0 ? rl_clock_mono_ms() + ms : INT64_MAX / 2;
}

int rl_redis_node_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms, int64_t deadline,
                         int asking, char *redirect, size_t size)
{
    int ret;

    r->given = deadline;
    ret = redis_decide(r, items, n, now_ms, asking, redirect, size);
    r->given = 0;
    return ret;
}

redisReply *rl_redis_node_command(rl_redis *r, int64_t deadline, int map, int asking,
                                  const char *what, int argc, const char **argv,
                                  const size_t *argvlen)
{
    redisReply *reply = NULL;
    int kept;

    r->given = deadline;
    kept = redis_begin(r);
    r->given = 0;
    if (kept < 0)
        return NULL;
    if (asking) {
        if (redis_asking(r, kept) < 0)
            return NULL;
        kept = 0;
    }
    r->map = map;
    reply = redis_command_once_more(r, kept, 0, what, argc, argv, argvlen);
    r->map = 0;
    return reply;
}

int rl_redis_ping(rl_redis *r)
{
    static const char *const argv[] = {"PING"};
    static const size_t argvlen[] = {4};
    redisReply *reply;
    int kept;

    if (r->cluster != NULL)
        return rl_cluster_ping(r->cluster);
    kept = redis_begin(r);

    if (kept < 0)
        return -1;
    reply = redis_command_once_more(r, kept, 1, "PING", 1, (const char **)argv, argvlen);
    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    r->errstr[0] = '\0';
    return 0;
}
