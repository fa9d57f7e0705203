/* redis_io.c -- Redis exchanges against one deadline, with replies of bounded size
 *
 * hiredis' blocking calls time out per read(): a server that sends its reply one byte every
 * 30 ms under a 50 ms timeout holds the caller for as long as it likes. Here the context is
 * non-blocking (redisConnectNonBlock) and every wait is a poll() for the time left until one
 * absolute deadline (CLOCK_MONOTONIC ms) the caller fixed when its decision began, so a
 * decision's connect, AUTH, SELECT, SCRIPT LOAD, EVALSHA and retries together end by it,
 * whatever the server does.
 *
 * Bytes are read here, not by redisBufferRead, so that each reply's byte count is known before
 * anything is fed to the reader: a reply larger than RL_RIO_BYTES_MAX is refused without being
 * buffered. Arrays and strings are checked as hiredis announces them, through reply object
 * functions (rl_rio_bounded_fns) that refuse a count or length past the bounds and otherwise
 * call hiredis' own: an "*2147483647" is refused before hiredis allocates its 16 GiB of
 * pointers. They are installed on the context's reader for one exchange and taken off after,
 * so the context always holds hiredis' functions when it is freed.
 *
 * Invariant: one exchange is one command and one reply; bytes beyond the reply are a protocol
 * error (RESP2 servers send nothing unasked). After any status but RL_RIO_OK the context is
 * left in an unknown state and the caller must free it.
 */
#include "fmacros.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "redis_io.h"
#include "clock.h"
#include "error.h"

/* ---- bounded reply objects ---- */

static rl_rio_bound *rio_bound(const redisReadTask *task)
{
    return task->privdata;
}

static void *rio_create_string(const redisReadTask *task, char *str, size_t len)
{
    rl_rio_bound *b = rio_bound(task);

    if (len > RL_RIO_STRING_MAX) {
        snprintf(b->why, sizeof b->why, "a string of %zu bytes (at most %d)", len,
                 RL_RIO_STRING_MAX);
        return NULL;
    }
    return b->dflt->createString(task, str, len);
}

static void *rio_create_array(const redisReadTask *task, int elements)
{
    rl_rio_bound *b = rio_bound(task);

    int max = b->map ? RL_RIO_MAP_ELEMENTS : RL_RIO_ELEMENTS_MAX;
    int depth = 0;

    for (const redisReadTask *t = task->parent; t != NULL; t = t->parent)
        depth++;
    /* No command of a decision is answered with nested arrays; a slot map is, this deep. */
    if (depth > (b->map ? RL_RIO_MAP_DEPTH - 1 : 0)) {
        snprintf(b->why, sizeof b->why, "a nested array");
        return NULL;
    }
    if (elements > max) {
        snprintf(b->why, sizeof b->why, "an array of %d elements (at most %d)", elements, max);
        return NULL;
    }
    return b->dflt->createArray(task, elements);
}

static void *rio_create_integer(const redisReadTask *task, long long value)
{
    return rio_bound(task)->dflt->createInteger(task, value);
}

static void *rio_create_nil(const redisReadTask *task)
{
    return rio_bound(task)->dflt->createNil(task);
}

redisReplyObjectFunctions rl_rio_bounded_fns = {
    rio_create_string, rio_create_array, rio_create_integer, rio_create_nil, freeReplyObject,
};

/* ---- waiting ---- */

/* Waits until fd has one of `events` or the deadline passes: 1 ready, 0 timed out, -1 error
 * (errno). Interrupted polls wait again for what is left. */
static int rio_wait(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};

    for (;;) {
        int64_t left = deadline - rl_clock_mono_ms();
        int n;

        if (left <= 0)
            return 0;
        n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

RL_PRINTF(3, 4)
static void rio_err(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rl_errbuf_vset(err, errsize, fmt, ap);
    va_end(ap);
}

/* ---- connect ---- */

rl_rio_status rl_rio_connect(const rl_redis_config *cfg, int64_t deadline, int connect_ms,
                             redisContext **out, char *err, size_t errsize)
{
    int64_t until = deadline;
    redisContext *c;
    int so_err = 0, w;
    socklen_t len = sizeof so_err;

    *out = NULL;
    if (connect_ms > 0 && rl_clock_mono_ms() + connect_ms < until)
        until = rl_clock_mono_ms() + connect_ms;
    c = cfg->socket != NULL
            ? redisConnectUnixNonBlock(cfg->socket)
            : redisConnectNonBlock(cfg->host != NULL ? cfg->host : "127.0.0.1", cfg->port);
    if (c == NULL) {
        rio_err(err, errsize, "connect: out of memory");
        return RL_RIO_NOMEM;
    }
    if (c->err) { /* refused at once, no such socket, no such host */
        rio_err(err, errsize, "connect: %s", c->errstr[0] ? c->errstr : "connection error");
        redisFree(c);
        return RL_RIO_IO;
    }
    /* Writable once the connect has finished, either way; SO_ERROR says which. */
    w = rio_wait(c->fd, POLLOUT, until);
    if (w == 0) {
        rio_err(err, errsize, "connect: timed out");
        redisFree(c);
        return RL_RIO_TIMEOUT;
    }
    if (w < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_err, &len) < 0 || so_err != 0) {
        rio_err(err, errsize, "connect: %s", strerror(w < 0 || so_err == 0 ? errno : so_err));
        redisFree(c);
        return RL_RIO_IO;
    }
    *out = c;
    return RL_RIO_OK;
}

/* ---- one exchange ---- */

/* Writes the whole output buffer by the deadline. */
static rl_rio_status rio_write(redisContext *c, int64_t deadline, char *err, size_t errsize)
{
    for (;;) {
        int done = 0, w;

        if (redisBufferWrite(c, &done) != REDIS_OK) {
            int e = errno;
            rio_err(err, errsize, "%s", c->errstr[0] ? c->errstr : "write error");
            /* Nothing of the reply can have come: a reset here is a connection found dead. */
            return e == EPIPE || e == ECONNRESET ? RL_RIO_CLOSED : RL_RIO_IO;
        }
        if (done)
            return RL_RIO_OK;
        w = rio_wait(c->fd, POLLOUT, deadline);
        if (w <= 0) {
            rio_err(err, errsize, "%s", w == 0 ? "timed out" : strerror(errno));
            return w == 0 ? RL_RIO_TIMEOUT : RL_RIO_IO;
        }
    }
}

/* Reads until the reader holds one whole reply, by the deadline and within the bounds. */
static rl_rio_status rio_read(redisContext *c, rl_rio_bound *b, int64_t deadline,
                              redisReply **reply, char *err, size_t errsize)
{
    size_t got = 0, most = b->map ? RL_RIO_MAP_BYTES : RL_RIO_BYTES_MAX;
    char buf[4096];

    for (;;) {
        void *obj = NULL;
        ssize_t n;
        size_t want;
        int w;

        if (redisGetReplyFromReader(c, &obj) != REDIS_OK) {
            if (b->why[0] != '\0')
                rio_err(err, errsize, "reply refused: %s", b->why);
            else
                rio_err(err, errsize, "protocol error: %s", c->errstr);
            return b->why[0] == '\0' && c->err == REDIS_ERR_OOM ? RL_RIO_NOMEM : RL_RIO_PROTOCOL;
        }
        if (obj != NULL) {
            if (c->reader->pos < c->reader->len) {
                freeReplyObject(obj);
                rio_err(err, errsize, "protocol error: %zu bytes after the reply",
                        c->reader->len - c->reader->pos);
                return RL_RIO_PROTOCOL;
            }
            *reply = obj;
            return RL_RIO_OK;
        }
        w = rio_wait(c->fd, POLLIN, deadline);
        if (w <= 0) {
            if (w == 0)
                rio_err(err, errsize, "timed out (%zu bytes of the reply came)", got);
            else
                rio_err(err, errsize, "%s", strerror(errno));
            return w == 0 ? RL_RIO_TIMEOUT : RL_RIO_IO;
        }
        /* One byte more than the bound tells a reply over it from one just at it. */
        want = most + 1 - got;
        n = read(c->fd, buf, want < sizeof buf ? want : sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            if (got == 0 && (n == 0 || e == ECONNRESET)) {
                rio_err(err, errsize, "%s", n == 0 ? "server closed the connection" : strerror(e));
                return RL_RIO_CLOSED;
            }
            rio_err(err, errsize, "%s after %zu bytes of the reply",
                    n == 0 ? "server closed the connection" : strerror(e), got);
            return RL_RIO_IO;
        }
        got += (size_t)n;
        if (got > most) {
            rio_err(err, errsize, "reply refused: more than %zu bytes", most);
            return RL_RIO_PROTOCOL;
        }
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            rio_err(err, errsize, "out of memory");
            return RL_RIO_NOMEM;
        }
    }
}

static rl_rio_status rio_exchange(redisContext *c, int map, int64_t deadline, redisReply **reply,
                                  char *err, size_t errsize)
{
    rl_rio_bound b = {.dflt = c->reader->fn, .map = map};
    rl_rio_status st;

    *reply = NULL;
    st = rio_write(c, deadline, err, errsize);
    if (st != RL_RIO_OK)
        return st;
    c->reader->fn = &rl_rio_bounded_fns;
    c->reader->privdata = &b;
    st = rio_read(c, &b, deadline, reply, err, errsize);
    c->reader->fn = b.dflt;
    c->reader->privdata = NULL;
    return st;
}

rl_rio_status rl_rio_exchange(redisContext *c, int64_t deadline, redisReply **reply, char *err,
                              size_t errsize)
{
    return rio_exchange(c, 0, deadline, reply, err, errsize);
}

rl_rio_status rl_rio_exchange_map(redisContext *c, int64_t deadline, redisReply **reply, char *err,
                                  size_t errsize)
{
    return rio_exchange(c, 1, deadline, reply, err, errsize);
}

int rl_rio_alive(const redisContext *c)
{
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    /* Nothing to read is what a live idle connection looks like; EOF, a reset, or bytes
     * nobody asked for make it no connection to send a decision on. */
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}
