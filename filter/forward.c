/* forward.c -- hand an allowed responder request to the proxy (see forward.h)
 *
 * Owns this process's proxy, made at the first forwarded request, i.e. after any fork, so no
 * connection to the backend is ever shared between processes.
 *
 * A FastCGI answer cut short after its head went out is never ended: forward_serve returns -1
 * and the server loop (fcgi_conn_abort) flushes what was made, gives the web server time to
 * read all of it (the head included), then shuts the connection down with no
 * FCGI_END_REQUEST, so the client's response ends as an error (chunked body without its
 * terminator, or a reset), never as a complete one.
 *
 * The rate-limit lines added to the backend's answer are the ones handle_request built, once,
 * for this forward (HANDLE_FORWARD): nothing else is formatted for a forwarded request.
 */
#include "../core/fmacros.h"

#include "forward.h"

#include "log.h"
#include "proxy.h"

static proxy *forward_px;

int forward_serve(handle_ctx *ctx, const response *lines, const proxy_io *io)
{
    if (forward_px == NULL && (forward_px = proxy_new(ctx->cfg)) == NULL) {
        static response err;
        response_error(&err, 500);
        return io->write(io->ud, err.buf, (int)err.len);
    }
    return proxy_forward(forward_px, io, lines->buf, lines->len) < 0 ? -1 : 0;
}

void forward_close(void)
{
    proxy_free(forward_px);
    forward_px = NULL;
}
