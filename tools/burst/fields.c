/* fields.c -- the response header fields rl-burst judges
 *
 *   Retry-After: 6                           delay-seconds only (an HTTP-date is MALFORMED:
 *                                            the filter always sends seconds)
 *   RateLimit: "demo";r=3;t=12, "b";r=0;t=5  one member per rule (RFC 9651 list); r is kept
 *                                            for the followed member, and the smallest r
 *   X-RateLimit-Remaining: 3
 *   RateLimit-Policy: "demo";q=10;w=60       q and w of the followed member, read once from
 *                                            the run's first answer (policy.c), not per record
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
int burst_header_value(const char *line, size_t len, const char *name, const char **value,
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

/* One member of a RateLimit or RateLimit-Policy list: its name and the parameters the harness
 * reads, each BURST_ABSENT when not there, BURST_MALFORMED when not a non-negative integer. */
typedef struct fields_member {
    const char *name;
    size_t nlen;
    int64_t r, q, w;
} fields_member;

/* Parses the member starting at s[*pi] (`"name";k=v;k=v`, a bare token name is taken too) and
 * the comma after it, and moves *pi past them. Returns 0, or -1 when it is malformed. */
static int fields_member_next(const char *s, size_t n, size_t *pi, fields_member *m)
{
    size_t i = *pi;

    m->r = m->q = m->w = BURST_ABSENT;
    while (i < n && fields_ows(s[i]))
        i++;
    if (i < n && s[i] == '"') {
        m->name = s + ++i;
        while (i < n && s[i] != '"')
            i++;
        m->nlen = (size_t)(s + i - m->name);
        if (i++ >= n)
            return -1;
    } else {
        m->name = s + i;
        while (i < n && s[i] != ';' && s[i] != ',' && !fields_ows(s[i]))
            i++;
        m->nlen = (size_t)(s + i - m->name);
    }
    if (m->nlen == 0)
        return -1;
    while (i < n && s[i] == ';') { /* parameters: key=value */
        size_t k = ++i, v;
        while (i < n && s[i] != '=' && s[i] != ';' && s[i] != ',')
            i++;
        if (i >= n || s[i] != '=')
            return -1;
        v = ++i;
        while (i < n && s[i] != ';' && s[i] != ',' && !fields_ows(s[i]))
            i++;
        if (v - 1 - k == 1 && s[k] == 'r')
            m->r = fields_uint(s + v, i - v);
        else if (v - 1 - k == 1 && s[k] == 'q')
            m->q = fields_uint(s + v, i - v);
        else if (v - 1 - k == 1 && s[k] == 'w')
            m->w = fields_uint(s + v, i - v);
    }
    while (i < n && fields_ows(s[i]))
        i++;
    if (i < n && s[i++] != ',')
        return -1;
    *pi = i;
    return 0;
}

/* Whether m is the member to follow: the one named rule, or the first when rule is NULL. */
static int fields_followed(const fields_member *m, const char *rule, int first)
{
    if (rule == NULL)
        return first;
    return strlen(rule) == m->nlen && memcmp(rule, m->name, m->nlen) == 0;
}

/* Parses the RateLimit list. Sets f->r for the followed member and f->r_min; any member
 * without a well-formed r makes both MALFORMED. */
static void fields_ratelimit(burst_fields *f, const char *s, size_t n, const char *rule)
{
    size_t i = 0;
    int first = 1;
    fields_member m;

    f->has_ratelimit = 1;
    while (i < n) {
        if (fields_member_next(s, n, &i, &m) != 0 || m.r < 0)
            goto malformed;
        if (fields_followed(&m, rule, first))
            f->r = m.r;
        if (f->r_min < 0 || m.r < f->r_min)
            f->r_min = m.r;
        first = 0;
    }
    if (first)
        goto malformed;
    return;
malformed:
    f->r = BURST_MALFORMED;
    f->r_min = BURST_MALFORMED;
}

int burst_policy_member(const char *s, size_t n, const char *rule, int64_t *q, int64_t *w)
{
    size_t i = 0;
    int first = 1, found = 0;
    fields_member m;

    *q = *w = BURST_ABSENT;
    while (i < n) {
        if (fields_member_next(s, n, &i, &m) != 0)
            return -1;
        if (!found && fields_followed(&m, rule, first)) {
            *q = m.q;
            *w = m.w;
            found = 1;
        }
        first = 0;
    }
    if (first)
        return -1;
    return found ? 0 : 1;
}

void burst_fields_line(burst_fields *f, const char *line, size_t len, const char *rule)
{
    const char *v;
    size_t vlen;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        burst_fields_reset(f);
    } else if (burst_header_value(line, len, "Retry-After", &v, &vlen)) {
        if (f->retry_after == BURST_ABSENT)
            f->retry_after = fields_uint(v, vlen);
    } else if (burst_header_value(line, len, "RateLimit", &v, &vlen)) {
        if (!f->has_ratelimit)
            fields_ratelimit(f, v, vlen, rule);
    } else if (burst_header_value(line, len, "X-RateLimit-Remaining", &v, &vlen)) {
        if (f->x_remaining == BURST_ABSENT)
            f->x_remaining = fields_uint(v, vlen);
    }
}
