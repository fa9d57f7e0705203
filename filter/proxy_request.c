/* proxy_request.c -- what the proxy sends: method, target, body length and headers
 *
 * The method and the request target (REQUEST_URI: path and query) go out byte for byte; the
 * backend URL only says where to connect. Headers are rebuilt from the HTTP_* parameters
 * minus hop-by-hop ones, then X-Forwarded-For (the peer appended), X-Forwarded-Proto
 * (replaced: it is ours to say) and Forwarded (RFC 7239, one element appended) are set. Host
 * is the client's, else the backend URL's host and port. The body is framed by
 * Content-Length when its length is known, else chunked; no "Expect: 100-continue" (no round
 * trip before the body), nothing else of our own (no Accept, no User-Agent).
 *
 * Nothing is allocated per request: the whole head, request line first, is written into
 * px->hbuf ready to send, which grows when a request needs more and is kept for the next.
 * The parameters are looked up in one pass over them; a repeated header name is found in a
 * table of the names seen (px->seen), not by going over the ones before it again.
 */
#include "../core/fmacros.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "proxy_headers.h"
#include "proxy_int.h"
#include "http.h"

#define PROXY_LINE_MAX 16384 /* one header line we build; longer ones are dropped, logged */

static int proxy_refuse(const char *what, const char *value)
{
    char shown[128];
    log_warn("400: %s \"%s\" cannot be forwarded", what, log_escape(shown, sizeof shown, value));
    return 400;
}

/* Makes room for n more bytes in px->hbuf. Returns 0, or -1 when out of memory. */
static int proxy_room(proxy *px, size_t n)
{
    size_t cap = px->hcap ? px->hcap : 4096;
    char *b;

    if (px->hlen + n <= px->hcap)
        return 0;
    while (cap < px->hlen + n)
        cap *= 2;
    if ((b = realloc(px->hbuf, cap)) == NULL)
        return -1;
    px->hbuf = b;
    px->hcap = cap;
    return 0;
}

static void proxy_put(proxy *px, const char *s, size_t n)
{
    if (n == 0) /* s may be NULL then */
        return;
    memcpy(px->hbuf + px->hlen, s, n);
    px->hlen += n;
}

/* Appends the line "name: abc\r\n" (the value in up to three pieces, b and c may be NULL) to
 * the request head. Returns 0, or -1 when out of memory. */
static int proxy_add3(proxy *px, const char *name, const char *a, const char *b, const char *c)
{
    size_t nl = strlen(name), al = strlen(a), bl = b != NULL ? strlen(b) : 0,
           cl = c != NULL ? strlen(c) : 0, vl = al + bl + cl;

    if (nl + 2 + vl >= PROXY_LINE_MAX) {
        log_warn("request header %s of %zu bytes dropped (at most %d)", name, vl, PROXY_LINE_MAX);
        return 0;
    }
    if (proxy_room(px, nl + 2 + vl + 2) != 0)
        return -1;
    proxy_put(px, name, nl);
    proxy_put(px, vl > 0 ? ": " : ":", vl > 0 ? 2 : 1);
    proxy_put(px, a, al);
    proxy_put(px, b, bl);
    proxy_put(px, c, cl);
    proxy_put(px, "\r\n", 2);
    return 0;
}

static int proxy_add(proxy *px, const char *name, const char *value)
{
    return proxy_add3(px, name, value, NULL, NULL);
}

/* A line of our own, "Name: value" without its line end. */
static int proxy_add_raw(proxy *px, const char *line)
{
    size_t n = strlen(line);

    if (proxy_room(px, n + 2) != 0)
        return -1;
    proxy_put(px, line, n);
    proxy_put(px, "\r\n", 2);
    return 0;
}

/* The parameters the proxy reads, found in one pass (the first of each, as FCGX_GetParam). */
enum {
    P_REQUEST_METHOD,
    P_CONTENT_LENGTH,
    P_CONTENT_TYPE,
    P_REQUEST_URI,
    P_SCRIPT_NAME,
    P_PATH_INFO,
    P_QUERY_STRING,
    P_HTTPS,
    P_REQUEST_SCHEME,
    P_REMOTE_ADDR,
    P_HTTP_TRANSFER_ENCODING,
    P_HTTP_CONNECTION,
    P_HTTP_X_FORWARDED_FOR,
    P_HTTP_FORWARDED,
    P_HTTP_HOST,
    P_COUNT
};

static void proxy_params(char **params, const char *v[P_COUNT])
{
    static const struct {
        const char *name;
        size_t len;
    } want[P_COUNT] = {
#define P(x) {#x, sizeof #x - 1}
        P(REQUEST_METHOD),
        P(CONTENT_LENGTH),
        P(CONTENT_TYPE),
        P(REQUEST_URI),
        P(SCRIPT_NAME),
        P(PATH_INFO),
        P(QUERY_STRING),
        P(HTTPS),
        P(REQUEST_SCHEME),
        P(REMOTE_ADDR),
        P(HTTP_TRANSFER_ENCODING),
        P(HTTP_CONNECTION),
        P(HTTP_X_FORWARDED_FOR),
        P(HTTP_FORWARDED),
        P(HTTP_HOST),
#undef P
    };

    for (int i = 0; i < P_COUNT; i++)
        v[i] = NULL;
    for (char **p = params; *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq == NULL)
            continue;
        size_t n = (size_t)(eq - *p);
        for (int i = 0; i < P_COUNT; i++)
            if (want[i].len == n && v[i] == NULL && memcmp(*p, want[i].name, n) == 0) {
                v[i] = eq + 1;
                break;
            }
    }
}

/* The request target: REQUEST_URI, else SCRIPT_NAME PATH_INFO ?QUERY_STRING, else "/". */
static int proxy_target(proxy *px, const char *const v[P_COUNT])
{
    const char *uri = v[P_REQUEST_URI];
    int n;

    if (uri != NULL && uri[0] != '\0') {
        size_t len = strlen(uri);
        n = len > INT_MAX ? INT_MAX : (int)len;
        if (len < sizeof px->target)
            memcpy(px->target, uri, len + 1);
    } else {
        const char *s = v[P_SCRIPT_NAME], *i = v[P_PATH_INFO], *q = v[P_QUERY_STRING];
        n = snprintf(px->target, sizeof px->target, "%s%s%s%s", s ? s : "", i ? i : "",
                     q && q[0] ? "?" : "", q ? q : "");
        if (n == 0)
            n = snprintf(px->target, sizeof px->target, "/");
    }
    if (n < 0 || (size_t)n >= sizeof px->target) {
        log_warn("414: request target of %d bytes cannot be forwarded (at most %d)", n,
                 PROXY_TARGET_MAX - 1);
        return 414;
    }
    /* It goes into the request line as is: a space or control byte would end or split it. */
    for (const unsigned char *p = (const unsigned char *)px->target; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return proxy_refuse("request target", px->target);
    return 0;
}

static int proxy_is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!rl_http_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* The methods whose requests have no body as a rule (RFC 9110 9.3). */
static int proxy_no_body(const char *method)
{
    static const char *const none[] = {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        if (strcmp(method, none[i]) == 0)
            return 1;
    return 0;
}

/* Method and body: the client's method verbatim (HEAD: the answer has no body), the body's
 * length from CONTENT_LENGTH, or until its end (chunked) when the web server gives none. */
static int proxy_method_body(proxy *px, const proxy_io *io, const char *const v[P_COUNT])
{
    const char *method = v[P_REQUEST_METHOD];
    const char *cl = v[P_CONTENT_LENGTH];
    const char *te = v[P_HTTP_TRANSFER_ENCODING];
    int64_t len = 0;

    if (method == NULL || method[0] == '\0')
        method = "GET";
    if (!proxy_is_token(method))
        return proxy_refuse("method", method);
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        errno = 0;
        long long n = strtoll(cl, &end, 10);
        if (*end != '\0' || errno != 0 || n < 0 || cl[0] == '-' || cl[0] == '+')
            return proxy_refuse("CONTENT_LENGTH", cl);
        len = n;
    } else if (te != NULL && io->body_to_eof && proxy_has_token(te, strlen(te), "chunked", 1)) {
        /* chunked when it is the last coding (RFC 9112 6.3), as the answer's is read */
        len = -1; /* the web server did not count it: stream it until its end, chunked */
    }
    px->x.body_left = len;
    /* An empty body counted by the client goes out with its "Content-Length: 0" where the
     * method expects a body (POST, PUT, PATCH, ...): a backend may then refuse it (lighttpd: 411 Length Required). */
    px->x.empty_length = len == 0 && cl != NULL && cl[0] != '\0' && !proxy_no_body(method);

    px->x.head_request = strcmp(method, "HEAD") == 0;
    /* The request line: method, target, version. */
    if (proxy_room(px, strlen(method) + strlen(px->target) + 12) != 0)
        return 500;
    proxy_put(px, method, strlen(method));
    proxy_put(px, " ", 1);
    proxy_put(px, px->target, strlen(px->target));
    proxy_put(px, " HTTP/1.1\r\n", 11);
    return 0;
}

static const char *proxy_proto(const char *const v[P_COUNT])
{
    const char *https = v[P_HTTPS];
    const char *scheme = v[P_REQUEST_SCHEME];

    if (https != NULL && (strcasecmp(https, "on") == 0 || strcmp(https, "1") == 0))
        return "https";
    if (scheme != NULL && strcasecmp(scheme, "https") == 0)
        return "https";
    return "http";
}

/* Headers that are not copied as they came: ours to set, or the web server's to frame. */
static int proxy_skip(const char *name, size_t n)
{
    static const char *const skip[] = {"X-Forwarded-For", "X-Forwarded-Proto",
                                       "Forwarded",       "Content-Length",
                                       "Content-Type",    "Expect",
                                       "Proxy",           "Host"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (proxy_name_is(name, n, skip[i]))
            return 1;
    return 0;
}

/* 1 when the parameter's name (HTTP_..., len bytes before its '=') is the form a web server
 * writes: upper case, digits and '_' only. */
static int proxy_param_canonical(const char *p, size_t len)
{
    for (size_t i = 5; i < len; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
            return 0;
    return 1;
}

/* Looks up the name params[i] (len bytes, '=' after it) among the names seen before in this
 * request and adds it. Returns 1 when seen before, 0 when new, -1 when the table is full. */
static int proxy_param_seen(proxy *px, char **params, size_t i, size_t len)
{
    const char *p = params[i];
    size_t mask = sizeof px->seen / sizeof px->seen[0] - 1;

    for (size_t s = (size_t)rl_siphash13(px->seen_key, p, len) & mask;; s = (s + 1) & mask) {
        if (px->seen[s].stamp != px->seen_stamp) {
            if (px->seen_count == PROXY_SEEN_MAX)
                return -1;
            px->seen[s].stamp = px->seen_stamp;
            px->seen[s].at = (uint32_t)i;
            px->seen_count++;
            return 0;
        }
        const char *q = params[px->seen[s].at];
        if (strncmp(q, p, len) == 0 && q[len] == '=')
            return 1;
    }
}

/* Empties the table of seen names for a new request. */
static void proxy_seen_reset(proxy *px)
{
    if (++px->seen_stamp == 0) { /* the stamp wrapped: old stamps could look current */
        memset(px->seen, 0, sizeof px->seen);
        px->seen_stamp = 1;
    }
    px->seen_count = 0;
}

/* The request's headers, as the web server passed them (HTTP_* parameters). The backend gets
 * exactly the headers the decision could read: the first parameter of each name, and only
 * names in the form web servers write (request.c reads the first HTTP_X_KEY for "X-Key").
 * So "X-Key" and "X_Key", which lighttpd both passes as HTTP_X_KEY, or a raw FastCGI peer's
 * HTTP_x_key, never reach the backend as a second X-Key line the limit did not count. */
static int proxy_copy_headers(proxy *px, char **params, const char *connection)
{
    char name[256], shown[64];

    proxy_seen_reset(px);
    for (char **p = params; *p != NULL; p++) {
        if (strncmp(*p, "HTTP_", 5) != 0)
            continue;
        const char *eq = strchr(*p + 5, '=');
        if (eq == NULL)
            continue;
        size_t plen = (size_t)(eq - *p);
        int seen = proxy_param_seen(px, params, (size_t)(p - params), plen);
        if (seen < 0) { /* every later name would be past the bound too: one line for all */
            log_warn("request headers past the first %d distinct names: dropped", PROXY_SEEN_MAX);
            break;
        }
        if (!proxy_param_canonical(*p, plen) || seen) {
            /* The name only: the value may be a credential. */
            snprintf(name, sizeof name, "%.*s", (int)(plen < 255 ? plen : 255), *p);
            log_warn("request parameter %s is not the first of its header, or not a web "
                     "server's spelling of one: dropped",
                     log_escape(shown, sizeof shown, name));
            continue;
        }
        int n = proxy_header_name(*p + 5, plen - 5, name, sizeof name);
        if (n < 0) {
            log_warn("request parameter \"%s\" is not a header name: dropped",
                     log_escape(shown, sizeof shown, *p));
            continue;
        }
        if (proxy_skip(name, (size_t)n) || proxy_hop_by_hop(name, (size_t)n, connection))
            continue;
        if (!proxy_header_value_ok(eq + 1)) {
            log_warn("request header %s holds CR or LF: dropped", name);
            continue;
        }
        if (proxy_add(px, name, eq + 1) != 0)
            return -1;
    }
    return 0;
}

static int proxy_forwarding_headers(proxy *px, const char *const v[P_COUNT])
{
    static char fw[PROXY_LINE_MAX];
    const char *peer = v[P_REMOTE_ADDR];
    const char *xff = v[P_HTTP_X_FORWARDED_FOR];
    const char *fwd = v[P_HTTP_FORWARDED];
    const char *host = v[P_HTTP_HOST];
    const char *ctype = v[P_CONTENT_TYPE];
    const char *proto = proxy_proto(v);

    if (peer == NULL)
        peer = "unknown";
    if (host != NULL && host[0] != '\0' && proxy_header_value_ok(host) &&
        proxy_add(px, "Host", host) != 0)
        return -1;
    if (ctype != NULL && ctype[0] != '\0' && proxy_header_value_ok(ctype) &&
        proxy_add(px, "Content-Type", ctype) != 0)
        return -1;
    if (xff != NULL && (xff[0] == '\0' || !proxy_header_value_ok(xff)))
        xff = NULL;
    if ((xff != NULL ? proxy_add3(px, "X-Forwarded-For", xff, ", ", peer)
                     : proxy_add(px, "X-Forwarded-For", peer)) != 0)
        return -1;
    if (proxy_add(px, "X-Forwarded-Proto", proto) != 0)
        return -1;
    if (fwd != NULL && !proxy_header_value_ok(fwd))
        fwd = NULL;
    if (proxy_forwarded(fw, sizeof fw, fwd, peer, proto) > 0 && proxy_add(px, "Forwarded", fw) != 0)
        return -1;
    return 0;
}

int proxy_request_setup(proxy *px, const proxy_io *io)
{
    const char *v[P_COUNT];
    char length[40];
    int status;

    proxy_params(io->params, v);
    px->hlen = 0;
    if ((status = proxy_target(px, v)) != 0)
        return status;
    if ((status = proxy_method_body(px, io, v)) != 0) {
        if (status == 500)
            log_error("500: out of memory building the request headers");
        return status;
    }
    if (px->x.body_left > 0)
        snprintf(length, sizeof length, "Content-Length: %" PRId64, px->x.body_left);
    if (((v[P_HTTP_HOST] == NULL || v[P_HTTP_HOST][0] == '\0' ||
          !proxy_header_value_ok(v[P_HTTP_HOST])) &&
         proxy_add(px, "Host", px->authority) != 0) ||
        proxy_copy_headers(px, io->params, v[P_HTTP_CONNECTION]) != 0 ||
        proxy_forwarding_headers(px, v) != 0 ||
        (px->x.body_left > 0 && proxy_add_raw(px, length) != 0) ||
        (px->x.body_left < 0 && proxy_add_raw(px, "Transfer-Encoding: chunked") != 0) ||
        (px->x.empty_length && proxy_add_raw(px, "Content-Length: 0") != 0) ||
        proxy_room(px, 2) != 0) {
        log_error("500: out of memory building the request headers");
        return 500;
    }
    proxy_put(px, "\r\n", 2);
    return 0;
}
