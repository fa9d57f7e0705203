/* headers.c -- the values of the IETF RateLimit-Policy and RateLimit fields
 *
 * Both are Structured Field lists (RFC 9651) with one member per matched rule, named by the
 * rule: RateLimit-Policy: "name";q=QUOTA;w=WINDOW_S and RateLimit: "name";r=REMAINING;t=S.
 * Windows that are not whole seconds are rounded up (sf-integers have no fractions). Rule
 * names are validated to [A-Za-z0-9_.-], so they need no escaping inside an sf-string.
 * Dry-run rules are left out: they are not enforced, so a client must not act on them.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdio.h>

#include "ratelimit.h"
#include "rule_types.h"

int64_t rl_ms_to_s_ceil(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* Appends one formatted member; returns the new length or -1 when it does not fit. */
static int headers_append(char *buf, size_t size, int len, const char *sep, const char *name,
                          const char *k1, int64_t v1, const char *k2, int64_t v2)
{
    if (len < 0)
        return -1;
    int n = snprintf(buf + len, size - (size_t)len, "%s\"%s\";%s=%" PRId64 ";%s=%" PRId64, sep,
                     name, k1, v1, k2, v2);
    if (n < 0 || (size_t)n >= size - (size_t)len)
        return -1;
    return len + n;
}

/* Every counted rule's item, ", "-separated: its policy (q, w) or its state (r, t). */
static int headers_list(const rl_decision *d, char *buf, size_t size, int state)
{
    int len = 0;
    if (size == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        if (r->dry_run)
            continue;
        if (state)
            len = headers_append(buf, size, len, len > 0 ? ", " : "", r->rule->name, "r",
                                 r->remaining, "t", rl_ms_to_s_ceil(r->reset_ms));
        else
            len = headers_append(buf, size, len, len > 0 ? ", " : "", r->rule->name, "q", r->limit,
                                 "w", rl_ms_to_s_ceil(r->window_ms));
    }
    return len;
}

int rl_format_policy(const rl_decision *d, char *buf, size_t size)
{
    return headers_list(d, buf, size, 0);
}

int rl_format_state(const rl_decision *d, char *buf, size_t size)
{
    return headers_list(d, buf, size, 1);
}
