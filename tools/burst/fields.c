/* fields.c -- the response header fields rl-burst judges
 *
 *   Retry-After: 6                           delay-seconds only (an HTTP-date is MALFORMED:
 *                                            the filter always sends seconds)
 *   RateLimit: "demo";r=3;t=12, "b";r=0;t=5  one member per rule (RFC 9651 list); r is kept
 *                                            for the followed member, and the smallest r
 *   X-RateLimit-Remaining: 3
 *
 * libcurl hands over one line at a time, with its CRLF and without a NUL. A status line
 * ("HTTP/...") starts a new header block, so an interim 100 Continue leaves nothing behind.
 * Only the first occurrence of each field counts.
 */
#include "fmacros.h"

#include <string.h>
#include <strings.h>

#include "burst.h"

void burst_fields_reset(burst_fields *f)
{
    f->retry_after = BURST_ABSENT;
    f->r = BURST_ABSENT;
    f->r_min = BURST_ABSENT;
    f->x_remaining = BURST_ABSENT;
    f->has_ratelimit = 0;
}

static int fields_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* When line is "name: value", points *value at the value with the blanks and CRLF around
 * it trimmed, and returns 1. */
static int fields_match(const char *line, size_t len, const char *name, const char **value,
                        size_t *vlen)
{
    size_t n = strlen(name), b, e;

    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return 0;
    b = n + 1;
    e = len;
    while (b < e && fields_ows(line[b]))
        b++;
    while (e > b && (fields_ows(line[e - 1]) || line[e - 1] == '\r' || line[e - 1] == '\n'))
        e--;
    *value = line + b;
    *vlen = e - b;
    return 1;
}

/* A non-negative decimal integer filling s[0..n), or BURST_MALFORMED. */
static int64_t fields_uint(const char *s, size_t n)
{
    int64_t v = 0;

    if (n == 0 || n > 18)
        return BURST_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return BURST_MALFORMED;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Parses the RateLimit list: members `"name";r=N;t=N` (a bare token name is taken too),
 * separated by commas. Sets f->r for the member named rule (the first when rule is NULL) and
 * f->r_min; any member without a well-formed r makes both MALFORMED. */
static void fields_ratelimit(burst_fields *f, const char *s, size_t n, const char *rule)
{
    size_t i = 0;
    int first = 1;

    f->has_ratelimit = 1;
    while (i < n) {
        const char *name;
        size_t nlen;
        int64_t r = BURST_MALFORMED;

        while (i < n && fields_ows(s[i]))
            i++;
        if (i < n && s[i] == '"') {
            name = s + ++i;
            while (i < n && s[i] != '"')
                i++;
            nlen = (size_t)(s + i - name);
            if (i++ >= n)
                goto malformed;
        } else {
            name = s + i;
            while (i < n && s[i] != ';' && s[i] != ',' && !fields_ows(s[i]))
                i++;
            nlen = (size_t)(s + i - name);
        }
        if (nlen == 0)
            goto malformed;
        while (i < n && s[i] == ';') { /* parameters: key=value */
            size_t k = ++i, v;
            while (i < n && s[i] != '=' && s[i] != ';' && s[i] != ',')
                i++;
            if (i >= n || s[i] != '=')
                goto malformed;
            v = ++i;
            while (i < n && s[i] != ';' && s[i] != ',' && !fields_ows(s[i]))
                i++;
            if (v - 1 - k == 1 && s[k] == 'r')
                r = fields_uint(s + v, i - v);
        }
        if (r < 0)
            goto malformed;
        if ((rule == NULL && first) ||
            (rule != NULL && strlen(rule) == nlen && memcmp(rule, name, nlen) == 0))
            f->r = r;
        if (f->r_min < 0 || r < f->r_min)
            f->r_min = r;
        first = 0;
        while (i < n && fields_ows(s[i]))
            i++;
        if (i < n && s[i++] != ',')
            goto malformed;
    }
    if (first)
        goto malformed;
    return;
malformed:
    f->r = BURST_MALFORMED;
    f->r_min = BURST_MALFORMED;
}

void burst_fields_line(burst_fields *f, const char *line, size_t len, const char *rule)
{
    const char *v;
    size_t vlen;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        burst_fields_reset(f);
    } else if (fields_match(line, len, "Retry-After", &v, &vlen)) {
        if (f->retry_after == BURST_ABSENT)
            f->retry_after = fields_uint(v, vlen);
    } else if (fields_match(line, len, "RateLimit", &v, &vlen)) {
        if (!f->has_ratelimit)
            fields_ratelimit(f, v, vlen, rule);
    } else if (fields_match(line, len, "X-RateLimit-Remaining", &v, &vlen)) {
        if (f->x_remaining == BURST_ABSENT)
            f->x_remaining = fields_uint(v, vlen);
    }
}
