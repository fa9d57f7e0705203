/* handle.h -- one request from parameters to response: load, decide, answer, log */
#ifndef FILTER_HANDLE_H
#define FILTER_HANDLE_H

#include <time.h>

#include "ratelimit.h"
#include "request.h"
#include "response.h"

/* What a request needs besides itself; everything borrowed. */
typedef struct handle_ctx {
    const rl_config *cfg;
    rl_limiter *lim;
    request req; /* scratch, reused between requests */
    rl_decision dec;
    int degraded;        /* Redis was failing at the last decision (logged once per change) */
    time_t regex_logged; /* when a path_regex limit was last logged (at most once a minute) */
    int admin;           /* the request is for this admin endpoint (admin_endpoint); 0: not */
} handle_ctx;

/* What a request is, decided once by handle_request; each answer is built once, by the one
 * that sends it. */
typedef enum handle_action {
    HANDLE_ANSWER,  /* out holds the whole answer: a decision's (a refusal, an authorizer's 200,
                       a responder's 200 "OK"), or an error (400, 414, 500) */
    HANDLE_ADMIN,   /* a responder request for an admin endpoint (ctx->admin says which):
                       admin.c answers it, undecided; out is untouched */
    HANDLE_FORWARD, /* an allowed responder request, proxy.backend set: out holds only the
                       rate-limit header lines the proxy adds to the backend's answer */
} handle_action;

/* Loads the request described by params (see request_load), decides it unless it is an admin
 * endpoint, and says what to do with it (filling out as above). Logs one line per refusal and
 * per error. Nothing here knows whether params came over FastCGI or from a CGI environment. */
handle_action handle_request(handle_ctx *ctx, char **params, response *out);

#endif
