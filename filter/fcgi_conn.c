/* fcgi_conn.c -- one FastCGI connection (see fcgi_conn.h)
 *
 * Invariants: rbuf[roff..rlen) are bytes not yet given to the parser; the socket is read only
 * when all were given (roff == rlen, then both are reset to 0). obuf[ooff..olen) is output
 * not yet sent; open_rec is a STDOUT record none of whose bytes were sent yet, so its length
 * may still grow (any flush closes it). A request is active while id != 0: from its
 * FCGI_BEGIN_REQUEST until it was answered and its FCGI_STDIN ended (or the connection died).
 */
#include "../core/fmacros.h"

#include "fcgi_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "clock.h"
#include "grow.h"

typedef enum conn_mode {
    CONN_PUMP, /* the server loop: stop when a request is ready */
    CONN_READ, /* an answer reading its body: stop when some arrived */
} conn_mode;

void fcgi_conn_set_state(fcgi_conn *c, fcgi_conn_state st, int64_t now)
{
    c->state = st;
    c->since = now;
    c->deadline = now + (st == FCGI_CONN_IDLE ? c->idle_ms : c->read_ms);
}

/* The last closed connection, kept with its buffers for the next one: a web server that opens
 * a connection per request (lighttpd) made us allocate and free a connection, its read,
 * parameter and output buffers for each, 1,900 instructions per request under callgrind. Its
 * buffers are no larger than a connection keeps between two requests. */
static fcgi_conn *conn_spare;

fcgi_conn *fcgi_conn_new(int fd, int read_ms, int idle_ms, int max_conns, int64_t now)
{
    fcgi_conn *c = conn_spare;

    if (c != NULL) {
        uint8_t *rbuf = c->rbuf, *pbuf = c->pbuf, *obuf = c->obuf;
        size_t pcap = c->pcap, ocap = c->ocap;
        conn_spare = NULL;
        memset(c, 0, sizeof *c);
        c->rbuf = rbuf;
        c->pbuf = pbuf;
        c->pcap = pcap;
        c->obuf = obuf;
        c->ocap = ocap;
    } else {
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return NULL;
        c->rbuf = malloc(FCGI_CONN_RBUF);
        if (c->rbuf == NULL) {
            free(c);
            return NULL;
        }
    }
    c->fd = fd;
    c->read_ms = read_ms;
    c->idle_ms = idle_ms;
    c->max_conns = max_conns;
    c->open_rec = SIZE_MAX;
    fcgi_conn_set_state(c, FCGI_CONN_READING, now);
    return c;
}

static void conn_destroy(fcgi_conn *c)
{
    free(c->rbuf);
    free(c->pbuf);
    free(c->obuf);
    free(c);
}

void fcgi_conn_free(fcgi_conn *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (conn_spare == NULL && c->pcap <= FCGI_CONN_RBUF && c->ocap <= 2 * FCGI_CONN_OUT_HIGH) {
        conn_spare = c;
        return;
    }
    conn_destroy(c);
}

long fcgi_conn_fill(fcgi_conn *c)
{
    ssize_t n;

    if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
    if (c->rlen == FCGI_CONN_RBUF)
        return -1; /* cannot happen: the socket is read only when every byte was used */
    do
        n = read(c->fd, c->rbuf + c->rlen, FCGI_CONN_RBUF - c->rlen);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            c->broken = 1;
        return -1;
    }
    if (n == 0) {
        c->eof = 1;
        return 0;
    }
    c->rlen += (size_t)n;
    if (c->state == FCGI_CONN_IDLE)
        fcgi_conn_set_state(c, FCGI_CONN_READING, rl_clock_mono_ms());
    return n;
}

/* Waits up to read_ms for the socket to become readable or writable. 0, or -1 (broken). */
static int conn_wait(fcgi_conn *c, short what)
{
    struct pollfd p = {.fd = c->fd, .events = what};
    int n;

    do
        n = poll(&p, 1, c->read_ms);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        c->broken = 1;
        return -1;
    }
    return 0;
}

/* ---- output -------------------------------------------------------------------------------- */

static int conn_reserve(fcgi_conn *c, size_t more)
{
    if (c->ooff == c->olen && c->open_rec == SIZE_MAX)
        c->ooff = c->olen = 0;
    uint8_t *p = grow_to(c->obuf, &c->ocap, c->olen + more);
    if (p == NULL) {
        c->broken = 1;
        return -1;
    }
    c->obuf = p;
    return 0;
}

/* Appends a whole record (or a record header). Whatever follows is no longer part of the open
 * STDOUT record: the caller that writes a STDOUT header reopens it. */
static int conn_out(fcgi_conn *c, const uint8_t *p, size_t n)
{
    c->open_rec = SIZE_MAX;
    if (conn_reserve(c, n) != 0)
        return -1;
    memcpy(c->obuf + c->olen, p, n);
    c->olen += n;
    return 0;
}

int fcgi_conn_flush(fcgi_conn *c, int wait)
{
    c->open_rec = SIZE_MAX; /* its head may go out now: it cannot grow any more */
    while (c->ooff < c->olen) {
        ssize_t n = write(c->fd, c->obuf + c->ooff, c->olen - c->ooff);
        if (n > 0) {
            c->ooff += (size_t)n;
            /* moved while the loop waits for output: its wait starts anew, for the rest or
             * for the next pipelined answer (srv_interest only sets it when the wait begins) */
            if (c->want_out)
                c->wdeadline = rl_clock_mono_ms() + c->read_ms;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait)
                return 1;
            if (conn_wait(c, POLLOUT) == 0)
                continue;
        }
        c->broken = 1;
        return -1;
    }
    c->ooff = c->olen = 0;
    if (c->ocap > 2 * FCGI_CONN_OUT_HIGH) { /* a large answer's room is not kept */
        free(c->obuf);
        c->obuf = NULL;
        c->ocap = 0;
    }
    return 0;
}

int fcgi_conn_write_stdout(void *ud, const char *buf, int n)
{
    fcgi_conn *c = ud;
    uint8_t hdr[FCGI_HEADER_LEN];

    if (c->broken)
        return -1;
    while (n > 0) {
        if (c->open_rec != SIZE_MAX) { /* grow the open record as far as it can */
            uint8_t *h = c->obuf + c->open_rec;
            size_t have = (size_t)h[4] << 8 | h[5];
            size_t take = FCGI_CONTENT_MAX - have < (size_t)n ? FCGI_CONTENT_MAX - have : (size_t)n;
            if (take > 0) {
                if (conn_reserve(c, take) != 0)
                    return -1;
                h = c->obuf + c->open_rec;
                memcpy(c->obuf + c->olen, buf, take);
                c->olen += take;
                h[4] = (uint8_t)((have + take) >> 8);
                h[5] = (uint8_t)(have + take);
                buf += take;
                n -= (int)take;
                continue;
            }
            c->open_rec = SIZE_MAX;
        }
        if (c->olen - c->ooff >= FCGI_CONN_OUT_HIGH && fcgi_conn_flush(c, 1) != 0)
            return -1;
        fcgi_header(hdr, FCGI_STDOUT, c->id, 0);
        if (conn_out(c, hdr, sizeof hdr) != 0)
            return -1;
        c->open_rec = c->olen - FCGI_HEADER_LEN;
    }
    return 0;
}

static void conn_end_record(fcgi_conn *c, unsigned id, int protocol_status)
{
    uint8_t rec[16];
    fcgi_end_request(rec, id, 0, protocol_status);
    conn_out(c, rec, sizeof rec);
}

/* ---- input --------------------------------------------------------------------------------- */

/* The request is over (answered and its body read): the next one may come. */
static fcgi_step conn_finish(fcgi_conn *c)
{
    int keep = c->keep;

    c->id = 0;
    c->plen = 0;
    if (c->pcap > FCGI_CONN_RBUF) { /* a large parameter block is not kept around */
        free(c->pbuf);
        c->pbuf = NULL;
        c->pcap = 0;
    }
    if (!keep) {
        c->closing = 1;
        return FCGI_STEP_CLOSE;
    }
    fcgi_conn_set_state(c, FCGI_CONN_IDLE, rl_clock_mono_ms());
    return FCGI_STEP_MORE;
}

static void conn_params(fcgi_conn *c, const uint8_t *p, size_t n)
{
    if (c->params_over || c->plen + n > FCGI_PARAMS_MAX) {
        c->params_over = 1;
        return;
    }
    uint8_t *q = grow_to(c->pbuf, &c->pcap, c->plen + n);
    if (q == NULL) {
        c->params_over = 1;
        return;
    }
    c->pbuf = q;
    memcpy(c->pbuf + c->plen, p, n);
    c->plen += n;
}

static void conn_content(fcgi_conn *c, const uint8_t *p, size_t n, conn_mode mode, uint8_t *sink,
                         size_t *got)
{
    const fcgi_parser *ps = &c->parser;

    if (ps->type == FCGI_PARAMS && ps->id == c->id && c->id != 0 && !c->params_done) {
        conn_params(c, p, n);
    } else if (ps->type == FCGI_STDIN && ps->id == c->id && c->id != 0) {
        if (mode == CONN_READ && !c->answered) {
            memcpy(sink + *got, p, n);
            *got += n;
        } /* else: the body of an answered request, discarded */
    } else if (ps->type != FCGI_PARAMS && ps->type != FCGI_STDIN) {
        size_t room = sizeof c->small - c->small_len;
        size_t take = n < room ? n : room;
        memcpy(c->small + c->small_len, p, take);
        c->small_len += take;
    }
}

static fcgi_step conn_begin(fcgi_conn *c)
{
    const fcgi_parser *ps = &c->parser;
    int role, flags;

    if (ps->id == 0 || ps->content_len != 8 || ps->id == c->id)
        return FCGI_STEP_CLOSE; /* not a request a web server could mean */
    role = c->small[0] << 8 | c->small[1];
    flags = c->small[2];
    if (c->id != 0) { /* one request at a time (FCGI_MPXS_CONNS is 0) */
        conn_end_record(c, ps->id, FCGI_CANT_MPX_CONN);
        return FCGI_STEP_MORE;
    }
    if (role != FCGI_RESPONDER && role != FCGI_AUTHORIZER) {
        conn_end_record(c, ps->id, FCGI_UNKNOWN_ROLE);
        if (!(flags & FCGI_KEEP_CONN)) {
            c->closing = 1;
            return FCGI_STEP_CLOSE;
        }
        return FCGI_STEP_MORE;
    }
    c->id = ps->id;
    c->role = role;
    c->keep = flags & FCGI_KEEP_CONN;
    c->plen = 0;
    c->params_done = c->params_over = c->stdin_done = c->answered = c->aborted = 0;
    if (c->state != FCGI_CONN_READING)
        fcgi_conn_set_state(c, FCGI_CONN_READING, rl_clock_mono_ms());
    return FCGI_STEP_MORE;
}

static fcgi_step conn_record_end(fcgi_conn *c)
{
    const fcgi_parser *ps = &c->parser;
    int mine = c->id != 0 && ps->id == c->id;

    switch (ps->type) {
    case FCGI_BEGIN_REQUEST: return conn_begin(c);
    case FCGI_ABORT_REQUEST:
        if (!mine || c->answered)
            return FCGI_STEP_MORE;
        if (c->params_done) { /* being answered: its body reads fail, the answer is cut */
            c->aborted = 1;
            return FCGI_STEP_MORE;
        }
        conn_end_record(c, c->id, FCGI_REQUEST_COMPLETE);
        return conn_finish(c);
    case FCGI_PARAMS:
        if (mine && ps->content_len == 0)
            c->params_done = 1;
        return FCGI_STEP_MORE;
    case FCGI_STDIN:
        if (mine && ps->content_len == 0) {
            c->stdin_done = 1;
            if (c->answered)
                return conn_finish(c);
        }
        return FCGI_STEP_MORE;
    case FCGI_GET_VALUES:
        if (ps->id == 0) {
            uint8_t out[256];
            conn_out(c, out,
                     fcgi_values_result(out, sizeof out, c->small, c->small_len, c->max_conns));
        }
        return FCGI_STEP_MORE;
    default:
        if (ps->id == 0 && (ps->type < FCGI_BEGIN_REQUEST || ps->type > FCGI_UNKNOWN_TYPE)) {
            uint8_t out[16];
            fcgi_unknown_type(out, ps->type);
            conn_out(c, out, sizeof out);
        }
        return FCGI_STEP_MORE; /* records only an application sends, DATA: ignored */
    }
}

/* Whether the raw bytes buffered after a request's parameters (rbuf[roff..rlen), which start at
 * a record boundary) hold its whole body -- up to its empty FCGI_STDIN record -- or anything
 * else the answer must see first (another record type: an abort, a second request...). Only
 * looks; the answer parses them. */
static int conn_body_buffered(const fcgi_conn *c)
{
    size_t off = c->roff;

    while (c->rlen - off >= FCGI_HEADER_LEN) {
        const uint8_t *h = c->rbuf + off;
        unsigned type = h[1], id = (unsigned)h[2] << 8 | h[3];
        size_t clen = (size_t)h[4] << 8 | h[5], rec = FCGI_HEADER_LEN + clen + h[6];
        if (type != FCGI_STDIN || id != c->id || clen == 0)
            return 1;
        if (c->rlen - off < rec)
            return 0;
        off += rec;
    }
    return 0;
}

/* A request is ready to answer once its parameters are complete and, for a responder, its
 * body is buffered whole or fills the read buffer: a body of up to FCGI_CONN_RBUF bytes that
 * trickles in is waited for here, in the server loop, under the request's read deadline,
 * rather than by the answer, which would hold the whole process (and every other connection
 * it has) for as long. A larger body is streamed by the answer. */
static int conn_ready(fcgi_conn *c)
{
    if (c->role == FCGI_AUTHORIZER || c->stdin_done || conn_body_buffered(c))
        return 1;
    if (c->roff > 0) { /* keep the body's bytes, make room for more */
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    return c->rlen == FCGI_CONN_RBUF;
}

/* Gives the buffered bytes to the parser until an event the mode stops at. In CONN_READ, body
 * bytes go to sink (room for cap, *got so far). */
static fcgi_step conn_records(fcgi_conn *c, conn_mode mode, uint8_t *sink, size_t cap, size_t *got)
{
    for (;;) {
        size_t avail = c->rlen - c->roff, len = 0, used;
        const uint8_t *data = NULL;
        fcgi_parser *ps = &c->parser;
        fcgi_ev ev;

        if (mode == CONN_PUMP && c->id != 0 && c->params_done && !c->answered)
            return conn_ready(c) ? FCGI_STEP_READY : FCGI_STEP_MORE;
        if (mode == CONN_READ && (*got > 0 || c->stdin_done || c->aborted))
            return FCGI_STEP_MORE;
        if (mode == CONN_READ && ps->mid_record && ps->content_left > 0 && ps->type == FCGI_STDIN &&
            ps->id == c->id && avail > cap - *got)
            avail = cap - *got;
        used = fcgi_parse(ps, c->rbuf + c->roff, avail, &ev, &data, &len);
        c->roff += used;
        switch (ev) {
        case FCGI_EV_NONE: return FCGI_STEP_MORE;
        case FCGI_EV_BAD: return FCGI_STEP_CLOSE;
        case FCGI_EV_HEADER: c->small_len = 0; break;
        case FCGI_EV_CONTENT: conn_content(c, data, len, mode, sink, got); break;
        case FCGI_EV_END: {
            fcgi_step st = conn_record_end(c);
            if (st != FCGI_STEP_MORE)
                return st;
            break;
        }
        }
        if (c->broken)
            return FCGI_STEP_CLOSE;
    }
}

fcgi_step fcgi_conn_step(fcgi_conn *c)
{
    return conn_records(c, CONN_PUMP, NULL, 0, NULL);
}

int fcgi_conn_read_stdin(void *ud, char *buf, int n)
{
    fcgi_conn *c = ud;
    size_t got = 0;

    if (n <= 0)
        return 0;
    for (;;) {
        if (c->broken || c->aborted)
            return -1;
        fcgi_step st = conn_records(c, CONN_READ, (uint8_t *)buf, (size_t)n, &got);
        if (got > 0)
            return (int)got;
        if (c->stdin_done)
            return 0;
        if (st == FCGI_STEP_CLOSE || c->aborted || c->eof) {
            c->broken = 1;
            return -1;
        }
        /* Anything we owe the peer (FCGI_CANT_MPX_CONN...) goes before we wait on it. */
        if (c->ooff < c->olen && c->open_rec == SIZE_MAX && fcgi_conn_flush(c, 1) != 0)
            return -1;
        if (conn_wait(c, POLLIN) != 0)
            return -1;
        if (fcgi_conn_fill(c) == 0 || c->broken) {
            c->broken = 1;
            return -1;
        }
    }
}

fcgi_step fcgi_conn_end(fcgi_conn *c, int ok)
{
    uint8_t hdr[FCGI_HEADER_LEN];

    if (!ok || c->broken)
        return FCGI_STEP_CLOSE; /* cut: no FCGI_END_REQUEST may follow */
    c->open_rec = SIZE_MAX;
    fcgi_header(hdr, FCGI_STDOUT, c->id, 0);
    conn_out(c, hdr, sizeof hdr);
    conn_end_record(c, c->id, FCGI_REQUEST_COMPLETE);
    if (c->broken)
        return FCGI_STEP_CLOSE;
    c->answered = 1;
    if (c->stdin_done)
        return conn_finish(c);
    fcgi_conn_set_state(c, FCGI_CONN_DRAIN, rl_clock_mono_ms());
    return FCGI_STEP_MORE;
}

void fcgi_conn_abort(fcgi_conn *c, int wait_ms)
{
    int unread = 0;

    if (!c->broken && fcgi_conn_flush(c, 1) == 0) { /* else the web server is gone */
        int64_t deadline = rl_clock_mono_ms() + wait_ms;
        while (ioctl(c->fd, TIOCOUTQ, &unread) == 0 && unread > 0 && rl_clock_mono_ms() < deadline)
            rl_clock_nap_ms(2);
        if (unread > 0)
            log_warn("the web server left %d bytes of a cut answer unread for %d ms", unread,
                     wait_ms);
    }
    shutdown(c->fd, SHUT_RDWR);
    c->broken = 1;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static char *conn_arena;
static size_t conn_arena_cap;
static char **conn_envp;
static size_t conn_envp_cap;

char **fcgi_conn_params(fcgi_conn *c)
{
    const char *role = c->role == FCGI_AUTHORIZER ? "FCGI_ROLE=AUTHORIZER" : "FCGI_ROLE=RESPONDER";
    size_t need = strlen(role) + 1 + c->plen * 2, npairs = 1, at = 0;
    const uint8_t *p = c->pbuf;
    size_t left = c->plen;

    if (c->params_over)
        return NULL;
    /* Each pair takes at least 2 bytes and yields "name=value\0": at most plen*2 bytes. */
    if (need > conn_arena_cap) {
        char *a = realloc(conn_arena, need);
        if (a == NULL)
            return NULL;
        conn_arena = a;
        conn_arena_cap = need;
    }
    if (c->plen / 2 + 2 > conn_envp_cap) {
        char **e = realloc(conn_envp, (c->plen / 2 + 2) * sizeof *e);
        if (e == NULL)
            return NULL;
        conn_envp = e;
        conn_envp_cap = c->plen / 2 + 2;
    }
    memcpy(conn_arena, role, strlen(role) + 1);
    conn_envp[0] = conn_arena;
    at = strlen(role) + 1;
    while (left > 0) {
        const uint8_t *name, *value;
        size_t nlen, vlen, used;
        if (left >= 2 && p[0] < 0x80 && p[1] < 0x80 && (size_t)p[0] + p[1] <= left - 2) {
            nlen = p[0]; /* the usual pair, both lengths one byte: no call */
            vlen = p[1];
            name = p + 2;
            value = name + nlen;
            used = 2 + nlen + vlen;
        } else if ((used = fcgi_pair(p, left, &name, &nlen, &value, &vlen)) == 0) {
            return NULL;
        }
        p += used;
        left -= used;
        /* "NAME=value" cannot hold a name with '=' or NUL, nor a value with NUL: such a pair
         * is left out (treated as absent, like an over-long header), never cut. */
        if (nlen == 0 || memchr(name, '=', nlen) != NULL ||
            memchr(name, '\0', nlen + vlen) != NULL) /* the value follows the name */
            continue;
        memcpy(conn_arena + at, name, nlen);
        conn_arena[at + nlen] = '=';
        memcpy(conn_arena + at + nlen + 1, value, vlen);
        conn_arena[at + nlen + 1 + vlen] = '\0';
        conn_envp[npairs++] = conn_arena + at;
        at += nlen + vlen + 2;
    }
    conn_envp[npairs] = NULL;
    return conn_envp;
}

void fcgi_conn_free_kept(void)
{
    free(conn_arena);
    free(conn_envp);
    conn_arena = NULL;
    conn_envp = NULL;
    conn_arena_cap = conn_envp_cap = 0;
    if (conn_spare != NULL)
        conn_destroy(conn_spare);
    conn_spare = NULL;
}
