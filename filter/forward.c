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

#include "log.h"
#include "proxy.h"
#include "settings.h"

static proxy *forward_px;
static response forward_lines; /* the rate-limit header lines added to the backend's answer */

int forward_wanted(const handle_ctx *ctx, const response *rsp)
{
    return ctx->admin == 0 && settings_get_proxy(ctx->cfg)->backend != NULL &&
           ctx->req.role == REQUEST_ROLE_RESPONDER && rsp->status == 200 && ctx->dec.allowed;
}

int forward_serve(handle_ctx *ctx, const proxy_io *io)
{
    if (forward_px == NULL && (forward_px = proxy_new(ctx->cfg)) == NULL) {
        static const char err[] = "Status: 500 Internal Server Error\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                  "Internal Server Error\n";
        return io->write(io->ud, err, (int)sizeof err - 1);
    }
    response_limit_lines(&forward_lines, ctx->cfg, &ctx->dec);
    return proxy_forward(forward_px, io, forward_lines.buf, forward_lines.len) < 0 ? -1 : 0;
}

void forward_close(void)
{
    proxy_free(forward_px);
    forward_px = NULL;
}
