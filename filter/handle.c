/* handle.c -- one request from parameters to response: load, decide, answer, log
 *
 * Nothing here knows whether the parameters came over FastCGI or from a CGI environment.
 */
#include "../core/fmacros.h"

#include "handle.h"

#include <inttypes.h>
#include <string.h>

#include "log.h"

static const char *handle_backend_name(rl_backend_kind kind)
{
    switch (kind) {
    case RL_BACKEND_SHM: return "shm";
    case RL_BACKEND_REDIS: return "redis";
    case RL_BACKEND_REFUSAL_CACHE: return "refusal-cache";
    case RL_BACKEND_FAIL_OPEN: return "fail-open";
    case RL_BACKEND_FAIL_CLOSED: return "fail-closed";
    default: return "none";
    }
}

static void handle_log_refusal(const request *req, const rl_decision *d)
{
    char path[256], method[48];
    const char *rule = "?";

    if (d->decider >= 0 && (size_t)d->decider < d->nresults && d->results[d->decider].rule)
        rule = d->results[d->decider].rule->name;
    log_info("429 client=%s method=%s path=\"%s\" rule=\"%s\" retry_after_ms=%" PRId64
             " backend=%s",
             req->client, log_escape(method, sizeof method, req->method),
             log_escape(path, sizeof path, req->path), rule, d->retry_after_ms,
             handle_backend_name(d->backend));
}

/* Store trouble does not fail a request (the limiter falls back), but it must be visible:
 * say when Redis starts and stops failing (once, not per request), and every time both stores
 * failed and the request was admitted unchecked. */
static void handle_log_store(handle_ctx *ctx, const rl_decision *d)
{
    const char *errstr = rl_limiter_errstr(ctx->lim);
    int degraded = strcmp(rl_limiter_health(ctx->lim), "ok") != 0;

    if (degraded != ctx->degraded) {
        if (degraded)
            log_warn("deciding from shared memory until Redis answers again: %s", errstr);
        else
            log_info("Redis answers again");
        ctx->degraded = degraded;
    }
    if (d->backend == RL_BACKEND_NONE && errstr[0] != '\0')
        log_error("no store could decide, request admitted unchecked: %s", errstr);
}

void handle_request(handle_ctx *ctx, char **params, response *out)
{
    request *req = &ctx->req;
    int status = request_load(req, params);

    if (status != 0) {
        log_warn("%d: %s", status, req->reason);
        response_error(out, status);
        return;
    }

    rl_request rq = {
        .client = req->client,
        .path = req->path,
        .method = req->method[0] ? req->method : NULL,
        .cost = 1,
    };
    if (rl_decide(ctx->lim, &rq, &ctx->dec) != 0) {
        char path[256];
        log_error("500: cannot decide for client=%s path=\"%s\": %s", req->client,
                  log_escape(path, sizeof path, req->path), rl_limiter_errstr(ctx->lim));
        response_error(out, 500);
        return;
    }
    handle_log_store(ctx, &ctx->dec);
    response_decision(out, ctx->cfg, req->role, &ctx->dec);
    if (!ctx->dec.allowed)
        handle_log_refusal(req, &ctx->dec);
    if (out->status == 500)
        log_error("500: response for client=%s did not fit in %d bytes", req->client,
                  RESPONSE_MAX);
}
