/* response.c -- build the 200 / 429 / error answer and send it (see response.h) */
#include "../core/fmacros.h"

#include "response.h"
#include "http.h"
#include "settings.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Room for RL_MAX_MATCH rules' field values, names included. */
#define RESPONSE_FIELD_MAX 4096

static void response_reset(response *r, int status)
{
    r->status = status;
    r->overflow = 0;
    r->len = 0;
    r->buf[0] = '\0';
}

static void response_addf(response *r, const char *fmt, ...) RL_PRINTF(2, 3);
static void response_addf(response *r, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof r->buf - r->len;

    if (r->overflow)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(r->buf + r->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        r->overflow = 1;
        r->buf[r->len] = '\0';
        return;
    }
    r->len += (size_t)n;
}

void response_error(response *r, int status)
{
    if (status != 400 && status != 403 && status != 414 && status != 429)
        status = 500;
    response_reset(r, status);
    response_addf(r,
                  "Status: %d %s\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Cache-Control: no-store\r\n"
                  "\r\n"
                  "%s\n",
                  status, rl_http_reason(status), rl_http_reason(status));
}

/* The IETF fields of d; "" when they could not be formatted (then they are left out). */
static void response_fields(const rl_decision *d, char *policy, char *state)
{
    if (rl_format_policy(d, policy, RESPONSE_FIELD_MAX) < 0)
        policy[0] = '\0';
    if (rl_format_state(d, state, RESPONSE_FIELD_MAX) < 0)
        state[0] = '\0';
}

/* RateLimit-Policy, RateLimit and the legacy X-RateLimit-* of the deciding rule. */
static void response_add_headers(response *r, const rl_config *cfg, const rl_decision *d)
{
    char policy[RESPONSE_FIELD_MAX], state[RESPONSE_FIELD_MAX];

    if (d->decider < 0 || (size_t)d->decider >= d->nresults)
        return;
    const rl_rule_result *res = &d->results[d->decider];
    response_fields(d, policy, state);
    if (policy[0])
        response_addf(r, "RateLimit-Policy: %s\r\n", policy);
    if (state[0])
        response_addf(r, "RateLimit: %s\r\n", state);
    if (settings_get_headers(cfg)->x_ratelimit)
        response_addf(r,
                      "X-RateLimit-Limit: %" PRId64 "\r\n"
                      "X-RateLimit-Remaining: %" PRId64 "\r\n"
                      "X-RateLimit-Reset: %" PRId64 "\r\n",
                      res->limit, res->remaining, rl_ms_to_s_ceil(res->reset_ms));
}

void response_limit_lines(response *r, const rl_config *cfg, const rl_decision *d)
{
    response_reset(r, 200);
    response_add_headers(r, cfg, d);
    if (r->overflow)
        response_reset(r, 200);
}

/* Appends s as the contents of a JSON string: '"', '\\' and control bytes escaped; a byte
 * >= 0x80 becomes U+FFFD (a path is percent-encoded ASCII; raw bytes may not be UTF-8). At
 * most RESPONSE_JSON_MAX bytes of s are shown, then "...": the answer must fit its buffer. */
#define RESPONSE_JSON_MAX 1024
static void response_add_json_string(response *r, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p && !r->overflow && p - (const unsigned char *)s < RESPONSE_JSON_MAX; p++) {
        if (*p == '"' || *p == '\\')
            response_addf(r, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            response_addf(r, "\\u%04x", *p);
        else if (*p >= 0x80)
            response_addf(r, "\\ufffd");
        else
            response_addf(r, "%c", *p);
    }
    if (*p)
        response_addf(r, "...");
}

/* The RFC 9457 body of a refusal (headers.problem_json). */
static void response_problem(response *r, const request *req, const rl_decision *d, int status,
                             int64_t retry)
{
    response_addf(r,
                  "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,"
                  "\"detail\":\"Rate limit \\\"%s\\\" exceeded: retry in %" PRId64 " s.\","
                  "\"instance\":\"",
                  rl_http_reason(status), status, d->rule != NULL ? rl_rule_name(d->rule) : "?",
                  retry);
    response_add_json_string(r, req->path);
    response_addf(r, "\",\"retry_after\":%" PRId64 "}\n", retry);
}

/* A refusal by a rule: the rule's status (429 unless configured) and body, or with
 * headers.problem_json an RFC 9457 application/problem+json body. */
static void response_refused(response *r, const rl_config *cfg, const request *req,
                             const rl_decision *d)
{
    int64_t retry = rl_ms_to_s_ceil(d->retry_after_ms);
    int status = d->status >= 400 && d->status <= 599 ? d->status : 429;
    if (retry < 1)
        retry = 1;

    response_reset(r, status);
    response_addf(r,
                  "Status: %d %s\r\n"
                  "Content-Type: %s\r\n"
                  "Retry-After: %" PRId64 "\r\n",
                  status, rl_http_reason(status),
                  settings_get_headers(cfg)->problem_json ? "application/problem+json"
                                                          : "text/plain; charset=utf-8",
                  retry);
    response_add_headers(r, cfg, d);
    response_addf(r, "Cache-Control: no-store\r\n\r\n");
    if (settings_get_headers(cfg)->problem_json)
        response_problem(r, req, d, status, retry);
    else if (d->rule != NULL && rl_rule_body(d->rule) != NULL)
        response_addf(r, "%s", rl_rule_body(d->rule));
    else
        response_addf(r, "Too Many Requests: retry in %" PRId64 " s\n", retry);
}

/* Deny-listed (403) or a missing key (the rule's missing_key_status): no limit was counted,
 * so no rate-limit headers and no Retry-After. */
static void response_rejected(response *r, const rl_decision *d)
{
    int status = d->status >= 400 && d->status <= 599 ? d->status : 403;
    const char *body =
        d->verdict == RL_VERDICT_MISSING_KEY && d->rule != NULL ? rl_rule_body(d->rule) : NULL;

    response_reset(r, status);
    response_addf(r,
                  "Status: %d %s\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Cache-Control: no-store\r\n"
                  "\r\n",
                  status, rl_http_reason(status));
    if (body != NULL)
        response_addf(r, "%s", body);
    else
        response_addf(r, "%s\n", rl_http_reason(status));
}

/* Authorizer: only Variable-* headers of a 200 reach the rest of the request. */
static void response_authorized(response *r, const request *req, const rl_decision *d)
{
    char policy[RESPONSE_FIELD_MAX], state[RESPONSE_FIELD_MAX];

    response_reset(r, 200);
    /* The client as the limiter resolved it (behind a trusted proxy: the forwarded address,
     * IPv6 grouped by prefix), so Apache's %u and the logs name who was limited. */
    response_addf(r, "Status: 200\r\nVariable-RATELIMIT_CLIENT: %s\r\n",
                  d->client[0] != '\0' ? d->client : req->client);
    if (d->decider >= 0 && (size_t)d->decider < d->nresults) {
        const rl_rule_result *res = &d->results[d->decider];
        response_fields(d, policy, state);
        response_addf(r,
                      "Variable-RATELIMIT_LIMIT: %" PRId64 "\r\n"
                      "Variable-RATELIMIT_REMAINING: %" PRId64 "\r\n"
                      "Variable-RATELIMIT_RESET: %" PRId64 "\r\n",
                      res->limit, res->remaining, rl_ms_to_s_ceil(res->reset_ms));
        if (policy[0])
            response_addf(r, "Variable-RATELIMIT_POLICY: %s\r\n", policy);
        if (state[0])
            response_addf(r, "Variable-RATELIMIT: %s\r\n", state);
    }
    response_addf(r, "\r\n");
}

static void response_responded(response *r, const rl_config *cfg, const rl_decision *d)
{
    response_reset(r, 200);
    response_addf(r, "Status: 200 OK\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n");
    response_add_headers(r, cfg, d);
    response_addf(r, "\r\nOK\n");
}

void response_decision(response *r, const rl_config *cfg, const request *req, const rl_decision *d)
{
    if (!d->allowed && d->verdict == RL_VERDICT_LIMITED)
        response_refused(r, cfg, req, d);
    else if (!d->allowed)
        response_rejected(r, d);
    else if (req->role == REQUEST_ROLE_AUTHORIZER)
        response_authorized(r, req, d);
    else
        response_responded(r, cfg, d);
    if (r->overflow) /* cannot happen with RL_MAX_MATCH rules; never send half a header */
        response_error(r, 500);
}
