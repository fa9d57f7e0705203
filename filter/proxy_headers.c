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

static int proxy_name_is(const char *name, size_t n, const char *want)
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

int proxy_forwarded(char *buf, size_t size, const char *prev, const char *addr, const char *proto)
{
    int v6 = strchr(addr, ':') != NULL;
    int n = snprintf(buf, size, "%s%sfor=%s%s%s%s;proto=%s", prev != NULL ? prev : "",
                     prev != NULL && prev[0] != '\0' ? ", " : "", v6 ? "\"[" : "", addr,
                     v6 ? "]" : "", v6 ? "\"" : "", proto);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

int proxy_header_value_ok(const char *value)
{
    return strpbrk(value, "\r\n") == NULL;
}
