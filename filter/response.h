/* response.h -- the answer to one request: status line, headers, body
 *
 * A response is built whole into a fixed buffer (nothing allocated per request), then sent
 * in one write through the request's streams (fcgi_loop.c). What is said:
 *
 *   authorizer, allowed   Status: 200, Variable-RATELIMIT_CLIENT (the client address, always:
 *                         Apache's UserExpr needs a variable that is always there) and, when
 *                         a rule matched, the decider's state as
 *                         Variable-RATELIMIT_LIMIT / _REMAINING / _RESET (seconds),
 *                         Variable-RATELIMIT_POLICY and Variable-RATELIMIT (IETF field values);
 *                         the web server turns each into a request environment variable.
 *   responder, allowed    Status: 200, RateLimit-Policy, RateLimit, X-RateLimit-* (when
 *                         configured), body "OK\n".
 *   refused (any role)    Status: the refusing rule's status (429 Too Many Requests unless
 *                         configured), Retry-After, RateLimit-Policy, RateLimit, X-RateLimit-*
 *                         (when configured), Cache-Control: no-store, the rule's body or
 *                         "Too Many Requests: retry in N s\n"; with headers.problem_json,
 *                         Content-Type application/problem+json and the RFC 9457 object
 *                         {"type":"about:blank","title":REASON,"status":N,"detail":...,
 *                         "instance":PATH,"retry_after":SECONDS} instead.
 *   deny-listed           403 Forbidden, body "Forbidden\n"; no rate-limit headers.
 *   missing key           the rule's missing_key_status (400) and its body, or the reason.
 *   errors                400 / 414 / 500 with a one-line text body.
 */
#ifndef FILTER_RESPONSE_H
#define FILTER_RESPONSE_H

#include "ratelimit.h"
#include "request.h"

#define RESPONSE_MAX 16384

typedef struct response {
    int status;     /* the HTTP status it carries */
    int overflow;   /* set when something did not fit: the response is then an error 500 */
    size_t len;
    char buf[RESPONSE_MAX];
} response;

/* Fills r from a decision; cfg and d are borrowed for the call. */
void response_decision(response *r, const rl_config *cfg, const request *req,
                       const rl_decision *d);
/* Fills r with only the rate-limit header lines of d ("Name: value\r\n" each; nothing when no
 * rule matched), for a response made elsewhere (the proxy's). */
void response_limit_lines(response *r, const rl_config *cfg, const rl_decision *d);
/* Fills r with an error status (400, 403, 414, 500) and its text. */
void response_error(response *r, int status);

#endif
