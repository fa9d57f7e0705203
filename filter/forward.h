/* forward.h -- hand an allowed responder request to the proxy, over FastCGI or plain CGI */
#ifndef FILTER_FORWARD_H
#define FILTER_FORWARD_H

#include "handle.h"
#include "proxy.h"
#include "response.h"

/* Forwards the request just decided in ctx (handle_request said HANDLE_FORWARD); lines are
 * the rate-limit header lines it built, added to the backend's answer. io (the FastCGI
 * request's streams, or stdin/stdout) carries the body and the answer. Returns 0, or -1 when
 * the answer could not be made whole (logged): the caller must then end the request as
 * failed (FastCGI: close the connection without FCGI_END_REQUEST, so the web server resets
 * the client connection instead of completing a truncated answer). */
int forward_serve(handle_ctx *ctx, const response *lines, const proxy_io *io);

/* Frees this process's proxy (made at the first forwarded request). */
void forward_close(void);

#endif
