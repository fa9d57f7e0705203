/* proxy_request.c -- what the proxy sends: method, target, body length and headers
 *
 * The method and the request target (REQUEST_URI: path and query) go out byte for byte; the
 * backend URL only says where to connect. Headers are rebuilt from the HTTP_* parameters
 * minus hop-by-hop ones, then X-Forwarded-For (the peer appended), X-Forwarded-Proto
 * (replaced: it is ours to say) and Forwarded (RFC 7239, one element appended) are set.
 * libcurl's own additions are turned off: "Expect:" (no 100-continue round trip) and
 * "Accept:" when the client sent none.
 *
 * Nothing is allocated per request: the header lines are written back to back ("Name: value",
 * each ended by a NUL) into px->hbuf, and the curl_slist handed to libcurl is an array of
 * nodes pointing into it (libcurl only reads the list); both grow when a request needs more
 * and are kept for the next. The parameters are looked up in one pass over them.
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

/* Starts a line of n bytes (its NUL included): room for it and its offset. Returns 0, or -1
 * when out of memory. */
static int proxy_line(proxy *px, size_t n)
{
    if (px->nh == px->maxh) {
        size_t max = px->maxh ? 2 * px->maxh : 32;
        size_t *off = realloc(px->hoff, max * sizeof *off);
        if (off == NULL)
            return -1;
        px->hoff = off;
        px->maxh = max;
    }
    if (proxy_room(px, n) != 0)
        return -1;
    px->hoff[px->nh++] = px->hlen;
    return 0;
}

/* Appends the line "name: abc" (the value in up to three pieces, b and c may be NULL) to the
 * request's headers. Returns 0, or -1 when out of memory. */
static int proxy_add3(proxy *px, const char *name, const char *a, const char *b, const char *c)
{
    size_t nl = strlen(name), al = strlen(a), bl = b != NULL ? strlen(b) : 0,
           cl = c != NULL ? strlen(c) : 0, vl = al + bl + cl;

    if (nl + 2 + vl >= PROXY_LINE_MAX) {
        log_warn("request header %s of %zu bytes dropped (at most %d)", name, vl, PROXY_LINE_MAX);
        return 0;
    }
    if (proxy_line(px, nl + 2 + vl + 1) != 0)
        return -1;
    proxy_put(px, name, nl);
    /* "Name;" is how libcurl sends a header with an empty value ("Name:" would remove it). */
    if (vl == 0) {
        proxy_put(px, ";", 1);
    } else {
        proxy_put(px, ": ", 2);
        proxy_put(px, a, al);
        proxy_put(px, b, bl);
        proxy_put(px, c, cl);
    }
    proxy_put(px, "", 1);
    return 0;
}

static int proxy_add(proxy *px, const char *name, const char *value)
{
    return proxy_add3(px, name, value, NULL, NULL);
}

/* A line for libcurl as it is ("Expect:" removes its own Expect header). */
static int proxy_add_raw(proxy *px, const char *line)
{
    size_t n = strlen(line) + 1;

    if (proxy_line(px, n) != 0)
        return -1;
    proxy_put(px, line, n);
    return 0;
}

/* Links the nodes over the lines now that hbuf no longer moves. */
static struct curl_slist *proxy_link(proxy *px)
{
    struct curl_slist *node;

    if (px->nh == 0)
        return NULL;
    if (px->nh > px->maxnode) {
        if ((node = realloc(px->node, px->maxh * sizeof *node)) == NULL)
            return NULL;
        px->node = node;
        px->maxnode = px->maxh;
    }
    for (size_t i = 0; i < px->nh; i++) {
        px->node[i].data = px->hbuf + px->hoff[i];
        px->node[i].next = i + 1 < px->nh ? &px->node[i + 1] : NULL;
    }
    return px->node;
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

/* Transfer-Encoding ends in "chunked" when a body is chunked (RFC 9112 6.3). */
static int proxy_has_chunked(const char *te)
{
    size_t n = strlen(te);
    while (n > 0 && (te[n - 1] == ' ' || te[n - 1] == '\t'))
        n--;
    return n >= 7 && strncasecmp(te + n - 7, "chunked", 7) == 0;
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

/* Method and body: GET without a body as libcurl does it; HEAD without waiting for a body;
 * everything else with the client's method verbatim. Every option that says so is set each
 * time: the handle keeps the previous request's. */
static int proxy_method_body(proxy *px, const proxy_io *io, const char *const v[P_COUNT])
{
    const char *method = v[P_REQUEST_METHOD];
    const char *cl = v[P_CONTENT_LENGTH];
    const char *te = v[P_HTTP_TRANSFER_ENCODING];
    CURL *c = px->curl;
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
    } else if (te != NULL && proxy_has_chunked(te) && io->body_to_eof) {
        len = -1; /* the web server did not count it: stream it until its end, chunked */
    }
    px->x.body_left = len;
    /* An empty body counted by the client goes out with its "Content-Length: 0" where the
     * method expects a body (POST, PUT, PATCH, ...): libcurl sends none for a request without
     * a body, and a backend may then refuse it (lighttpd: 411 Length Required). */
    px->x.empty_length = len == 0 && cl != NULL && cl[0] != '\0' && !proxy_no_body(method);

    /* HTTPGET clears both NOBODY and UPLOAD; NOBODY alone would leave UPLOAD as it was. */
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0 && len == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        return 0;
    }
    if (len != 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L); /* a body from the read callback */
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") != 0 || len != 0 ? method : (char *)NULL);
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
        if (strlen(skip[i]) == n && strncasecmp(name, skip[i], n) == 0)
            return 1;
    return 0;
}

static int proxy_copy_headers(proxy *px, char **params, const char *connection, int *have_accept)
{
    char name[256], shown[64];

    for (char **p = params; *p != NULL; p++) {
        if (strncmp(*p, "HTTP_", 5) != 0)
            continue;
        const char *eq = strchr(*p + 5, '=');
        if (eq == NULL)
            continue;
        int n = proxy_header_name(*p + 5, (size_t)(eq - *p - 5), name, sizeof name);
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
        if (n == 6 && strcasecmp(name, "Accept") == 0)
            *have_accept = 1;
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
    int status, have_accept = 0;

    proxy_params(io->params, v);
    px->hlen = 0;
    px->nh = 0;
    if ((status = proxy_target(px, v)) != 0)
        return status;
    if ((status = proxy_method_body(px, io, v)) != 0)
        return status;
    curl_easy_setopt(px->curl, CURLOPT_REQUEST_TARGET, px->target);
    if (proxy_copy_headers(px, io->params, v[P_HTTP_CONNECTION], &have_accept) != 0 ||
        proxy_forwarding_headers(px, v) != 0 || proxy_add_raw(px, "Expect:") != 0 ||
        (!have_accept && proxy_add_raw(px, "Accept:") != 0) ||
        (px->x.body_left < 0 && proxy_add_raw(px, "Transfer-Encoding: chunked") != 0) ||
        (px->x.empty_length && proxy_add_raw(px, "Content-Length: 0") != 0) ||
        proxy_link(px) == NULL) {
        log_error("500: out of memory building the request headers");
        return 500;
    }
    curl_easy_setopt(px->curl, CURLOPT_HTTPHEADER, px->node);
    return 0;
}
