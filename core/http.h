/* http.h -- the HTTP vocabulary (internal): what a rl_request carries (headers, cookies, the
 * Host), token characters, status reason phrases
 *
 * Nothing is copied or allocated: results point into the caller's strings, as (pointer,
 * length) pairs where a value is a slice of a larger string.
 */
#ifndef RL_HTTP_H
#define RL_HTTP_H

#include <stddef.h>

#include "ratelimit.h"

/* The value of header `lowercase_name`, or NULL when absent or when the request has no
 * header callback. Borrowed from the caller of rl_decide. */
const char *rl_http_header(const rl_request *req, const char *lowercase_name);

/* Finds cookie `name` (case-sensitive) in a Cookie header value: the first "name=value" of the
 * semicolon-separated list. A value in double quotes is returned without them. Returns 1 with
 * val and len set, or 0 when absent. */
int rl_http_cookie(const char *header, const char *name, const char **val, size_t *len);

/* The host part of a Host header value: "[::1]:8080" -> "::1", "Example.com:80" ->
 * "Example.com". Returns its length (0 when empty) and sets *start. */
size_t rl_http_host(const char *host, const char **start);

/* 1 when c is an RFC 9110 tchar: what a method, a header name or a token is made of. */
int rl_http_tchar(int c);

/* The reason phrase of an HTTP status (nginx's fastcgi_pass wants one on a Status line): the
 * registered phrase of every status this program sends (a rule may pick any 400..599), or a
 * generic one of its class ("Client Error", "Server Error"; "OK" below 400). Never NULL. */
const char *rl_http_reason(int status);

#endif
