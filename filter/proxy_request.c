/* proxy_request.c -- what the proxy sends: method, target, body length and headers
 *
 * The method and the request target (REQUEST_URI: path and query) go out byte for byte; the
 * backend URL only says where to connect. Headers are rebuilt from the HTTP_* parameters
 * minus hop-by-hop ones, then X-Forwarded-For (the peer appended), X-Forwarded-Proto
 * (replaced: it is ours to say) and Forwarded (RFC 7239, one element appended) are set.
 * libcurl's own additions are turned off: "Expect:" (no 100-continue round trip) and
 * "Accept:" when the client sent none.
 */
#include "../core/fmacros.h"

#include <errno.h>
#include <fcgiapp.h>
#include <inttypes.h>
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

/* Appends "name: value" to px->headers. Returns 0, or -1 when out of memory. */
static int proxy_add(proxy *px, const char *name, const char *value)
{
    static char line[PROXY_LINE_MAX];
    struct curl_slist *l;
    /* "Name;" is how libcurl sends a header with an empty value ("Name:" would remove it). */
    int n = value[0] == '\0' ? snprintf(line, sizeof line, "%s;", name)
                             : snprintf(line, sizeof line, "%s: %s", name, value);

    if (n < 0 || (size_t)n >= sizeof line) {
        log_warn("request header %s of %zu bytes dropped (at most %d)", name, strlen(value),
                 PROXY_LINE_MAX);
        return 0;
    }
    l = curl_slist_append(px->headers, line);
    if (l == NULL)
        return -1;
    px->headers = l;
    return 0;
}

static int proxy_add_raw(proxy *px, const char *line)
{
    struct curl_slist *l = curl_slist_append(px->headers, line);
    if (l == NULL)
        return -1;
    px->headers = l;
    return 0;
}

/* The request target: REQUEST_URI, else SCRIPT_NAME PATH_INFO ?QUERY_STRING, else "/". */
static int proxy_target(proxy *px, char **params)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", params);
    int n;

    if (uri != NULL && uri[0] != '\0') {
        n = snprintf(px->target, sizeof px->target, "%s", uri);
    } else {
        const char *s = FCGX_GetParam("SCRIPT_NAME", params);
        const char *i = FCGX_GetParam("PATH_INFO", params);
        const char *q = FCGX_GetParam("QUERY_STRING", params);
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

/* Method and body: GET without a body as libcurl does it; HEAD without waiting for a body;
 * everything else with the client's method verbatim. */
static int proxy_method_body(proxy *px, const proxy_io *io)
{
    const char *method = FCGX_GetParam("REQUEST_METHOD", io->params);
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", io->params);
    const char *te = FCGX_GetParam("HTTP_TRANSFER_ENCODING", io->params);
    CURL *c = px->curl;
    int64_t len = 0;

    if (method == NULL || method[0] == '\0')
        method = "GET";
    if (!proxy_is_token(method))
        return proxy_refuse("method", method);
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (*end != '\0' || errno != 0 || v < 0 || cl[0] == '-' || cl[0] == '+')
            return proxy_refuse("CONTENT_LENGTH", cl);
        len = v;
    } else if (te != NULL && proxy_has_chunked(te) && io->body_to_eof) {
        len = -1; /* the web server did not count it: stream it until its end, chunked */
    }
    px->x.body_left = len;

    if (strcmp(method, "HEAD") == 0 && len == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        return 0;
    }
    if (len != 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L); /* a body from the read callback */
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, "GET") != 0 || len != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

static const char *proxy_proto(char **params)
{
    const char *https = FCGX_GetParam("HTTPS", params);
    const char *scheme = FCGX_GetParam("REQUEST_SCHEME", params);

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

static int proxy_copy_headers(proxy *px, char **params, int *have_accept)
{
    const char *connection = FCGX_GetParam("HTTP_CONNECTION", params);
    char name[256], shown[64];

    for (char **p = params; *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (strncmp(*p, "HTTP_", 5) != 0 || eq == NULL)
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
        if (strcasecmp(name, "Accept") == 0)
            *have_accept = 1;
        if (proxy_add(px, name, eq + 1) != 0)
            return -1;
    }
    return 0;
}

static int proxy_forwarding_headers(proxy *px, char **params)
{
    static char v[PROXY_LINE_MAX];
    const char *peer = FCGX_GetParam("REMOTE_ADDR", params);
    const char *xff = FCGX_GetParam("HTTP_X_FORWARDED_FOR", params);
    const char *fwd = FCGX_GetParam("HTTP_FORWARDED", params);
    const char *host = FCGX_GetParam("HTTP_HOST", params);
    const char *ctype = FCGX_GetParam("CONTENT_TYPE", params);
    const char *proto = proxy_proto(params);
    int n;

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
    n = snprintf(v, sizeof v, "%s%s%s", xff ? xff : "", xff ? ", " : "", peer);
    if (n > 0 && (size_t)n < sizeof v && proxy_add(px, "X-Forwarded-For", v) != 0)
        return -1;
    if (proxy_add(px, "X-Forwarded-Proto", proto) != 0)
        return -1;
    if (fwd != NULL && !proxy_header_value_ok(fwd))
        fwd = NULL;
    if (proxy_forwarded(v, sizeof v, fwd, peer, proto) > 0 && proxy_add(px, "Forwarded", v) != 0)
        return -1;
    return 0;
}

int proxy_request_setup(proxy *px, const proxy_io *io)
{
    int status, have_accept = 0;

    if ((status = proxy_target(px, io->params)) != 0)
        return status;
    if ((status = proxy_method_body(px, io)) != 0)
        return status;
    curl_easy_setopt(px->curl, CURLOPT_REQUEST_TARGET, px->target);
    if (proxy_copy_headers(px, io->params, &have_accept) != 0 ||
        proxy_forwarding_headers(px, io->params) != 0 || proxy_add_raw(px, "Expect:") != 0 ||
        (!have_accept && proxy_add_raw(px, "Accept:") != 0) ||
        (px->x.body_left < 0 && proxy_add_raw(px, "Transfer-Encoding: chunked") != 0)) {
        log_error("500: out of memory building the request headers");
        return 500;
    }
    curl_easy_setopt(px->curl, CURLOPT_HTTPHEADER, px->headers);
    return 0;
}
