/* http.c -- the HTTP vocabulary: headers, cookies, the Host, tokens, reasons (see http.h)
 *
 * Cookie header grammar (RFC 6265 5.4, as browsers send it): pairs "name=value" separated
 * by ';' and optional spaces; a value may be wrapped in double quotes. Servers are lenient
 * with what clients send, so a pair without '=' is skipped rather than failing the header.
 */
#include "fmacros.h"

#include "http.h"

#include <string.h>

const char *rl_http_header(const rl_request *req, const char *lowercase_name)
{
    return req->header != NULL ? req->header(req->header_ud, lowercase_name) : NULL;
}

static int http_ows(char c)
{
    return c == ' ' || c == '\t';
}

int rl_http_cookie(const char *header, const char *name, const char **val, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = header;

    if (header == NULL)
        return 0;
    while (*p != '\0') {
        while (http_ows(*p) || *p == ';')
            p++;
        const char *pair = p;
        size_t plen = strcspn(p, ";");
        const char *eq = memchr(pair, '=', plen);
        p += plen;
        if (eq == NULL)
            continue;
        /* The name, without the spaces a sloppy client leaves before '='. */
        size_t n = (size_t)(eq - pair);
        while (n > 0 && http_ows(pair[n - 1]))
            n--;
        if (n != nlen || memcmp(pair, name, nlen) != 0)
            continue;
        const char *v = eq + 1, *e = pair + plen;
        while (v < e && http_ows(*v))
            v++;
        while (e > v && http_ows(e[-1]))
            e--;
        if (e - v >= 2 && *v == '"' && e[-1] == '"') {
            v++;
            e--;
        }
        *val = v;
        *len = (size_t)(e - v);
        return 1;
    }
    return 0;
}

size_t rl_http_host(const char *host, const char **start)
{
    if (host == NULL) {
        *start = "";
        return 0;
    }
    while (http_ows(*host))
        host++;
    if (host[0] == '[') { /* IPv6 literal: up to the bracket */
        const char *close = strchr(host, ']');
        *start = host + 1;
        return close != NULL ? (size_t)(close - host - 1) : 0;
    }
    *start = host;
    size_t n = strcspn(host, ":");
    while (n > 0 && http_ows(host[n - 1]))
        n--;
    if (n > 0 && host[n - 1] == '.') /* "example.com." names the same host */
        n--;
    return n;
}

int rl_http_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

const char *rl_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 418: return "I'm a teapot";
    case 420: return "Enhance Your Calm";
    case 429: return "Too Many Requests";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 509: return "Bandwidth Limit Exceeded";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}
