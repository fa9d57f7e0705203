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

/* Decides the request described by params (see request_load) and fills out. Logs one line per
 * refusal and per error. A request for an admin endpoint is not decided: ctx->admin says
 * which, and out is left for admin.c to answer. */
void handle_request(handle_ctx *ctx, char **params, response *out);

#endif
