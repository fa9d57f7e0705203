/* forward.c -- hand an allowed responder request to the proxy (see forward.h)
 *
 * Owns this process's proxy, made at the first forwarded request, i.e. after any fork, so no
 * libcurl connection is ever shared between processes.
 *
 * A FastCGI answer cut short after its head went out is never ended: what was made is
 * flushed, the web server is given time to read all of it (the head included), then the
 * connection is shut down with no FCGI_END_REQUEST, so the client's response ends as an
 * error (chunked body without its terminator, or a reset), never as a complete one.
 */
#include "../core/fmacros.h"

#include "forward.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "proxy.h"

static proxy *forward_px;
static response forward_lines;      /* the rate-limit header lines added to the backend's answer */
static const response *forward_rsp; /* the answer forward_wanted() last said yes to, until used */

int forward_wanted(const handle_ctx *ctx, const response *rsp)
{
    int yes = ctx->admin == 0 && ctx->cfg->proxy.backend != NULL &&
              ctx->req.role == REQUEST_ROLE_RESPONDER && rsp->status == 200 && ctx->dec.allowed;
    forward_rsp = yes ? rsp : NULL;
    return yes;
}

/* The rate-limit lines for the backend's answer. handle_request() has already made the
 * responder's own answer with the same lines (response.c: the status line, Content-Type, the
 * lines, the blank line, "OK\n"): they are taken from it rather than formatted a second time,
 * when it has exactly that shape; else they are made here. */
static void forward_limit_lines(const handle_ctx *ctx, const char **lines, size_t *len)
{
    static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n";
    static const char tail[] = "\r\nOK\n";
    const size_t hn = sizeof head - 1, tn = sizeof tail - 1;
    const response *r = forward_rsp;

    forward_rsp = NULL;
    if (r != NULL && r->len >= hn + tn && memcmp(r->buf, head, hn) == 0 &&
        memcmp(r->buf + r->len - tn, tail, tn) == 0) {
        *lines = r->buf + hn;
        *len = r->len - hn - tn;
        return;
    }
    response_limit_lines(&forward_lines, ctx->cfg, &ctx->dec);
    *lines = forward_lines.buf;
    *len = forward_lines.len;
}

static int forward_fcgi_read(void *ud, char *buf, int n)
{
    FCGX_Request *fr = ud;
    int got = FCGX_GetStr(buf, n, fr->in);
    return got == 0 && FCGX_GetError(fr->in) != 0 ? -1 : got;
}

static int forward_fcgi_write(void *ud, const char *buf, int n)
{
    FCGX_Request *fr = ud;
    return FCGX_PutStr(buf, n, fr->out) == n ? 0 : -1;
}

static int forward_stdin_read(void *ud, char *buf, int n)
{
    size_t got = fread(buf, 1, (size_t)n, stdin);
    (void)ud;
    return got == 0 && ferror(stdin) ? -1 : (int)got;
}

static int forward_stdout_write(void *ud, const char *buf, int n)
{
    (void)ud;
    return fwrite(buf, 1, (size_t)n, stdout) == (size_t)n ? 0 : -1;
}

static int forward_run(handle_ctx *ctx, const proxy_io *io)
{
    if (forward_px == NULL && (forward_px = proxy_new(ctx->cfg)) == NULL) {
        static const char err[] = "Status: 500 Internal Server Error\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                  "Internal Server Error\n";
        return io->write(io->ud, err, (int)sizeof err - 1);
    }
    const char *lines;
    size_t len;
    forward_limit_lines(ctx, &lines, &len);
    return proxy_forward(forward_px, io, lines, len) < 0 ? -1 : 0;
}

static int64_t forward_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends a cut answer as an error. lighttpd, when it finds the connection's end in the same
 * event as the answer's head (it had not read the head yet), ends the client's response with a
 * Content-Length of what it got: a complete-looking truncated answer. So wait, at most
 * wait_ms, until the web server has read every byte sent (TIOCOUTQ: on a unix socket, the
 * bytes its reader has not consumed; on TCP, the bytes it has not acknowledged) and only then
 * shut the connection down. */
static void forward_abort(FCGX_Request *fr, int wait_ms)
{
    const struct timespec tick = {0, 2 * 1000 * 1000};
    int64_t deadline;
    int unread = 0;

    if (FCGX_FFlush(fr->out) == 0) { /* else the web server is gone: nothing to wait for */
        deadline = forward_now_ms() + wait_ms;
        while (ioctl(fr->ipcFd, TIOCOUTQ, &unread) == 0 && unread > 0 &&
               forward_now_ms() < deadline)
            nanosleep(&tick, NULL);
        if (unread > 0)
            log_warn("the web server left %d bytes of a cut answer unread for %d ms", unread,
                     wait_ms);
    }
    shutdown(fr->ipcFd, SHUT_RDWR);
}

int forward_fcgi(handle_ctx *ctx, FCGX_Request *fr)
{
    proxy_io io = {.params = fr->envp,
                   .read = forward_fcgi_read,
                   .write = forward_fcgi_write,
                   .ud = fr,
                   .body_to_eof = 1};
    int rc = forward_run(ctx, &io);
    if (rc < 0 && fr->ipcFd >= 0) {
        /* Cut short (e.g. the backend died after the head went out): never end the request
         * normally, which would hand the client a complete-looking truncated answer. Shut
         * the connection down so no FCGI_END_REQUEST can follow; the web server then ends
         * the client's response as an error. FCGX_Finish_r sees the error and closes it. */
        forward_abort(fr, ctx->cfg->proxy.timeout_ms);
        return -1;
    }
    /* The answer's last bytes, its end-of-stream record and FCGI_END_REQUEST in one write(), as
     * response_send does: closing err (never written to) first, then out. A flush here and
     * FCGX_Finish_r's close after it would cost a second write and a second wake-up of the web
     * server for every request. */
    FCGX_FClose(fr->err);
    return FCGX_FClose(fr->out) < 0 ? -1 : rc;
}

int forward_cgi(handle_ctx *ctx, char **params)
{
    proxy_io io = {.params = params,
                   .read = forward_stdin_read,
                   .write = forward_stdout_write,
                   .ud = NULL,
                   .body_to_eof = 0};
    int rc = forward_run(ctx, &io);
    return fflush(stdout) != 0 ? -1 : rc;
}

void forward_close(void)
{
    proxy_free(forward_px);
    forward_px = NULL;
}
