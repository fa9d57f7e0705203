/* headers.c -- the values of the IETF RateLimit-Policy and RateLimit fields
 *
 * Both are Structured Field lists (RFC 9651) with one member per matched rule, named by the
 * rule: RateLimit-Policy: "name";q=QUOTA;w=WINDOW_S and RateLimit: "name";r=REMAINING;t=S.
 * Windows that are not whole seconds are rounded up (sf-integers have no fractions). Rule
 * names are validated to [A-Za-z0-9_.-], so they need no escaping inside an sf-string.
 * Dry-run rules are left out: they are not enforced, so a client must not act on them.
 */
#include "fmacros.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "ratelimit.h"
#include "num.h"
#include "rule_types.h"

int64_t rl_ms_to_s_ceil(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* Appends s[0..n) at *len; -1 when it and the NUL after it do not fit. Direct copies, not
 * snprintf: these lines go out with every answer, and printf's machinery was most of their
 * cost (2,300 instructions per field and rule under callgrind, now about 150). */
static int headers_put(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    if (n >= size - *len)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

static int headers_put_int(char *buf, size_t size, size_t *len, int64_t v)
{
    char tmp[RL_INT_TEXT_MAX];
    return headers_put(buf, size, len, tmp, (size_t)(rl_put_int(tmp, v) - tmp));
}

/* Appends one member: sep"name";k1=v1;k2=v2 (the name's length is the one computed at load,
 * rl_rule_derive). Returns 0, or -1 when it does not fit. */
static int headers_append(char *buf, size_t size, size_t *len, const char *sep, const rl_rule *rule,
                          char k1, int64_t v1, char k2, int64_t v2)
{
    char eq1[2] = {k1, '='}, eq2[3] = {';', k2, '='};

    if (headers_put(buf, size, len, sep, strlen(sep)) != 0 ||
        headers_put(buf, size, len, "\"", 1) != 0 ||
        headers_put(buf, size, len, rule->name, rule->name_len) != 0 ||
        headers_put(buf, size, len, "\";", 2) != 0 || headers_put(buf, size, len, eq1, 2) != 0 ||
        headers_put_int(buf, size, len, v1) != 0 || headers_put(buf, size, len, eq2, 3) != 0 ||
        headers_put_int(buf, size, len, v2) != 0)
        return -1;
    return 0;
}

/* Every counted rule's item, ", "-separated: its policy (q, w) or its state (r, t). Returns
 * the length, or -1 (buf then "") when it does not fit. */
static int headers_list(const rl_decision *d, char *buf, size_t size, int state)
{
    size_t len = 0;
    if (size == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        const char *sep = len > 0 ? ", " : "";
        int rc;
        if (r->dry_run)
            continue;
        if (state)
            rc = headers_append(buf, size, &len, sep, r->rule, 'r', r->remaining, 't',
                                rl_ms_to_s_ceil(r->reset_ms));
        else
            rc = headers_append(buf, size, &len, sep, r->rule, 'q', r->limit, 'w',
                                rl_ms_to_s_ceil(r->window_ms));
        if (rc != 0 || len > INT_MAX) {
            buf[0] = '\0';
            return -1;
        }
    }
    buf[len] = '\0';
    return (int)len;
}

int rl_format_policy(const rl_decision *d, char *buf, size_t size)
{
    return headers_list(d, buf, size, 0);
}

int rl_format_state(const rl_decision *d, char *buf, size_t size)
{
    return headers_list(d, buf, size, 1);
}
