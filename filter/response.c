/* response.c -- build the 200 / 429 / error answer and send it (see response.h) */
#include "../core/fmacros.h"

#include "response.h"
#include "http.h"
#include "num.h"
#include "settings.h"

#include <stdint.h>
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

/* Appends s[0..n): the answer is made of copies and integers, not printf, which was half the
 * filter's instructions per request under callgrind. Keeps buf NUL-terminated; sets overflow
 * (and appends nothing more) when it does not fit. */
static void response_add(response *r, const char *s, size_t n)
{
    if (r->overflow)
        return;
    if (n >= sizeof r->buf - r->len) {
        r->overflow = 1;
        return;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

#define response_lit(r, s) response_add((r), "" s, sizeof(s) - 1)

static void response_str(response *r, const char *s)
{
    response_add(r, s, strlen(s));
}

static void response_int(response *r, int64_t v)
{
    char tmp[RL_INT_TEXT_MAX];
    response_add(r, tmp, (size_t)(rl_put_int(tmp, v) - tmp));
}

/* "Status: N REASON\r\n" */
static void response_status(response *r, int status)
{
    response_lit(r, "Status: ");
    response_int(r, status);
    response_lit(r, " ");
    response_str(r, rl_http_reason(status));
    response_lit(r, "\r\n");
}

void response_error(response *r, int status)
{
    if (status != 400 && status != 403 && status != 414 && status != 429)
        status = 500;
    response_reset(r, status);
    response_status(r, status);
    response_lit(r, "Content-Type: text/plain; charset=utf-8\r\n"
                    "Cache-Control: no-store\r\n"
                    "\r\n");
    response_str(r, rl_http_reason(status));
    response_lit(r, "\n");
}

/* The line "name: VALUE\r\n" of an IETF field of d (policy, else state), left out when its
 * value could not be formatted within RESPONSE_FIELD_MAX bytes or is empty. */
static void response_field(response *r, const char *name, const rl_decision *d, int state)
{
    char v[RESPONSE_FIELD_MAX];
    int n = state ? rl_format_state(d, v, sizeof v) : rl_format_policy(d, v, sizeof v);

    if (n <= 0)
        return;
    response_str(r, name);
    response_add(r, v, (size_t)n);
    response_lit(r, "\r\n");
}

/* The three number lines of the deciding rule's result: prefix LIMIT, REMAINING, RESET. */
static void response_numbers(response *r, const char *prefix, const rl_rule_result *res)
{
    response_str(r, prefix);
    response_lit(r, "LIMIT: ");
    response_int(r, res->limit);
    response_lit(r, "\r\n");
    response_str(r, prefix);
    response_lit(r, "REMAINING: ");
    response_int(r, res->remaining);
    response_lit(r, "\r\n");
    response_str(r, prefix);
    response_lit(r, "RESET: ");
    response_int(r, rl_ms_to_s_ceil(res->reset_ms));
    response_lit(r, "\r\n");
}

/* RateLimit-Policy, RateLimit and the legacy X-RateLimit-* of the deciding rule. */
static void response_add_headers(response *r, const rl_config *cfg, const rl_decision *d)
{
    if (d->decider < 0 || (size_t)d->decider >= d->nresults)
        return;
    response_field(r, "RateLimit-Policy: ", d, 0);
    response_field(r, "RateLimit: ", d, 1);
    if (settings_get_headers(cfg)->x_ratelimit) {
        const rl_rule_result *res = &d->results[d->decider];
        response_lit(r, "X-RateLimit-Limit: ");
        response_int(r, res->limit);
        response_lit(r, "\r\nX-RateLimit-Remaining: ");
        response_int(r, res->remaining);
        response_lit(r, "\r\nX-RateLimit-Reset: ");
        response_int(r, rl_ms_to_s_ceil(res->reset_ms));
        response_lit(r, "\r\n");
    }
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

    static const char hex[] = "0123456789abcdef";

    for (; *p && !r->overflow && p - (const unsigned char *)s < RESPONSE_JSON_MAX; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            response_add(r, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            response_add(r, e, 6);
        } else if (*p >= 0x80) {
            response_lit(r, "\\ufffd");
        } else {
            response_add(r, (const char *)p, 1);
        }
    }
    if (*p)
        response_lit(r, "...");
}

/* The RFC 9457 body of a refusal (headers.problem_json). */
static void response_problem(response *r, const request *req, const rl_decision *d, int status,
                             int64_t retry)
{
    response_lit(r, "{\"type\":\"about:blank\",\"title\":\"");
    response_str(r, rl_http_reason(status));
    response_lit(r, "\",\"status\":");
    response_int(r, status);
    response_lit(r, ",\"detail\":\"Rate limit \\\"");
    response_str(r, d->rule != NULL ? rl_rule_name(d->rule) : "?");
    response_lit(r, "\\\" exceeded: retry in ");
    response_int(r, retry);
    response_lit(r, " s.\",\"instance\":\"");
    response_add_json_string(r, req->path);
    response_lit(r, "\",\"retry_after\":");
    response_int(r, retry);
    response_lit(r, "}\n");
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
    response_status(r, status);
    if (settings_get_headers(cfg)->problem_json)
        response_lit(r, "Content-Type: application/problem+json\r\n");
    else
        response_lit(r, "Content-Type: text/plain; charset=utf-8\r\n");
    response_lit(r, "Retry-After: ");
    response_int(r, retry);
    response_lit(r, "\r\n");
    response_add_headers(r, cfg, d);
    response_lit(r, "Cache-Control: no-store\r\n\r\n");
    if (settings_get_headers(cfg)->problem_json) {
        response_problem(r, req, d, status, retry);
    } else if (d->rule != NULL && rl_rule_body(d->rule) != NULL) {
        response_str(r, rl_rule_body(d->rule));
    } else {
        response_lit(r, "Too Many Requests: retry in ");
        response_int(r, retry);
        response_lit(r, " s\n");
    }
}

/* Deny-listed (403) or a missing key (the rule's missing_key_status): no limit was counted,
 * so no rate-limit headers and no Retry-After. */
static void response_rejected(response *r, const rl_decision *d)
{
    int status = d->status >= 400 && d->status <= 599 ? d->status : 403;
    const char *body =
        d->verdict == RL_VERDICT_MISSING_KEY && d->rule != NULL ? rl_rule_body(d->rule) : NULL;

    response_reset(r, status);
    response_status(r, status);
    response_lit(r, "Content-Type: text/plain; charset=utf-8\r\n"
                    "Cache-Control: no-store\r\n"
                    "\r\n");
    if (body != NULL) {
        response_str(r, body);
    } else {
        response_str(r, rl_http_reason(status));
        response_lit(r, "\n");
    }
}

/* Authorizer: only Variable-* headers of a 200 reach the rest of the request. */
static void response_authorized(response *r, const request *req, const rl_decision *d)
{
    response_reset(r, 200);
    /* The client as the limiter resolved it (behind a trusted proxy: the forwarded address,
     * IPv6 grouped by prefix), so Apache's %u and the logs name who was limited. */
    response_lit(r, "Status: 200\r\nVariable-RATELIMIT_CLIENT: ");
    response_str(r, d->client[0] != '\0' ? d->client : req->client);
    response_lit(r, "\r\n");
    if (d->decider >= 0 && (size_t)d->decider < d->nresults) {
        response_numbers(r, "Variable-RATELIMIT_", &d->results[d->decider]);
        response_field(r, "Variable-RATELIMIT_POLICY: ", d, 0);
        response_field(r, "Variable-RATELIMIT: ", d, 1);
    }
    response_lit(r, "\r\n");
}

static void response_responded(response *r, const rl_config *cfg, const rl_decision *d)
{
    response_reset(r, 200);
    response_lit(r, "Status: 200 OK\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n");
    response_add_headers(r, cfg, d);
    response_lit(r, "\r\nOK\n");
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
