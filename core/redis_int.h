/* redis_int.h -- the Redis store's handle, shared by its three files (internal)
 *
 * redis.c runs a call (deadline, kept connection, send, retry, redirects), redis_connect.c
 * makes a connection ready (connect, AUTH, SELECT, ROLE, script load), redis_wire.c writes the
 * decision command in RESP and checks the script's reply. The handle is connected (ctx != NULL:
 * AUTH, SELECT and the load done, sha valid) or not (ctx == NULL: the next call connects).
 */
#ifndef RL_REDIS_INT_H
#define RL_REDIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "backend.h"
#include "redis_cluster.h"
#include "redis_io.h"
#include "redis_script.h"
#include "redis_sentinel.h"
#include "stats.h"

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
    int64_t asked_ms; /* monotonic ms the sentinels were last asked */
    /* The pool's statistics (borrowed; NULL: not counted) and, with Sentinel, the row of the
     * master named rowaddr, the last the sentinels named (-1: none, or not counted). */
    rl_stats_seg *stats;
    int row;
    char rowaddr[RL_SENTINEL_HOST_MAX + 16];
    rl_rio_status last;                    /* how the last exchange ended */
    char where[RL_SENTINEL_HOST_MAX + 16]; /* "127.0.0.1:6379" or "unix:/path", for messages */
    char errstr[RL_ERRSTR_MAX];

    /* Per-request scratch, owned: the command in RESP, its arguments after the numkeys
     * (nargs of them, cmdlen bytes) from cmd + REDIS_HEAD_MAX; redis_send puts the head
     * just before them. */
    char *cmd;
    size_t cmdlen;
    int nargs;
    size_t keycap;      /* the longest key + its NUL: prefix "{" client "}:" rule */
    const char *prefix; /* cfg->prefix, "" for none, and its length: found once, at rl_redis_new */
    size_t plen;
};

/* Sets r->errstr (redis.c). */
RL_PRINTF(2, 3) void rl_redis_seterr(rl_redis *r, const char *fmt, ...);
/* The connection failed: drops it (never reuse a context in error); errstr is already set.
 * Always returns -1 (redis.c). */
int rl_redis_fail(rl_redis *r);
/* Runs argv[0..argc) by the call's deadline: the reply (the caller frees it) or NULL after
 * rl_redis_fail; rl_redis_simple also wants a status or a string (redis.c). */
redisReply *rl_redis_command(rl_redis *r, const char *what, int argc, const char **argv,
                             const size_t *argvlen);
redisReply *rl_redis_simple(rl_redis *r, const char *what, int argc, const char **argv,
                            const size_t *argvlen);

/* Connects by the call's deadline and readies the connection: 0, or -1 (errstr set). The
 * loads: 0, or -1 after rl_redis_fail. The recheck drops a master the sentinels no longer
 * name (redis_connect.c). */
int rl_redis_connect(rl_redis *r);
int rl_redis_load_script(rl_redis *r);
int rl_redis_script_load(rl_redis *r);
void rl_redis_recheck_master(rl_redis *r);

/* A server's text made printable into dst (\xHH for the rest): dst. The decision's
 * arguments into r->cmd + REDIS_HEAD_MAX: 0, or -1 for input no key can be made of. The
 * head before them: its length (redis_wire.c). */
const char *rl_redis_printable(char *dst, size_t size, const char *src, size_t len);
int rl_redis_build(rl_redis *r, const rl_item *items, size_t n, int64_t now_ms);
size_t rl_redis_put_head(rl_redis *r);

#endif
