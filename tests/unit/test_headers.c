/* test_headers.c -- the RateLimit field values (core/headers.c), written by copies and a hand
 * integer formatter: every number's extremes as printf's %lld writes them, dry runs left out,
 * and a buffer too small by one byte refused (-1, buf "") at every length */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "leakcheck.h"
#include "ratelimit.h"
#include "rule_types.h"

TestSuite(headers, .fini = rl_test_leak_check);

static rl_rule rules[3];

static void fill(rl_decision *d, const int64_t v[4])
{
    memset(d, 0, sizeof *d);
    d->nresults = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(rules[i].name, sizeof rules[i].name, "rule-%d.x_y", i);
        rules[i].name_len = strlen(rules[i].name); /* as rl_rule_derive sets it at load */
        d->results[i].rule = &rules[i];
        d->results[i].limit = v[0];
        d->results[i].window_ms = v[1];
        d->results[i].remaining = v[2];
        d->results[i].reset_ms = v[3];
    }
    d->results[1].dry_run = 1;
}

static int64_t ceil_s(int64_t ms)
{
    return ms <= 0 ? 0 : ms / 1000 + (ms % 1000 != 0);
}

Test(headers, numbers_as_printf_writes_them)
{
    static const int64_t vals[] = {
        0, 1, -1, 9, 10, 999, 1000, 1001, 123456789, INT64_MAX, INT64_MIN, INT64_MAX - 999, -1000};
    char buf[512], want[512];
    rl_decision d;

    for (size_t a = 0; a < sizeof vals / sizeof vals[0]; a++)
        for (size_t b = 0; b < sizeof vals / sizeof vals[0]; b++) {
            int64_t v[4] = {vals[a], vals[b], vals[b], vals[a]};
            if (v[1] > INT64_MAX - 999 || v[3] > INT64_MAX - 999)
                continue; /* rl_ms_to_s_ceil's own bound: windows are far below it */
            fill(&d, v);
            int n = snprintf(want, sizeof want,
                             "\"rule-0.x_y\";q=%" PRId64 ";w=%" PRId64 ", \"rule-2.x_y\";q=%" PRId64
                             ";w=%" PRId64,
                             v[0], ceil_s(v[1]), v[0], ceil_s(v[1]));
            cr_assert_eq(rl_format_policy(&d, buf, sizeof buf), n);
            cr_assert_str_eq(buf, want);
            n = snprintf(want, sizeof want,
                         "\"rule-0.x_y\";r=%" PRId64 ";t=%" PRId64 ", \"rule-2.x_y\";r=%" PRId64
                         ";t=%" PRId64,
                         v[2], ceil_s(v[3]), v[2], ceil_s(v[3]));
            cr_assert_eq(rl_format_state(&d, buf, sizeof buf), n);
            cr_assert_str_eq(buf, want);
        }
}

Test(headers, every_short_buffer_refused)
{
    const int64_t v[4] = {INT64_MIN, 60000, -5, 1};
    char full[512], buf[512];
    rl_decision d;

    fill(&d, v);
    int n = rl_format_state(&d, full, sizeof full);
    cr_assert_gt(n, 0);
    for (size_t size = 0; size <= (size_t)n; size++) {
        memset(buf, 'Z', sizeof buf);
        cr_assert_eq(rl_format_state(&d, buf, size), -1, "size %zu", size);
        if (size > 0)
            cr_assert_eq(buf[0], '\0', "size %zu", size);
        cr_assert_eq(buf[size], 'Z', "a write past size %zu", size);
    }
    cr_assert_eq(rl_format_state(&d, buf, (size_t)n + 1), n);
    cr_assert_str_eq(buf, full);
}

Test(headers, no_counted_rule_is_empty)
{
    const int64_t v[4] = {5, 1000, 4, 1000};
    char buf[16] = "junk";
    rl_decision d;

    fill(&d, v);
    d.nresults = 0;
    cr_assert_eq(rl_format_policy(&d, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    d.nresults = 2; /* rule 0 and the dry run */
    d.results[0].dry_run = 1;
    cr_assert_eq(rl_format_policy(&d, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
}
