/* limit_parse.c -- "COUNT/PERIOD" rate limits, e.g. "100/90s", "10/m", "5/1500ms"
 *
 * Grammar, no spaces and no signs anywhere:
 *   limit  = count "/" period
 *   count  = decimal digits, 1 .. RL_COUNT_MAX
 *   period = [decimal digits] unit, unit = "ms" | "s" | "m" | "h" | "d"; the number defaults
 *            to 1; the result is 1 ms .. RL_PERIOD_MAX_MS
 * Numbers are accumulated with a bound check before each step and the period is checked
 * against RL_PERIOD_MAX_MS before it is multiplied by its unit, so no input overflows.
 */
#include "fmacros.h"

#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "quote.h"

/* Reads the leading decimal digits of s[0..n). Returns how many there were; *value is their
 * number, or max + 1 once it passes max (so callers can say "too large" without overflow). */
static size_t limit_digits(const char *s, size_t n, int64_t max, int64_t *value)
{
    size_t i = 0;
    int64_t v = 0;

    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        int d = s[i] - '0';
        if (v <= max)
            v = v > (max - d) / 10 ? max + 1 : v * 10 + d;
    }
    *value = v;
    return i;
}

/* The unit's length in ms, or 0 when u[0..n) is not a unit. */
static int64_t limit_unit_ms(const char *u, size_t n)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000},
    };

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ms;
    return 0;
}

static int limit_all_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return 0;
    return 1;
}

int rl_parse_limit(const char *text, int64_t *count, int64_t *period_ms, rl_error *err)
{
    char q[RL_QUOTE_SIZE], uq[RL_QUOTE_SIZE];
    const char *slash = text != NULL ? strchr(text, '/') : NULL;
    const char *c, *p, *unit;
    size_t clen, plen, ndig, ulen;
    int64_t n, num, ums;

    if (slash == NULL) {
        rl_errorf(err, "invalid limit %s: expected COUNT/PERIOD, e.g. \"100/90s\"",
                  rl_quote(q, text != NULL ? text : "", text != NULL ? strlen(text) : 0));
        return -1;
    }

    c = text;
    clen = (size_t)(slash - text);
    ndig = limit_digits(c, clen, RL_COUNT_MAX, &n);
    if (clen == 0 || ndig != clen) {
        rl_errorf(err, "invalid count %s: expected a decimal integer", rl_quote(q, c, clen));
        return -1;
    }
    if (n < 1 || n > RL_COUNT_MAX) {
        rl_errorf(err, "invalid count %s: must be 1..%lld", rl_quote(q, c, clen),
                  (long long)RL_COUNT_MAX);
        return -1;
    }

    p = slash + 1;
    plen = strlen(p);
    ndig = limit_digits(p, plen, RL_PERIOD_MAX_MS, &num);
    unit = p + ndig;
    ulen = plen - ndig;
    if (ndig == 0)
        num = 1;
    if (ulen == 0 && ndig > 0) {
        rl_errorf(err, "invalid period %s: missing unit (ms, s, m, h or d)", rl_quote(q, p, plen));
        return -1;
    }
    if (ulen == 0 || !limit_all_lower(unit, ulen)) {
        rl_errorf(err,
                  "invalid period %s: expected [N]UNIT with UNIT ms, s, m, h or d, "
                  "e.g. \"90s\"",
                  rl_quote(q, p, plen));
        return -1;
    }
    ums = limit_unit_ms(unit, ulen);
    if (ums == 0) {
        rl_errorf(err, "invalid period %s: unknown unit %s (expected ms, s, m, h or d)",
                  rl_quote(q, p, plen), rl_quote(uq, unit, ulen));
        return -1;
    }
    if (num == 0) {
        rl_errorf(err, "invalid period %s: must be > 0", rl_quote(q, p, plen));
        return -1;
    }
    if (num > RL_PERIOD_MAX_MS / ums) {
        rl_errorf(err, "invalid period %s: must be at most %lldd", rl_quote(q, p, plen),
                  (long long)(RL_PERIOD_MAX_MS / (24 * 3600 * 1000)));
        return -1;
    }

    *count = n;
    *period_ms = num * ums;
    return 0;
}
