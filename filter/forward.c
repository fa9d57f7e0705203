/* forward.c -- hand an allowed responder request to the proxy (see forward.h)
 *
 * Owns this process's proxy, made at the first forwarded request, i.e. after any fork, so no
 * libcurl connection is ever shared between processes.
 *
 * A FastCGI answer cut short after its head went out is never ended: forward_serve returns -1
 * and the server loop (fcgi_conn_abort) flushes what was made, gives the web server time to
 * read all of it (the head included), then shuts the connection down with no
 * FCGI_END_REQUEST, so the client's response ends as an error (chunked body without its
 * terminator, or a reset), never as a complete one.
 *
 * The rate-limit lines added to the backend's answer are those of the answer handle_request
 * already made (forward_wanted keeps a pointer to it until forward_serve uses it).
 */
#include "../core/fmacros.h"

#include "forward.h"

#include <string.h>

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

int forward_serve(handle_ctx *ctx, const proxy_io *io)
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

void forward_close(void)
{
    proxy_free(forward_px);
    forward_px = NULL;
}
