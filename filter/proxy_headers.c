/* proxy_headers.c -- header rules of the proxy, as pure string functions (see proxy_headers.h)
 */
#include "../core/fmacros.h"

#include "proxy_headers.h"
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int proxy_header_name(const char *p, size_t n, char *name, size_t size)
{
    int upper = 1;

    if (n == 0 || n >= size)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '_') {
            name[i] = '-';
            upper = 1;
            continue;
        }
        if (!rl_http_tchar(c))
            return -1;
        if (c >= 'A' && c <= 'Z' && !upper)
            c = (unsigned char)(c - 'A' + 'a');
        else if (c >= 'a' && c <= 'z' && upper)
            c = (unsigned char)(c - 'a' + 'A');
        name[i] = (char)c;
        upper = 0;
    }
    name[n] = '\0';
    return (int)n;
}

int proxy_name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* 1 when the comma-separated token list names name[0..n). */
static int proxy_listed(const char *list, const char *name, size_t n)
{
    const char *p = list;

    while (*p != '\0') {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

int proxy_hop_by_hop(const char *name, size_t n, const char *connection)
{
    static const char *const fixed[] = {"Connection", "Keep-Alive",        "TE",
                                        "Trailer",    "Transfer-Encoding", "Upgrade"};

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (proxy_name_is(name, n, fixed[i]))
            return 1;
    if (n >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
        return 1;
    return connection != NULL && proxy_listed(connection, name, n);
}

/* Appends s[0..n) at *at when it fits before end. */
static int proxy_cat(char **at, const char *end, const char *s, size_t n)
{
    if ((size_t)(end - *at) <= n)
        return -1;
    memcpy(*at, s, n);
    *at += n;
    return 0;
}

/* Built with memcpy rather than snprintf: it is made for every forwarded request. */
int proxy_forwarded(char *buf, size_t size, const char *prev, const char *addr, const char *proto)
{
    int v6 = strchr(addr, ':') != NULL;
    char *at = buf;
    const char *end = buf + size;

    if (size == 0)
        return -1;
    if (prev != NULL && prev[0] != '\0' &&
        (proxy_cat(&at, end, prev, strlen(prev)) != 0 || proxy_cat(&at, end, ", ", 2) != 0))
        return -1;
    if (proxy_cat(&at, end, v6 ? "for=\"[" : "for=", v6 ? 6 : 4) != 0 ||
        proxy_cat(&at, end, addr, strlen(addr)) != 0 ||
        (v6 && proxy_cat(&at, end, "]\"", 2) != 0) || proxy_cat(&at, end, ";proto=", 7) != 0 ||
        proxy_cat(&at, end, proto, strlen(proto)) != 0)
        return -1;
    *at = '\0';
    return (int)(at - buf);
}

int proxy_header_value_ok(const char *value)
{
    return strpbrk(value, "\r\n") == NULL;
}
