/* forward.h -- hand an allowed responder request to the proxy, over FastCGI or plain CGI */
#ifndef FILTER_FORWARD_H
#define FILTER_FORWARD_H

#include "handle.h"
#include "proxy.h"
#include "response.h"

/* 1 when the request just decided in ctx (answer in rsp) goes to the backend: a backend is
 * configured, the role is responder and the request was allowed. Then the forward_serve() call
 * that follows takes the rate-limit lines from rsp, which must not change in between. */
int forward_wanted(const handle_ctx *ctx, const response *rsp);

/* Forwards it; io (the FastCGI request's streams, or stdin/stdout) carries the body and the
 * answer. Returns 0, or -1 when the answer could not be made whole (logged): the caller must
 * then end the request as failed (FastCGI: close the connection without FCGI_END_REQUEST, so
 * the web server resets the client connection instead of completing a truncated answer). */
int forward_serve(handle_ctx *ctx, const proxy_io *io);

/* Frees this process's proxy (made at the first forwarded request). */
void forward_close(void);

#endif
