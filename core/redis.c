/* redis.c -- the Redis store: one persistent hiredis connection per handle
 *
 * A decision is one call of the script (ratelimit.lua) over every matched rule, so
 * Redis decides all rules atomically and, with now_ms < 0, on its own clock shared by every
 * host. Keys are PREFIX "{" CLIENT "}:" RULE-ID (keys.c): the hash tag keeps one client's keys in one
 * Redis Cluster slot, so a multi-rule script never crosses slots.
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
 * The request path allocates nothing of its own (hiredis still copies the command into its
 * output buffer and allocates the reply): the command is written in the wire format (RESP)
 * straight into a buffer sized at rl_redis_new -- keys by memcpy, numbers by a small integer
 * formatter, no printf -- and handed to hiredis whole (redisAppendFormattedCommand), so hiredis
 * does not format argument by argument either. Its head (argument count, FCALL and the
 * function's name, or EVALSHA and the SHA1) goes in front of the built arguments just before
 * sending, since the connection (re)loads the script, and learns which, after they are built.
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

#include "backend.h"
#include "clock.h"
#include "keys.h"
#include "redis_cluster.h"
#include "redis_io.h"
#include "redis_node.h"
#include "redis_reply.h"
#include "redis_script.h"
#include "redis_sentinel.h"

#define REDIS_SHA_LEN 40
/* "FCALL" name (or "EVALSHA" sha) numkeys, then n keys, now, and algo/count/period/burst/cost/
 * dry-run per rule. */
#define REDIS_ARGV_MAX (3 + RL_MAX_MATCH + 1 + 6 * RL_MAX_MATCH)
/* Numbers formatted per call: numkeys, now, then 6 per rule. */
#define REDIS_NUMS_MAX (2 + 6 * RL_MAX_MATCH)
#define REDIS_NUM_LEN 24 /* an int64 in decimal, sign and NUL included */
/* The command's head, "*ARGC\r\n" (ARGC = 4 + 7n, at most three digits) then one of these and
 * the name or SHA1 and CRLF: at most REDIS_HEAD_MAX bytes before the arguments. */
#define REDIS_FCALL_HEAD "$5\r\nFCALL\r\n$43\r\n"
#define REDIS_EVALSHA_HEAD "$7\r\nEVALSHA\r\n$40\r\n"
#define REDIS_HEAD_MAX (6 + sizeof(REDIS_FCALL_HEAD) - 1 + RL_REDIS_FUNCTION_LEN + 2)
_Static_assert(REDIS_ARGV_MAX < 1000, "ARGC must have at most three digits");
_Static_assert(sizeof(REDIS_FCALL_HEAD) + RL_REDIS_FUNCTION_LEN >=
                   sizeof(REDIS_EVALSHA_HEAD) + REDIS_SHA_LEN,
               "the FCALL head is the longer");
/* One bulk string's framing: "$" LEN "\r\n" ... "\r\n". */
#define REDIS_BULK_MAX (1 + REDIS_NUM_LEN + 4)
/* Results fit a double exactly and come from bounded config: anything larger is corrupt. */
#define REDIS_VALUE_MAX (INT64_C(1) << 53)

struct rl_redis {
    const rl_redis_config *cfg; /* borrowed: must outlive the handle */
    redisContext *ctx;          /* owned; NULL when not connected */
    char sha[REDIS_SHA_LEN + 1];
    int fcall; /* the connection runs the script as a function (FCALL), else EVALSHA sha */
    int64_t last_now_ms; /* the time the last successful script decided at */
    int64_t deadline;    /* monotonic ms by which the current call ends, whatever happens */
    int64_t given;       /* > 0: the deadline a cluster node's call was given (redis_node.h) */
    int map;             /* the current command's reply has a slot map's bounds */
    rl_cluster *cluster; /* owned; non-NULL when cfg names cluster seeds: it decides */
    /* With Sentinel: the master the sentinels named at the last connect, and cfg with its
     * address (what rl_rio_connect is given). */
    char master[RL_SENTINEL_HOST_MAX + 1];
    rl_redis_config mcfg;
    int64_t asked_ms;                      /* monotonic ms the sentinels were last asked */
    rl_rio_status last;                    /* how the last exchange ended */
    char where[RL_SENTINEL_HOST_MAX + 16]; /* "127.0.0.1:6379" or "unix:/path", for messages */
    char errstr[RL_ERRSTR_MAX];

    /* Per-request scratch, owned: the command in RESP, its arguments after the numkeys
     * (nargs of them, cmdlen bytes) from cmd + REDIS_HEAD_MAX; redis_send puts the head
     * just before them. */
    char *cmd;
    size_t cmdcap, cmdlen;
    int nargs;
    size_t keycap; /* the longest key + its NUL: prefix "{" client "}:" rule */
};

RL_PRINTF(2, 3)
static void redis_set_error(rl_redis *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->errstr, sizeof(r->errstr), fmt, ap);
    va_end(ap);
}

/* Copies a server's text (an error reply) into dst for a message: bytes that are not
 * printable ASCII become \xHH, so a reply can never add a line or a control sequence to a log
 * (found by fuzz_redis_reply: an error reply may hold any byte but CR LF, even a bare LF).
 * Returns dst; cut short, never overflowing, when it does not fit. */
static const char *redis_printable(char *dst, size_t size, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 <= size; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (size > 0)
        dst[o < size ? o : size - 1] = '\0';
    return dst;
}

rl_redis *rl_redis_new(const rl_redis_config *cfg)
{
    rl_redis *r = calloc(1, sizeof(*r));
    const char *prefix = cfg->prefix != NULL ? cfg->prefix : "";

    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    if (cfg->ncluster > 0) {
        r->cluster = rl_cluster_new(cfg);
        if (r->cluster == NULL) {
            free(r);
            return NULL;
        }
    }
    /* prefix "{" client "}:" rule NUL, the client at most RL_KEY_MAX bytes. */
    r->keycap = rl_keys_redis_len(strlen(prefix), RL_KEY_MAX, RL_RULE_ID_MAX - 1) + 1;
    /* "*ARGC\r\n", then every argument framed: the SHA1, the keys, the numbers. */
    r->cmdcap = REDIS_HEAD_MAX + RL_MAX_MATCH * (REDIS_BULK_MAX + r->keycap) +
                REDIS_NUMS_MAX * (REDIS_BULK_MAX + REDIS_NUM_LEN);
    r->cmd = malloc(r->cmdcap);
    if (r->cmd == NULL) {
        free(r);
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
static int redis_fail(rl_redis *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    return -1;
}

/* Sends what the context's output buffer holds and reads the reply by the call's deadline:
 * RL_RIO_OK and the reply (the caller frees it), or another status after redis_fail. */
static rl_rio_status redis_call(rl_redis *r, const char *what, redisReply **reply)
{
    char why[RL_ERRSTR_MAX / 2];
    rl_rio_status st = r->map ? rl_rio_exchange_map(r->ctx, r->deadline, reply, why, sizeof why)
                              : rl_rio_exchange(r->ctx, r->deadline, reply, why, sizeof why);

    r->last = st;
    if (st != RL_RIO_OK) {
        redis_set_error(r, "redis %s: %s: %s", r->where, what, why);
        redis_fail(r);
    }
    return st;
}

/* Runs the command argv[0..argc) (redis_call): the reply, or NULL after redis_fail. */
static redisReply *redis_command(rl_redis *r, const char *what, int argc, const char **argv,
                                 const size_t *argvlen)
{
    redisReply *reply = NULL;

    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
        redis_set_error(r, "redis %s: %s: out of memory", r->where, what);
        redis_fail(r);
        return NULL;
    }
    if (redis_call(r, what, &reply) != RL_RIO_OK)
        return NULL;
    return reply;
}

/* Runs a command that must answer with a status or a string. Returns the reply (the caller
 * frees it) or NULL after redis_fail. */
static redisReply *redis_simple(rl_redis *r, const char *what, int argc, const char **argv,
                                const size_t *argvlen)
{
    redisReply *reply = redis_command(r, what, argc, argv, argvlen);

    if (reply == NULL)
        return NULL;
    if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
        return reply;
    char shown[256];
    if (reply->type == REDIS_REPLY_ERROR)
        redis_set_error(r, "redis %s: %s failed: %s", r->where, what,
                        redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        redis_set_error(r, "redis %s: %s: unexpected reply type %d", r->where, what, reply->type);
    freeReplyObject(reply);
    redis_fail(r);
    return NULL;
}

/* SCRIPT LOAD: keeps the script's SHA1 for EVALSHA, which must be the one computed at build
 * (redis_script.h): another would mean the server ran other text. 0, or -1 after redis_fail. */
static int redis_script_load(rl_redis *r)
{
    const char *argv[] = {"SCRIPT", "LOAD", rl_redis_script};
    size_t argvlen[] = {6, 4, rl_redis_script_len};
    redisReply *reply = redis_simple(r, "SCRIPT LOAD", 3, argv, argvlen);

    r->fcall = 0;
    if (reply == NULL)
        return -1;
    if (reply->type != REDIS_REPLY_STRING || reply->len != REDIS_SHA_LEN) {
        redis_set_error(r, "redis %s: SCRIPT LOAD: unexpected reply", r->where);
        freeReplyObject(reply);
        return redis_fail(r);
    }
    if (memcmp(reply->str, rl_redis_script_sha, REDIS_SHA_LEN) != 0) {
        char shown[REDIS_SHA_LEN * 4 + 1];
        redis_set_error(r, "redis %s: SCRIPT LOAD: digest %s, expected %s", r->where,
                        redis_printable(shown, sizeof shown, reply->str, reply->len),
                        rl_redis_script_sha);
        freeReplyObject(reply);
        return redis_fail(r);
    }
    memcpy(r->sha, reply->str, REDIS_SHA_LEN);
    r->sha[REDIS_SHA_LEN] = '\0';
    freeReplyObject(reply);
    return 0;
}

/* Loads the script: FUNCTION LOAD REPLACE of the library (REPLACE: a library of this name
 * holds this very text, so replacing it changes nothing, and a second load is no error), or,
 * when the server answers that with an error, SCRIPT LOAD. 0, or -1 after redis_fail. */
static int redis_load_script(rl_redis *r)
{
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", rl_redis_library};
    size_t argvlen[] = {8, 4, 7, rl_redis_library_len};
    redisReply *reply = redis_command(r, "FUNCTION LOAD", 4, argv, argvlen);
    size_t nlen = RL_REDIS_FUNCTION_LEN;

    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Redis < 7 ("unknown command"), or an ACL that does not allow it: the connection
         * is fine, and EVALSHA does the same work. */
        freeReplyObject(reply);
        return redis_script_load(r);
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len != nlen ||
        memcmp(reply->str, rl_redis_function, nlen) != 0) {
        char shown[128];
        redis_set_error(r, "redis %s: FUNCTION LOAD: unexpected reply%s%s", r->where,
                        reply->type == REDIS_REPLY_STRING ? " " : "",
                        reply->type == REDIS_REPLY_STRING
                            ? redis_printable(shown, sizeof shown, reply->str, reply->len)
                            : "");
        freeReplyObject(reply);
        return redis_fail(r);
    }
    freeReplyObject(reply);
    r->fcall = 1;
    return 0;
}

/* AUTH with the configured password, as the configured ACL user when there is one ("AUTH
 * user pass", Redis >= 6). The server's message is kept for the operator, but never the
 * password: it is dropped if the server happened to echo it. */
static int redis_auth(rl_redis *r)
{
    const char *pw = r->cfg->password;
    const char *user = r->cfg->user;
    const char *argv[3] = {"AUTH"};
    size_t argvlen[3] = {4};
    int argc = 1;
    redisReply *reply;

    if (user != NULL) {
        argv[argc] = user;
        argvlen[argc++] = strlen(user);
    }
    argv[argc] = pw;
    argvlen[argc++] = strlen(pw);
    reply = redis_command(r, "AUTH", argc, argv, argvlen);
    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_STATUS) {
        freeReplyObject(reply);
        return 0;
    }
    char shown[256];
    if (reply->type == REDIS_REPLY_ERROR && pw[0] != '\0' && strstr(reply->str, pw) == NULL)
        redis_set_error(r, "redis %s: auth failed: %s", r->where,
                        redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        redis_set_error(r, "redis %s: auth failed", r->where);
    freeReplyObject(reply);
    return redis_fail(r);
}

static int redis_select(rl_redis *r)
{
    char db[REDIS_NUM_LEN];
    const char *argv[] = {"SELECT", db};
    size_t argvlen[2] = {6, 0};
    redisReply *reply;

    argvlen[1] = (size_t)snprintf(db, sizeof(db), "%d", r->cfg->db);
    reply = redis_simple(r, "SELECT", 2, argv, argvlen);
    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    return 0;
}

/* With Sentinel: ROLE must say "master" before anything is written (a sentinel's answer
 * may be stale: a demoted master, a replica not yet promoted). 0, or -1 after redis_fail. */
static int redis_check_role(rl_redis *r)
{
    static const char *const argv[] = {"ROLE"};
    static const size_t argvlen[] = {4};
    redisReply *reply;
    char shown[64];

    r->map = 1; /* a master's ROLE lists its replicas in nested arrays */
    reply = redis_command(r, "ROLE", 1, (const char **)argv, argvlen);
    r->map = 0;
    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len == 6 &&
        memcmp(reply->element[0]->str, "master", 6) == 0) {
        freeReplyObject(reply);
        return 0;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING)
        redis_set_error(
            r, "redis %s: ROLE: \"%s\", not the master: not written to", r->where,
            redis_printable(shown, sizeof shown, reply->element[0]->str, reply->element[0]->len));
    else if (reply->type == REDIS_REPLY_ERROR)
        redis_set_error(r, "redis %s: ROLE failed: %s", r->where,
                        redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        redis_set_error(r, "redis %s: ROLE: unexpected reply type %d", r->where, reply->type);
    freeReplyObject(reply);
    return redis_fail(r);
}

/* With Sentinel: the master's address, asked again at every connect (redis_sentinel.c). 0,
 * or -1 (errstr set). */
static int redis_find_master(rl_redis *r)
{
    char why[RL_ERRSTR_MAX / 2];
    int port;

    if (rl_sentinel_master(r->cfg, r->deadline, r->master, sizeof r->master, &port, why,
                           sizeof why) < 0) {
        redis_set_error(r, "redis master \"%.64s\": %s", r->cfg->master_name, why);
        return -1;
    }
    r->mcfg = *r->cfg;
    r->mcfg.host = r->master;
    r->mcfg.port = port;
    r->asked_ms = rl_clock_mono_ms();
    snprintf(r->where, sizeof(r->where), "%s:%d", r->master, port);
    return 0;
}

/* Connects, by the call's deadline. 0 when connected, -1 otherwise (errstr set). */
static int redis_connect(rl_redis *r)
{
    const rl_redis_config *cfg = r->cfg;
    char why[RL_ERRSTR_MAX / 2];

    if (cfg->nsentinels > 0) {
        if (redis_find_master(r) < 0)
            return -1;
        cfg = &r->mcfg;
    }
    if (rl_rio_connect(cfg, r->deadline, cfg->connect_timeout_ms, &r->ctx, why, sizeof why) !=
        RL_RIO_OK) {
        redis_set_error(r, "redis %s: %s", r->where, why);
        return -1;
    }
    if (cfg->password != NULL && redis_auth(r) < 0)
        return -1;
    if (cfg->db != 0 && redis_select(r) < 0)
        return -1;
    if (cfg->nsentinels > 0 && redis_check_role(r) < 0)
        return -1;
    return redis_load_script(r);
}

/* Writes v in decimal at p (at most REDIS_NUM_LEN - 1 bytes); returns the end. */
static char *redis_put_int(char *p, int64_t v)
{
    char tmp[REDIS_NUM_LEN];
    char *t = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--t = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--t = '-';
    memcpy(p, t, (size_t)(tmp + sizeof(tmp) - t));
    return p + (tmp + sizeof(tmp) - t);
}

/* "$LEN\r\n": the head of a bulk string of len bytes. */
static char *redis_put_bulk_head(char *p, size_t len)
{
    *p++ = '$';
    p = redis_put_int(p, (int64_t)len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static char *redis_put_crlf(char *p)
{
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* A number argument: "$LEN\r\nDIGITS\r\n". */
static char *redis_put_num(char *p, int64_t v)
{
    char digits[REDIS_NUM_LEN];
    size_t len = (size_t)(redis_put_int(digits, v) - digits);

    p = redis_put_bulk_head(p, len);
    memcpy(p, digits, len);
    return redis_put_crlf(p + len);
}

/* Builds the command's arguments from numkeys on, in RESP, into r->cmd + REDIS_HEAD_MAX (the
 * head is left for redis_send). 0, or -1 for input no key can be made of. */
static int redis_build(rl_redis *r, const rl_item *items, size_t n, int64_t now_ms)
{
    const char *prefix = r->cfg->prefix != NULL ? r->cfg->prefix : "";
    size_t plen = strlen(prefix);
    char *p = r->cmd + REDIS_HEAD_MAX;
    size_t i;

    r->nargs = (int)(1 + n + 1 + 6 * n);
    p = redis_put_num(p, (int64_t)n);
    for (i = 0; i < n; i++) {
        size_t clen = strnlen(items[i].client, RL_KEY_MAX + 1);
        size_t nlen = items[i].rule->key_id_len;
        size_t len = rl_keys_redis_len(plen, clen, nlen);

        /* Policy: a client identity longer than RL_KEY_MAX is refused (the caller falls
         * back), never truncated: two long identities must not share a bucket. */
        if (clen > RL_KEY_MAX || len >= r->keycap) {
            redis_set_error(r, "redis: key for client \"%.64s...\" is too long", items[i].client);
            return -1;
        }
        p = redis_put_bulk_head(p, len);
        p = rl_keys_redis(p, prefix, plen, items[i].client, clen, items[i].rule->key_id, nlen);
        p = redis_put_crlf(p);
    }
    p = redis_put_num(p, now_ms < 0 ? -1 : now_ms);
    for (i = 0; i < n; i++) {
        const rl_rule *rule = items[i].rule;
        int64_t max_units = rule->burst > rule->count ? rule->burst : rule->count;
        p = redis_put_num(p, (int64_t)rule->algo);
        p = redis_put_num(p, rule->count);
        p = redis_put_num(p, rule->period_ms);
        p = redis_put_num(p, rule->burst);
        /* A cost above the burst (GCRA) or count (windows) is refused with the same results
         * whatever its size; clamping it keeps cost*period exact in Lua's doubles. */
        p = redis_put_num(p, items[i].cost > max_units + 1 ? max_units + 1 : items[i].cost);
        p = redis_put_num(p, rule->dry_run ? 1 : 0);
    }
    r->cmdlen = (size_t)(p - r->cmd) - REDIS_HEAD_MAX;
    return 0;
}

/* Sends the built command, headed for how the connection runs the script (FCALL and the
 * function's name, or EVALSHA and the SHA1), and waits for the reply (redis_call). */
static rl_rio_status redis_send(rl_redis *r, redisReply **reply)
{
    char head[REDIS_HEAD_MAX], *p = head;
    const char *what = r->fcall ? "FCALL" : "EVALSHA";
    size_t hlen;

    *p++ = '*';
    p = redis_put_int(p, 2 + r->nargs);
    p = redis_put_crlf(p);
    if (r->fcall) {
        memcpy(p, REDIS_FCALL_HEAD, sizeof(REDIS_FCALL_HEAD) - 1);
        p += sizeof(REDIS_FCALL_HEAD) - 1;
        memcpy(p, rl_redis_function, RL_REDIS_FUNCTION_LEN);
        p += RL_REDIS_FUNCTION_LEN;
    } else {
        memcpy(p, REDIS_EVALSHA_HEAD, sizeof(REDIS_EVALSHA_HEAD) - 1);
        p += sizeof(REDIS_EVALSHA_HEAD) - 1;
        memcpy(p, r->sha, REDIS_SHA_LEN);
        p += REDIS_SHA_LEN;
    }
    p = redis_put_crlf(p);
    hlen = (size_t)(p - head);
    memcpy(r->cmd + REDIS_HEAD_MAX - hlen, head, hlen);
    if (redisAppendFormattedCommand(r->ctx, r->cmd + REDIS_HEAD_MAX - hlen, hlen + r->cmdlen) !=
        REDIS_OK) {
        redis_set_error(r, "redis %s: %s: out of memory", r->where, what);
        redis_fail(r);
        return RL_RIO_NOMEM;
    }
    return redis_call(r, what, reply);
}

/* With Sentinel, while connected: every RL_SENTINEL_RECHECK_MS the sentinels are asked again,
 * with half the time the call has left, and a master they no longer name is dropped (the
 * call then connects to the one they name). This is what follows a failover the connection
 * itself does not show -- a master cut off from the sentinels but not from this host keeps
 * answering as a master. A sentinel that does not answer in time changes nothing. */
static void redis_recheck_master(rl_redis *r)
{
    int64_t now = rl_clock_mono_ms();
    char host[RL_SENTINEL_HOST_MAX + 1], why[RL_ERRSTR_MAX / 2];
    int port;

    if (now - r->asked_ms < RL_SENTINEL_RECHECK_MS)
        return;
    r->asked_ms = now;
    if (rl_sentinel_master(r->cfg, now + (r->deadline - now) / 2, host, sizeof host, &port, why,
                           sizeof why) < 0)
        return;
    if (port != r->mcfg.port || strcmp(host, r->master) != 0) {
        redis_set_error(r, "redis %s: the sentinels now name %s:%d", r->where, host, port);
        redis_fail(r);
    }
}

/* Starts a call: fixes its deadline, drops a kept connection the server closed or reset
 * while it was idle, and connects when there is none. 1 when the call goes on a connection
 * kept from before (it may still turn out dead: worth one retry), 0 on a new one, -1 when
 * connecting failed (errstr set). */
static int redis_begin(rl_redis *r)
{
    int ms = r->cfg->command_timeout_ms;

    /* No timeout configured (only a hand-made config can say 0): no deadline. A cluster
     * node's call has the whole decision's. */
    if (r->given > 0)
        r->deadline = r->given;
    else
        r->deadline = ms > 0 ? rl_clock_mono_ms() + ms : INT64_MAX / 2;
    if (r->ctx != NULL && !rl_rio_alive(r->ctx))
        redis_fail(r);
    if (r->ctx != NULL && r->cfg->nsentinels > 0)
        redis_recheck_master(r);
    if (r->ctx != NULL)
        return 1;
    return redis_connect(r) < 0 ? -1 : 0;
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
    if (redis_connect(r) < 0)
        return RL_RIO_IO;
    return redis_send(r, reply);
}

int rl_redis_take_reply(const redisReply *reply, rl_item *items, size_t n, int64_t *now_ms,
                        const char *where, char *err, size_t errsize)
{
    int all = 1;
    size_t i, j;

    if (reply->type == REDIS_REPLY_ERROR) {
        char shown[256];
        snprintf(err, errsize, "redis %s: script failed: %s", where,
                 redis_printable(shown, sizeof shown, reply->str, reply->len));
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 * n + 1) {
        snprintf(err, errsize, "redis %s: script: expected an array of %zu integers (type %d)",
                 where, 4 * n + 1, reply->type);
        return -1;
    }
    for (j = 0; j < 4 * n + 1; j++) {
        const redisReply *e = reply->element[j];
        if (e == NULL || e->type != REDIS_REPLY_INTEGER || e->integer < 0 ||
            e->integer > REDIS_VALUE_MAX) {
            snprintf(err, errsize, "redis %s: script: element %zu is not an integer in range",
                     where, j);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 4 * i;
        const rl_rule *rule = items[i].rule;
        long long allowed = e[0]->integer, remaining = e[1]->integer;
        long long reset = e[2]->integer, retry = e[3]->integer;
        long long most = rule->algo == RL_ALGO_GCRA ? rule->burst : rule->count;

        /* The shapes the algorithms can produce: admitted means no wait, refused a wait >= 1
         * that is also the reset; never more left than the burst (GCRA) or count (windows). */
        if (allowed > 1 || remaining > most ||
            (allowed ? retry != 0 : retry < 1 || reset != retry)) {
            snprintf(err, errsize, "redis %s: script: inconsistent result for rule \"%s\"", where,
                     rule->name);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 4 * i;
        rl_rule_result *res = items[i].res;

        res->rule = items[i].rule;
        res->allowed = (int)e[0]->integer;
        res->limit = items[i].rule->count;
        res->window_ms = items[i].rule->period_ms;
        res->remaining = e[1]->integer;
        res->reset_ms = e[2]->integer;
        res->retry_after_ms = e[3]->integer;
        all &= res->allowed || items[i].rule->dry_run;
    }
    *now_ms = reply->element[4 * n]->integer;
    return all;
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

/* ASKING before an ASK redirect's retry, on the connection redis_begin gave (kept: 1): one
 * found dead is replaced once, as in redis_send_once_more. 0, or -1 after redis_fail. */
static int redis_asking(rl_redis *r, int kept)
{
    static const char *const argv[] = {"ASKING"};
    static const size_t argvlen[] = {6};
    redisReply *reply = redis_simple(r, "ASKING", 1, (const char **)argv, argvlen);

    if (reply == NULL && kept && r->last == RL_RIO_CLOSED && redis_connect(r) == 0)
        reply = redis_simple(r, "ASKING", 1, (const char **)argv, argvlen);
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
        redis_set_error(r, "redis: invalid batch (%zu rules)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].cost < 1) {
            redis_set_error(r, "redis: invalid batch (item %zu: cost %" PRId64 ")", i,
                            items[i].cost);
            return -1;
        }
    }
    if (redis_build(r, items, n, now_ms) < 0)
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
        if ((r->fcall ? redis_load_script(r) : redis_script_load(r)) < 0 ||
            (asking && redis_asking(r, 0) < 0) || redis_send(r, &reply) != RL_RIO_OK)
            return -1;
    }
    if (redirect != NULL && redis_cluster_error(reply)) {
        redis_printable(redirect, size, reply->str, reply->len);
        redis_set_error(r, "redis %s: %s: %s", r->where, r->fcall ? "FCALL" : "EVALSHA", redirect);
        freeReplyObject(reply);
        return RL_REDIS_REDIRECTED; /* the connection is fine */
    }
    ret = redis_take_reply(r, reply, items, n);
    freeReplyObject(reply);
    if (ret < 0)
        return redis_fail(r);
    r->errstr[0] = '\0';
    return ret;
}

int rl_redis_decide(rl_redis *r, rl_item *items, size_t n, int64_t now_ms)
{
    if (r->cluster != NULL)
        return rl_cluster_decide(r->cluster, items, n, now_ms);
    return redis_decide(r, items, n, now_ms, 0, NULL, 0);
}

size_t rl_redis_nodes(const rl_redis *r, rl_redis_node_stats *out, size_t cap)
{
    return r->cluster != NULL ? rl_cluster_nodes(r->cluster, out, cap) : 0;
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
    reply = redis_command(r, what, argc, argv, argvlen);
    if (reply == NULL && kept && r->last == RL_RIO_CLOSED && redis_connect(r) == 0)
        reply = redis_command(r, what, argc, argv, argvlen);
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
    reply = redis_simple(r, "PING", 1, (const char **)argv, argvlen);
    if (reply == NULL && kept && r->last == RL_RIO_CLOSED && redis_connect(r) == 0)
        reply = redis_simple(r, "PING", 1, (const char **)argv, argvlen);
    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    r->errstr[0] = '\0';
    return 0;
}
