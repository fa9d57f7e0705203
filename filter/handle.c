/* handle.c -- one request from parameters to response: load, decide, answer, log
 *
 * The one place that says what a request is (handle.h: handle_action): an admin endpoint,
 * a decision then an answer, or a decision then a forward. Nothing here knows whether the
 * parameters came over FastCGI or from a CGI environment.
 */
#include "../core/fmacros.h"

#include "handle.h"

#include <inttypes.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "settings.h"

/* One line per refusal, and one per dry-run rule that would have refused. */
static void handle_log_decision(const request *req, const rl_decision *d)
{
    char path[256], method[48];
    int dry_refused = 0;

    for (size_t i = 0; i < d->nresults; i++)
        dry_refused |= d->results[i].dry_run && !d->results[i].allowed;
    if (!dry_refused && d->verdict != RL_VERDICT_LIMITED && d->verdict != RL_VERDICT_DENYLISTED &&
        d->verdict != RL_VERDICT_MISSING_KEY)
        return; /* nothing to say: the escapes below are not made for every request */
    log_escape(method, sizeof method, req->method);
    log_escape(path, sizeof path, req->path);
    for (size_t i = 0; i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        if (r->dry_run && !r->allowed)
            log_info("dry-run refusal client=%s method=%s path=\"%s\" rule=\"%s\" "
                     "retry_after_ms=%" PRId64 " backend=%s",
                     d->client, method, path, rl_rule_name(r->rule), r->retry_after_ms,
                     rl_backend_name(d->backend));
    }
    switch (d->verdict) {
    case RL_VERDICT_LIMITED:
        log_info("%d client=%s method=%s path=\"%s\" rule=\"%s\" retry_after_ms=%" PRId64
                 " backend=%s",
                 d->status, d->client, method, path, d->rule != NULL ? rl_rule_name(d->rule) : "?",
                 d->retry_after_ms, rl_backend_name(d->backend));
        break;
    case RL_VERDICT_DENYLISTED:
        log_info("403 client=%s method=%s path=\"%s\" deny-listed", d->client, method, path);
        break;
    case RL_VERDICT_MISSING_KEY:
        log_info("%d client=%s method=%s path=\"%s\" rule=\"%s\" missing key", d->status, d->client,
                 method, path, d->rule != NULL ? rl_rule_name(d->rule) : "?");
        break;
    default: break;
    }
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
    if (d->regex_limited != NULL) {
        /* Counted every time (regex_limit); logged at most once a minute, either way the clock
         * moves, so a client cannot flood the log with such paths. */
        time_t now = time(NULL);
        if (ctx->regex_logged == 0 || now - ctx->regex_logged >= 60 ||
            now - ctx->regex_logged <= -60) {
            ctx->regex_logged = now;
            log_warn("rule \"%s\": path_regex stopped at its match limit, the rule did not "
                     "match (counted as regex_limit; logged at most once a minute)",
                     rl_rule_name(d->regex_limited));
        }
    }
}

/* Authorizer, admin path: let it through to the responder mount that serves the endpoint,
 * without a decision: no rule is consulted, no counter moves. The path is canonical and
 * matched exactly, so no other path gets this answer. */
static void handle_admin_pass(handle_ctx *ctx, response *out)
{
    ctx->admin = ADMIN_NONE;
    memset(&ctx->dec, 0, sizeof ctx->dec);
    ctx->dec.allowed = 1;
    ctx->dec.status = 200;
    ctx->dec.decider = -1;
    response_decision(out, ctx->cfg, &ctx->req, &ctx->dec);
}

handle_action handle_request(handle_ctx *ctx, char **params, response *out)
{
    request *req = &ctx->req;
    int status = request_load(req, params);

    ctx->admin = ADMIN_NONE;
    if (status != 0) {
        log_warn("%d: %s", status, req->reason);
        response_error(out, status);
        return HANDLE_ANSWER;
    }
    if ((ctx->admin = admin_match(ctx)) != ADMIN_NONE) {
        if (req->role == REQUEST_ROLE_RESPONDER)
            return HANDLE_ADMIN; /* never rate-limited, never forwarded */
        handle_admin_pass(ctx, out);
        return HANDLE_ANSWER;
    }

    rl_request rq = {
        .remote_addr = req->client,
        .path = req->path,
        .method = req->method[0] ? req->method : NULL,
        .host = req->host[0] ? req->host : NULL,
        .header = request_get_header,
        .header_ud = req,
        .cost = 1,
        .path_canonical = 1, /* request_load made it so */
    };
    if (rl_decide(ctx->lim, &rq, &ctx->dec) != 0) {
        char path[256];
        log_error("500: cannot decide for client=%s path=\"%s\": %s", req->client,
                  log_escape(path, sizeof path, req->path), rl_limiter_errstr(ctx->lim));
        response_error(out, 500);
        return HANDLE_ANSWER;
    }
    handle_log_store(ctx, &ctx->dec);
    handle_log_decision(req, &ctx->dec);
    if (ctx->dec.allowed && req->role == REQUEST_ROLE_RESPONDER &&
        settings_get_proxy(ctx->cfg)->backend != NULL) {
        response_limit_lines(out, ctx->cfg, &ctx->dec);
        return HANDLE_FORWARD;
    }
    response_decision(out, ctx->cfg, req, &ctx->dec);
    if (out->status == 500)
        log_error("500: response for client=%s did not fit in %d bytes", req->client, RESPONSE_MAX);
    return HANDLE_ANSWER;
}
