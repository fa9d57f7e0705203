/* redis_sentinel.c -- the master's address from Redis Sentinel
 *
 * One short-lived connection per question: SENTINEL get-master-addr-by-name NAME, answered by
 * [host, port] (or nil when the sentinel does not know the name). No state is kept here: the
 * store (redis.c) asks again each time it connects, so a connection lost, a -READONLY (the
 * master was demoted) or any failure leads, at the next decision, to the address the
 * sentinels give then. Sentinels are asked in the configured order; the question shares the
 * decision's deadline, and each connect is also bounded by connect_timeout_ms. A sentinel
 * only names a master: redis.c checks ROLE on the server itself before writing to it.
 *
 * With redis.sentinel_password the question follows an AUTH (as sentinel_user when set) on
 * the same connection; a sentinel that refuses it is skipped like one that cannot be reached,
 * its reason kept without the password.
 */
#include "fmacros.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "redis_int.h" /* rl_redis_printable */
#include "redis_io.h"
#include "redis_sentinel.h"

/* AUTH on a sentinel's connection, with redis.sentinel_password (and sentinel_user). 0, or
 * -1 with err: the sentinel's message, unless it echoes the password. */
static int sentinel_auth(const rl_redis_config *cfg, redisContext *ctx, const char *addr,
                         int64_t deadline, char *err, size_t errsize)
{
    const char *pw = cfg->sentinel_password, *argv[3] = {"AUTH"};
    size_t argvlen[3] = {4};
    char why[RL_ERRSTR_MAX / 2];
    redisReply *reply = NULL;
    int argc = 1, ret = -1;

    if (cfg->sentinel_user != NULL) {
        argv[argc] = cfg->sentinel_user;
        argvlen[argc++] = strlen(cfg->sentinel_user);
    }
    argv[argc] = pw;
    argvlen[argc++] = strlen(pw);
    if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK) {
        snprintf(err, errsize, "sentinel %s: out of memory", addr);
    } else if (rl_rio_exchange(ctx, deadline, &reply, why, sizeof why) != RL_RIO_OK) {
        snprintf(err, errsize, "sentinel %s: AUTH: %s", addr, why);
    } else if (reply->type == REDIS_REPLY_STATUS) {
        ret = 0;
    } else if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, pw) == NULL) {
        char shown[256];
        snprintf(err, errsize, "sentinel %s: auth failed: %s", addr,
                 rl_redis_printable(shown, sizeof shown, reply->str, reply->len));
    } else {
        snprintf(err, errsize, "sentinel %s: auth failed", addr);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return ret;
}

/* Asks one sentinel (HOST:PORT in addr). 0 and the address, or -1 with err. */
static int sentinel_ask(const rl_redis_config *cfg, const char *addr, int64_t deadline, char *host,
                        size_t hostsize, int *port, char *err, size_t errsize)
{
    const char *colon = strrchr(addr, ':');
    char shost[RL_SENTINEL_HOST_MAX + 1], why[RL_ERRSTR_MAX / 2];
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", cfg->master_name};
    size_t argvlen[] = {8, 23, strlen(cfg->master_name)};
    rl_redis_config scfg = *cfg;
    redisContext *ctx = NULL;
    redisReply *reply = NULL;
    int ret = -1;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof shost) {
        snprintf(err, errsize, "sentinel %s: bad address", addr);
        return -1;
    }
    memcpy(shost, addr, (size_t)(colon - addr));
    shost[colon - addr] = '\0';
    scfg.host = shost;
    scfg.port = atoi(colon + 1);
    scfg.socket = NULL;
    if (rl_rio_connect(&scfg, deadline, cfg->connect_timeout_ms, &ctx, why, sizeof why) !=
        RL_RIO_OK) {
        snprintf(err, errsize, "sentinel %s: %s", addr, why);
        return -1;
    }
    if (cfg->sentinel_password != NULL &&
        sentinel_auth(cfg, ctx, addr, deadline, err, errsize) < 0) {
        /* err says why */
    } else if (redisAppendCommandArgv(ctx, 3, argv, argvlen) != REDIS_OK) {
        snprintf(err, errsize, "sentinel %s: out of memory", addr);
    } else if (rl_rio_exchange(ctx, deadline, &reply, why, sizeof why) != RL_RIO_OK) {
        snprintf(err, errsize, "sentinel %s: %s", addr, why);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        char shown[256];
        rl_redis_printable(shown, sizeof shown, reply->str, reply->len);
        snprintf(err, errsize, "sentinel %s: %s%s", addr, shown,
                 strncmp(reply->str, "NOAUTH", 6) == 0 ? " (set redis.sentinel_password)" : "");
    } else if (reply->type == REDIS_REPLY_NIL) {
        snprintf(err, errsize, "sentinel %s: no master named \"%.64s\"", addr, cfg->master_name);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
               reply->element[0]->type != REDIS_REPLY_STRING ||
               reply->element[1]->type != REDIS_REPLY_STRING || reply->element[0]->len == 0 ||
               reply->element[0]->len >= hostsize ||
               memchr(reply->element[0]->str, '\0', reply->element[0]->len) != NULL) {
        snprintf(err, errsize, "sentinel %s: unexpected answer (type %d)", addr, reply->type);
    } else {
        char *end;
        long p = strtol(reply->element[1]->str, &end, 10);
        if (*end != '\0' || p < 1 || p > 65535) {
            snprintf(err, errsize, "sentinel %s: bad port in its answer", addr);
        } else {
            memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
            *port = (int)p;
            ret = 0;
        }
    }
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(ctx);
    return ret;
}

int rl_sentinel_master(const rl_redis_config *cfg, int64_t deadline, char *host, size_t hostsize,
                       int *port, char *err, size_t errsize)
{
    snprintf(err, errsize, "no sentinel configured");
    for (size_t i = 0; i < cfg->nsentinels; i++) {
        if (i > 0 && rl_clock_mono_ms() >= deadline)
            break;
        if (sentinel_ask(cfg, cfg->sentinels[i], deadline, host, hostsize, port, err, errsize) == 0)
            return 0;
    }
    return -1;
}
