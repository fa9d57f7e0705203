/* redis_connect.c -- making a Redis connection ready for decisions
 *
 * Connect (with Sentinel: ask the sentinels for the master first), AUTH, SELECT, ROLE (with
 * Sentinel: never write to a replica), then load the script: FUNCTION LOAD REPLACE of the
 * library named after the script's SHA1 (FCALL per decision), or, where the server refuses
 * that (Redis < 7, an ACL without +function), SCRIPT LOAD (EVALSHA). r->fcall says which.
 * Every step runs by the call's one deadline (redis.c); any failure leaves the handle
 * unconnected with errstr set.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "redis_int.h"

/* SCRIPT LOAD: keeps the script's SHA1 for EVALSHA, which must be the one computed at build
 * (redis_script.h): another would mean the server ran other text. 0, or -1 after rl_redis_fail. */
int rl_redis_script_load(rl_redis *r)
{
    const char *argv[] = {"SCRIPT", "LOAD", rl_redis_script};
    size_t argvlen[] = {6, 4, rl_redis_script_len};
    redisReply *reply = rl_redis_simple(r, "SCRIPT LOAD", 3, argv, argvlen);

    r->fcall = 0;
    if (reply == NULL)
        return -1;
    if (reply->type != REDIS_REPLY_STRING || reply->len != REDIS_SHA_LEN) {
        rl_redis_seterr(r, "redis %s: SCRIPT LOAD: unexpected reply", r->where);
        freeReplyObject(reply);
        return rl_redis_fail(r);
    }
    if (memcmp(reply->str, rl_redis_script_sha, REDIS_SHA_LEN) != 0) {
        char shown[REDIS_SHA_LEN * 4 + 1];
        rl_redis_seterr(r, "redis %s: SCRIPT LOAD: digest %s, expected %s", r->where,
                        rl_redis_printable(shown, sizeof shown, reply->str, reply->len),
                        rl_redis_script_sha);
        freeReplyObject(reply);
        return rl_redis_fail(r);
    }
    memcpy(r->sha, reply->str, REDIS_SHA_LEN);
    r->sha[REDIS_SHA_LEN] = '\0';
    freeReplyObject(reply);
    return 0;
}

/* Loads the script: FUNCTION LOAD REPLACE of the library (REPLACE: a library of this name
 * holds this very text, so replacing it changes nothing, and a second load is no error), or,
 * when the server answers that with an error, SCRIPT LOAD. 0, or -1 after rl_redis_fail. */
int rl_redis_load_script(rl_redis *r)
{
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", rl_redis_library};
    size_t argvlen[] = {8, 4, 7, rl_redis_library_len};
    redisReply *reply = rl_redis_command(r, "FUNCTION LOAD", 4, argv, argvlen);
    size_t nlen = RL_REDIS_FUNCTION_LEN;

    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Redis < 7 ("unknown command"), or an ACL that does not allow it: the connection
         * is fine, and EVALSHA does the same work. */
        freeReplyObject(reply);
        return rl_redis_script_load(r);
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len != nlen ||
        memcmp(reply->str, rl_redis_function, nlen) != 0) {
        char shown[128];
        rl_redis_seterr(r, "redis %s: FUNCTION LOAD: unexpected reply%s%s", r->where,
                        reply->type == REDIS_REPLY_STRING ? " " : "",
                        reply->type == REDIS_REPLY_STRING
                            ? rl_redis_printable(shown, sizeof shown, reply->str, reply->len)
                            : "");
        freeReplyObject(reply);
        return rl_redis_fail(r);
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
    reply = rl_redis_command(r, "AUTH", argc, argv, argvlen);
    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_STATUS) {
        freeReplyObject(reply);
        return 0;
    }
    char shown[256];
    if (reply->type == REDIS_REPLY_ERROR && pw[0] != '\0' && strstr(reply->str, pw) == NULL)
        rl_redis_seterr(r, "redis %s: auth failed: %s", r->where,
                        rl_redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        rl_redis_seterr(r, "redis %s: auth failed", r->where);
    freeReplyObject(reply);
    return rl_redis_fail(r);
}

static int redis_select(rl_redis *r)
{
    char db[REDIS_NUM_LEN];
    const char *argv[] = {"SELECT", db};
    size_t argvlen[2] = {6, 0};
    redisReply *reply;

    argvlen[1] = (size_t)snprintf(db, sizeof(db), "%d", r->cfg->db);
    reply = rl_redis_simple(r, "SELECT", 2, argv, argvlen);
    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    return 0;
}

/* With Sentinel: ROLE must say "master" before anything is written (a sentinel's answer
 * may be stale: a demoted master, a replica not yet promoted). 0, or -1 after rl_redis_fail. */
static int redis_check_role(rl_redis *r)
{
    static const char *const argv[] = {"ROLE"};
    static const size_t argvlen[] = {4};
    redisReply *reply;
    char shown[64];

    r->map = 1; /* a master's ROLE lists its replicas in nested arrays */
    reply = rl_redis_command(r, "ROLE", 1, (const char **)argv, argvlen);
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
        rl_redis_seterr(r, "redis %s: ROLE: \"%s\", not the master: not written to", r->where,
                        rl_redis_printable(shown, sizeof shown, reply->element[0]->str,
                                           reply->element[0]->len));
    else if (reply->type == REDIS_REPLY_ERROR)
        rl_redis_seterr(r, "redis %s: ROLE failed: %s", r->where,
                        rl_redis_printable(shown, sizeof shown, reply->str, reply->len));
    else
        rl_redis_seterr(r, "redis %s: ROLE: unexpected reply type %d", r->where, reply->type);
    freeReplyObject(reply);
    return rl_redis_fail(r);
}

/* With Sentinel: the master's address, asked again at every connect (redis_sentinel.c). 0,
 * or -1 (errstr set). */
static int redis_find_master(rl_redis *r)
{
    char why[RL_ERRSTR_MAX / 2];
    int port;

    if (rl_sentinel_master(r->cfg, r->deadline, r->master, sizeof r->master, &port, why,
                           sizeof why) < 0) {
        rl_redis_seterr(r, "redis master \"%.64s\": %s", r->cfg->master_name, why);
        return -1;
    }
    r->mcfg = *r->cfg;
    r->mcfg.host = r->master;
    r->mcfg.port = port;
    r->asked_ms = rl_clock_mono_ms();
    snprintf(r->where, sizeof(r->where), "%s:%d", r->master, port);
    if (r->stats != NULL && strcmp(r->where, r->rowaddr) != 0) {
        /* A master not met before by this process: its row, claimed once per address. */
        r->row = rl_stats_node(r->stats, r->where, RL_STAT_NODE_SENTINEL);
        snprintf(r->rowaddr, sizeof r->rowaddr, "%s", r->where);
    }
    return 0;
}

/* Connects, by the call's deadline. 0 when connected, -1 otherwise (errstr set). */
int rl_redis_connect(rl_redis *r)
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
        rl_redis_seterr(r, "redis %s: %s", r->where, why);
        return -1;
    }
    if (cfg->password != NULL && redis_auth(r) < 0)
        return -1;
    if (cfg->db != 0 && redis_select(r) < 0)
        return -1;
    if (cfg->nsentinels > 0) {
        if (redis_check_role(r) < 0)
            return -1;
        rl_stats_node_master(r->stats, r->row); /* a failover, when it is another */
    }
    return rl_redis_load_script(r);
}

/* With Sentinel, while connected: every RL_SENTINEL_RECHECK_MS the sentinels are asked again,
 * with half the time the call has left, and a master they no longer name is dropped (the
 * call then connects to the one they name). This is what follows a failover the connection
 * itself does not show -- a master cut off from the sentinels but not from this host keeps
 * answering as a master. A sentinel that does not answer in time changes nothing. */
void rl_redis_recheck_master(rl_redis *r)
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
        rl_redis_seterr(r, "redis %s: the sentinels now name %s:%d", r->where, host, port);
        rl_redis_fail(r);
    }
}
