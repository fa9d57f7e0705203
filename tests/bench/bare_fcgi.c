/* bare_fcgi.c -- the floor of a FastCGI hop for scripts/bench: answer 200, do nothing else
 *
 *   bare-fcgi                       every request: "Status: 200 OK" and a 3-byte body
 *   bare-fcgi --evalsha HOST:PORT   the same after one raw hiredis EVALSHA per request of a
 *                                   trivial script (one GET and one SET with PX of the key
 *                                   "bench:{REMOTE_ADDR}"): the floor of a Redis decision
 *
 * Spawned by the web server like the filter (listening socket on fd 0) and usable in either
 * role: a 200 is a full answer for a responder and "allow" for an authorizer. Nothing here is
 * part of the filter; it exists so that scripts/bench can say what the filter costs over the
 * least any FastCGI program (with or without a Redis round trip) could cost. A Redis error
 * answers 500, so a broken floor cannot pass for a fast one.
 */
#include "../../core/fmacros.h"

#include <fcgiapp.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BARE_OK "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n"
#define BARE_FAIL "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nredis\n"

static const char bare_script[] = "redis.call('GET', KEYS[1]) "
                                  "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                  "return 1";

typedef struct bare_redis {
    const char *host;
    int port;
    redisContext *c; /* NULL until the first request, and after any error */
    char sha[41];
} bare_redis;

/* Connects and loads the script. Returns 0, or -1 with nothing kept. */
static int bare_connect(bare_redis *r)
{
    struct timeval tv = {1, 0};
    redisReply *rep;

    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (r->c == NULL || r->c->err) {
        fprintf(stderr, "bare-fcgi: redis %s:%d: %s\n", r->host, r->port,
                r->c ? r->c->errstr : "out of memory");
        goto fail;
    }
    rep = redisCommand(r->c, "SCRIPT LOAD %s", bare_script);
    if (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        fprintf(stderr, "bare-fcgi: SCRIPT LOAD failed\n");
        freeReplyObject(rep);
        goto fail;
    }
    memcpy(r->sha, rep->str, 41);
    freeReplyObject(rep);
    return 0;
fail:
    redisFree(r->c);
    r->c = NULL;
    return -1;
}

/* One EVALSHA for the client addr (borrowed). Returns 0 or -1 (the connection is dropped). */
static int bare_evalsha(bare_redis *r, const char *addr)
{
    char key[128];
    redisReply *rep;
    int ok;

    if (r->c == NULL && bare_connect(r) != 0)
        return -1;
    snprintf(key, sizeof key, "bench:{%s}", addr ? addr : "-");
    rep = redisCommand(r->c, "EVALSHA %s 1 %s %s %s", r->sha, key, "1", "60000");
    ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    if (!ok) {
        fprintf(stderr, "bare-fcgi: EVALSHA failed\n");
        redisFree(r->c);
        r->c = NULL;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bare_redis redis = {NULL, 0, NULL, ""};
    int use_redis = 0;
    FCGX_Request fr;

    if (argc == 3 && strcmp(argv[1], "--evalsha") == 0) {
        char *colon = strrchr(argv[2], ':');
        if (colon == NULL || (redis.port = atoi(colon + 1)) <= 0) {
            fprintf(stderr, "bare-fcgi: --evalsha wants HOST:PORT, not \"%s\"\n", argv[2]);
            return 2;
        }
        *colon = '\0';
        redis.host = argv[2];
        use_redis = 1;
    } else if (argc != 1) {
        fprintf(stderr, "Usage: bare-fcgi [--evalsha HOST:PORT]\n");
        return 2;
    }
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0) {
        fprintf(stderr, "bare-fcgi: FCGX_Init failed\n");
        return 3;
    }
    while (FCGX_Accept_r(&fr) >= 0) {
        int ok = 1;
        if (use_redis)
            ok = bare_evalsha(&redis, FCGX_GetParam("REMOTE_ADDR", fr.envp)) == 0;
        FCGX_PutS(ok ? BARE_OK : BARE_FAIL, fr.out);
        FCGX_Finish_r(&fr);
    }
    redisFree(redis.c);
    return 0;
}
