/* proxy.c -- forward an allowed responder request to the backend (see proxy.h)
 *
 * A small HTTP/1.1 client of its own, because libcurl was most of the cost of a proxied
 * request (about 70,000 of 105,000 instructions: building the request from options and a
 * header list, connection-cache checks, parsing and keeping every answer header for its
 * header API). Each process keeps one connection to the backend (fd) between requests; the
 * request head is written ready to send by proxy_request.c, the answer is parsed by
 * proxy_parse.c as it arrives and relayed by proxy_relay.c, body bytes straight from the
 * receive buffer into the web server's output.
 *
 * An exchange: connect when there is no kept connection (getaddrinfo, then a non-blocking
 * connect bounded by connect_timeout_ms per try); send the head, then the body as the client
 * sends it (chunked when its length is unknown); then read the answer, poll() before each
 * recv(). A kept connection the backend closed meanwhile fails on first use: when nothing of
 * the client's was taken yet (no body byte read) and not a byte of an answer came, the request
 * is sent again, once, on a new connection. The connection is kept after a complete answer
 * unless the backend said "Connection: close", answered HTTP/1.0, framed its body by closing,
 * sent both Content-Length and Transfer-Encoding, sent bytes after its answer, or answered
 * before the whole body was sent; and every request first checks the kept connection: found
 * readable (closed, or holding bytes nobody asked for, which would be read as this request's
 * answer), it is replaced before a byte is sent or taken. Every wait is a poll() bounded by
 * the idle timeout (timeout_ms since the last byte either way) and by the exchange's end
 * (total_timeout_ms from its start, checked before each read of the client's body too: a
 * backend or client that trickles bytes cannot hold the process longer). An exchange that
 * fails before the response head went out is answered here: 502 when the backend cannot be
 * reached or answers garbage, 504 when it is too slow; after the head went out the response
 * can only be cut short (logged).
 */
#include "../core/fmacros.h"

#include "proxy.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proxy_int.h"
#include "clock.h"
#include "http.h"
#include "settings.h"

/* How an exchange ended. */
enum {
    PX_OK,
    PX_REFUSED,         /* no address of the backend accepted a connection */
    PX_CONNECT_TIMEOUT, /* none within connect_timeout_ms */
    PX_TIMEOUT,         /* the backend was silent for timeout_ms (x->timed_out) */
    PX_FAILED,          /* anything else: px->errbuf says what */
    PX_RETRY,           /* the kept connection was dead: send the request again */
    PX_ANSWERED,        /* the backend answered before it took the whole request */
};

static void proxy_close(proxy *px)
{
    if (px->fd >= 0)
        close(px->fd);
    px->fd = -1;
}

static int proxy_fail(proxy *px, const char *what, int err)
{
    if (err != 0)
        snprintf(px->errbuf, sizeof px->errbuf, "%s: %s", what, strerror(err));
    else
        snprintf(px->errbuf, sizeof px->errbuf, "%s", what);
    return PX_FAILED;
}

/* 1 when the exchange ran past its total bound (x->timed_out, x->total_out set). */
static int proxy_past_end(proxy_xfer *x, int64_t now)
{
    if (now < x->end_ms)
        return 0;
    x->timed_out = x->total_out = 1;
    return 1;
}

/* Waits until fd is ready for events, at most until the idle deadline or the exchange's end,
 * whichever comes first. Returns the revents, 0 when a deadline passed (x->timed_out set), -1
 * on error (errno). */
static int proxy_wait(proxy *px, short events)
{
    proxy_xfer *x = &px->x;

    for (;;) {
        struct pollfd pfd = {.fd = px->fd, .events = events};
        int64_t now = rl_clock_mono_ms();
        int64_t left = x->last_ms + x->timeout_ms - now;
        int n;

        if (proxy_past_end(x, now))
            return 0;
        if (x->end_ms - now < left)
            left = x->end_ms - now;
        if (left <= 0) {
            x->timed_out = 1;
            return 0;
        }
        n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return pfd.revents;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A new connection to the backend: each of its addresses in turn. */
static int proxy_connect(proxy *px)
{
    const settings_proxy *pc = settings_get_proxy(px->cfg);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai, *a;
    int rc, err = 0, result = PX_REFUSED;

    rc = getaddrinfo(px->host, px->port, &hints, &ai);
    if (rc != 0) {
        snprintf(px->errbuf, sizeof px->errbuf, "cannot resolve %.128s: %s", px->host,
                 gai_strerror(rc));
        return PX_FAILED;
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        int64_t deadline = rl_clock_mono_ms() + pc->connect_timeout_ms;
        if (deadline > px->x.end_ms) /* the exchange's bound covers its connects too */
            deadline = px->x.end_ms;
        socklen_t len = sizeof err;

        if (fd < 0) {
            err = errno;
            result = PX_FAILED;
            continue;
        }
        err = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            while (err == EINPROGRESS || err == EINTR) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int64_t left = deadline - rl_clock_mono_ms();
                int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
                if (n == 0) {
                    err = ETIMEDOUT;
                } else if (n > 0) {
                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                        err = errno;
                } else if (errno != EINTR) {
                    err = errno;
                }
            }
        }
        if (err == 0) {
            int one = 1;
            /* The head and the body go out in separate sends: no Nagle delay between them. */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            px->fd = fd;
            freeaddrinfo(ai);
            return PX_OK;
        }
        close(fd);
        if (err == ETIMEDOUT && result != PX_FAILED)
            result = PX_CONNECT_TIMEOUT;
        else if (err != ECONNREFUSED)
            result = PX_FAILED;
    }
    freeaddrinfo(ai);
    if (result == PX_FAILED)
        return proxy_fail(px, "cannot connect to the backend", err);
    snprintf(px->errbuf, sizeof px->errbuf, "%s", strerror(err));
    return result;
}

static const proxy_parse_cb proxy_relay_cb = {proxy_relay_header, proxy_relay_body, NULL};

/* The request may be sent again on a new connection: it went on a kept one, nothing of the
 * client's body was taken and not a byte of an answer came. */
static int proxy_may_retry(const proxy *px)
{
    return px->reused && px->x.body_read == 0 && proxy_parse_untouched(&px->parse);
}

/* The backend closed the connection, or reset it (err), before its answer was complete. */
static int proxy_gone(proxy *px, int err)
{
    if (proxy_may_retry(px))
        return PX_RETRY;
    if (proxy_parse_untouched(&px->parse))
        return proxy_fail(px, "the backend closed the connection without answering", err);
    return proxy_fail(px, "the backend closed the connection before its answer ended", err);
}

/* Takes what the backend sent: one recv(), fed to the parser, which relays it. Returns PX_OK
 * (the answer may be complete: proxy_parse_done), PX_RETRY or PX_FAILED. */
static int proxy_take(proxy *px)
{
    proxy_xfer *x = &px->x;
    proxy_parse *p = &px->parse;
    proxy_parse_cb cb = proxy_relay_cb;
    ssize_t n = recv(px->fd, px->rbuf, sizeof px->rbuf, MSG_DONTWAIT);
    long used;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return PX_OK;
    if (n == 0 && proxy_parse_eof(p))
        return PX_OK;
    if (n <= 0)
        return proxy_gone(px, n < 0 ? errno : 0);
    x->last_ms = rl_clock_mono_ms();
    cb.ud = x;
    used = proxy_parse_feed(p, px->rbuf, (size_t)n, &cb);
    if (used == -2)
        return proxy_fail(px,
                          x->write_failed ? "the web server went away"
                                          : "the backend's answer could not be relayed",
                          0);
    if (used < 0)
        return proxy_fail(px, p->why, 0);
    if (used < n) /* bytes after the answer: the connection cannot be trusted */
        p->close = 1;
    return PX_OK;
}

/* Sends buf[0..n), taking what the backend answers meanwhile (an interim 100 Continue, or the
 * answer of a backend that answers while it reads). Returns PX_OK when all of it went out;
 * PX_ANSWERED when the answer is complete, or is final with a status >= 300 (libcurl's rule:
 * the backend refused the body, which is then not sent on); else PX_TIMEOUT, PX_RETRY or
 * PX_FAILED. */
static int proxy_send(proxy *px, const char *buf, size_t n, const char *what)
{
    proxy_parse *p = &px->parse;

    while (n > 0) {
        ssize_t k = send(px->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            buf += k;
            n -= (size_t)k;
            px->x.last_ms = rl_clock_mono_ms();
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            int err = errno;
            if (proxy_parse_done(p))
                return PX_ANSWERED; /* and closed: it needed no more */
            if (err == EPIPE || err == ECONNRESET)
                return proxy_gone(px, err);
            return proxy_fail(px, what, err);
        }
        int ev = proxy_wait(px, POLLOUT | POLLIN);
        if (ev == 0)
            return PX_TIMEOUT;
        if (ev < 0)
            return proxy_fail(px, "poll for the backend failed", errno);
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
            int rc = proxy_take(px);
            if (rc != PX_OK)
                return rc;
            if (proxy_parse_done(p) || p->status >= 300) /* a final answer: 1xx are < 300 */
                return PX_ANSWERED;
        }
    }
    return PX_OK;
}

/* The request body, as the client sends it; chunked when its length is unknown. Returns what
 * proxy_send does, or PX_FAILED when the client's body could not be read (x->read_failed). */
static int proxy_send_body(proxy *px)
{
    proxy_xfer *x = &px->x;
    int chunked = x->body_left < 0;

    for (;;) {
        char *data = px->sbuf + 16; /* room before it for the chunk's size line */
        long got = proxy_relay_read(x, data, PROXY_IO_BUF);
        char *at = data;
        size_t n;
        int rc;

        if (got < 0)
            return PX_FAILED;
        /* A client trickling its body holds the exchange only until its end. */
        if (proxy_past_end(x, rl_clock_mono_ms()))
            return PX_TIMEOUT;
        if (got == 0 && !chunked)
            return PX_OK;
        /* A backend that answers early and still reads (a 413, then a lingering close) never
         * makes send() wait, where proxy_send looks for the answer: look before each piece,
         * or the whole body would go to it before the client got its answer. */
        struct pollfd pfd = {.fd = px->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0) {
            int taken = proxy_take(px);
            if (taken != PX_OK)
                return taken;
            if (proxy_parse_done(&px->parse) || px->parse.status >= 300)
                return PX_ANSWERED;
        }
        if (chunked) {
            char size[16];
            int k = snprintf(size, sizeof size, "%lx\r\n", (unsigned long)got);
            at = data - k;
            memcpy(at, size, (size_t)k);
            memcpy(data + got, "\r\n", 2); /* after the data; "0\r\n\r\n" ends the body */
            n = (size_t)k + (size_t)got + 2;
        } else {
            n = (size_t)got;
        }
        rc = proxy_send(px, at, n, "sending the request body to the backend failed");
        if (rc != PX_OK)
            return rc;
        if (got == 0 || x->body_left == 0)
            return PX_OK;
    }
}

/* Reads and relays the rest of the answer. Returns PX_OK, PX_RETRY, PX_TIMEOUT or
 * PX_FAILED. */
static int proxy_receive(proxy *px)
{
    while (!proxy_parse_done(&px->parse)) {
        int ev = proxy_wait(px, POLLIN);
        if (ev == 0)
            return PX_TIMEOUT;
        if (ev < 0)
            return proxy_fail(px, "poll for the backend failed", errno);
        int rc = proxy_take(px);
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}

/* One try of the exchange. */
static int proxy_try(proxy *px)
{
    proxy_xfer *x = &px->x;
    int rc;

    px->reused = px->fd >= 0;
    /* A kept connection is readable only when closed, or out of step (the backend sent more
     * after its last answer, which would be read as this request's answer): check it first,
     * so that no body is taken from the client for a closed one and no answer is mixed up. */
    if (px->reused) {
        char c;
        ssize_t n = recv(px->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            proxy_close(px);
            px->reused = 0;
        }
    }
    if (!px->reused && (rc = proxy_connect(px)) != PX_OK)
        return rc;
    proxy_parse_start(&px->parse, x->head_request);
    rc = proxy_send(px, px->hbuf, px->hlen, "sending the request to the backend failed");
    if (rc == PX_OK && x->body_left != 0)
        rc = proxy_send_body(px);
    if (rc == PX_ANSWERED)
        px->parse.close = 1; /* the backend did not take the whole request */
    else if (rc != PX_OK)
        return rc;
    return proxy_receive(px);
}

/* The exchange, sent again once on a new connection when the kept one was found dead. Leaves
 * the connection kept only after a complete answer that allows it. */
static int proxy_exchange(proxy *px)
{
    int rc = proxy_try(px);

    if (rc == PX_RETRY) {
        proxy_close(px);
        rc = proxy_try(px);
        if (rc == PX_RETRY)
            rc = proxy_fail(px, "the backend closed the connection without answering", 0);
    }
    if (rc != PX_OK || px->parse.close)
        proxy_close(px);
    return rc;
}

/* "http://host[:port]" (settings.c checked its form) into host, port and authority. */
static int proxy_backend(proxy *px, const char *url)
{
    const char *h = url + strlen("http://"), *end;
    size_t hl;

    snprintf(px->authority, sizeof px->authority, "%s", h);
    if (*h == '[') {
        end = strchr(h, ']');
        if (end == NULL)
            return -1;
        h++;
        hl = (size_t)(end - h);
        end++;
    } else {
        end = h + strcspn(h, ":/");
        hl = (size_t)(end - h);
    }
    if (hl == 0 || hl >= sizeof px->host)
        return -1;
    memcpy(px->host, h, hl);
    px->host[hl] = '\0';
    snprintf(px->port, sizeof px->port, "%s", *end == ':' ? end + 1 : "80");
    return 0;
}

proxy *proxy_new(const rl_config *cfg)
{
    proxy *px = calloc(1, sizeof *px);

    if (px == NULL) {
        log_error("out of memory for the proxy");
        return NULL;
    }
    px->cfg = cfg;
    px->fd = -1;
    /* A short read leaves part of the key zero: the table still works, only less secret. */
    if (getrandom(px->seen_key, sizeof px->seen_key, 0) != (ssize_t)sizeof px->seen_key)
        log_warn("proxy: getrandom: %s: the header table's key is not random", strerror(errno));
    if (proxy_backend(px, settings_get_proxy(cfg)->backend) != 0) {
        log_error("cannot use the backend URL %s", settings_get_proxy(cfg)->backend);
        proxy_free(px);
        return NULL;
    }
    return px;
}

void proxy_free(proxy *px)
{
    if (px == NULL)
        return;
    proxy_close(px);
    free(px->hbuf);
    free(px);
}

/* Answers the client ourselves, with the rate-limit lines: the request was counted. */
static int proxy_answer(const proxy_xfer *x, int status, const char *text)
{
    char head[512];
    const proxy_io *io = x->io;
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Cache-Control: no-store\r\n",
                     status, rl_http_reason(status));
    if (io->write(io->ud, head, n) != 0 ||
        (x->extra_len > 0 && io->write(io->ud, x->extra, (int)x->extra_len) != 0) ||
        io->write(io->ud, "\r\n", 2) != 0 || io->write(io->ud, text, (int)strlen(text)) != 0)
        return -1;
    return status;
}

/* What went wrong before the head went out, said to the client and the log. */
static int proxy_failed(proxy *px, int rc)
{
    proxy_xfer *x = &px->x;
    const char *why = px->errbuf;
    char target[256];

    log_escape(target, sizeof target, px->target);
    if (x->write_failed) {
        log_warn("the web server went away during the response to \"%s\"", target);
        return -1;
    }
    if (x->read_failed) {
        log_warn("the client's request body for \"%s\" ended early: not forwarded", target);
        return -1;
    }
    if (rc == PX_TIMEOUT || rc == PX_CONNECT_TIMEOUT) {
        const settings_proxy *pc = settings_get_proxy(px->cfg);
        if (rc == PX_CONNECT_TIMEOUT) /* a connect is cut short by the exchange's end too */
            proxy_past_end(x, rl_clock_mono_ms());
        int ms = x->total_out   ? pc->total_timeout_ms
                 : x->timed_out ? pc->timeout_ms
                                : pc->connect_timeout_ms;
        log_error("504: backend %s did not answer \"%s\" within %d ms%s", pc->backend, target, ms,
                  x->total_out ? " (proxy.total_timeout_ms)" : "");
        return proxy_answer(x, 504, "Gateway Timeout: the backend did not answer in time\n");
    }
    log_error("502: backend %s failed for \"%s\": %s", settings_get_proxy(px->cfg)->backend, target,
              why);
    if (rc == PX_REFUSED)
        return proxy_answer(x, 502, "Bad Gateway: the backend refused the connection\n");
    return proxy_answer(x, 502, "Bad Gateway: the backend failed\n");
}

int proxy_forward(proxy *px, const proxy_io *io, const char *extra, size_t extra_len)
{
    proxy_xfer *x = &px->x;
    int rc, status;

    memset(x, 0, offsetof(proxy_xfer, head));
    x->io = io;
    x->extra = extra;
    x->extra_len = extra_len;
    x->timeout_ms = settings_get_proxy(px->cfg)->timeout_ms;
    x->last_ms = rl_clock_mono_ms();
    x->end_ms = x->last_ms + settings_get_proxy(px->cfg)->total_timeout_ms;
    px->target[0] = '\0';
    px->errbuf[0] = '\0';
    status = proxy_request_setup(px, io);
    if (status != 0)
        return proxy_answer(x, status,
                            status == 500   ? "Internal Server Error\n"
                            : status == 414 ? "URI Too Long\n"
                                            : "Bad Request\n");
    rc = proxy_exchange(px);
    if (x->sent_head) {
        if (rc == PX_OK && !x->write_failed)
            return x->status;
        char target[256];
        log_error("backend %s: the response to \"%s\" was cut short: %s",
                  settings_get_proxy(px->cfg)->backend,
                  log_escape(target, sizeof target, px->target),
                  x->write_failed    ? "the web server went away"
                  : x->total_out     ? "the exchange ran past proxy.total_timeout_ms"
                  : rc == PX_TIMEOUT ? "Timeout was reached"
                                     : px->errbuf);
        return -1;
    }
    if (rc == PX_OK) { /* a response that never finished its head */
        rc = proxy_fail(px, "the backend's answer ended before its head did", 0);
    }
    return proxy_failed(px, rc);
}
