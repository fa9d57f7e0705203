/* forward.h -- hand an allowed responder request to the proxy, over FastCGI or plain CGI */
#ifndef FILTER_FORWARD_H
#define FILTER_FORWARD_H

#include <fcgiapp.h>

#include "handle.h"
#include "response.h"

/* 1 when the request just decided in ctx (answer in rsp) goes to the backend: a backend is
 * configured, the role is responder and the request was allowed. Then the forward_*() call
 * that follows takes the rate-limit lines from rsp, which must not change in between. */
int forward_wanted(const handle_ctx *ctx, const response *rsp);

/* Forwards it; the FastCGI request's streams, or stdin/stdout, carry the body and the answer.
 * Returns 0, or -1 when the answer could not be made whole (logged). */
int forward_fcgi(handle_ctx *ctx, FCGX_Request *fr);
int forward_cgi(handle_ctx *ctx, char **params);

/* Frees this process's proxy (made at the first forwarded request). */
void forward_close(void);

#endif
