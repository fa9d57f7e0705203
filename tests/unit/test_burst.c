/* test_burst.c -- rl-burst's header parser (fields.c) and judge (judge.c) on made-up runs
 *
 * Also the RateLimit-Policy reader (fields.c) and the rule taken from it without --limit
 * (policy.c). The integration test (test_burst.sh) shows the harness passing a correct server and
 * catching a loose one; a correct server never produces incoherent headers, so the header
 * checks are proven here, on runs built by hand: one client, a 10/m GCRA rule, answers whose
 * times and fields we choose.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/burst/burst.h"
#include "leakcheck.h"

static void line(burst_fields *f, const char *s, const char *rule)
{
    burst_fields_line(f, s, strlen(s), rule);
}

/* A leak fails the test under SANITIZE=address (leakcheck.h). */
TestSuite(burst_fields, .fini = rl_test_leak_check);
TestSuite(burst_judge, .fini = rl_test_leak_check);

Test(burst_fields, ratelimit_retry_after_remaining)
{
    burst_fields f;
    burst_fields_reset(&f);
    line(&f, "HTTP/1.1 429 Too Many Requests\r\n", NULL);
    line(&f, "retry-after: 6\r\n", NULL);
    line(&f, "RateLimit: \"a\";r=4;t=6, \"b\";r=0;t=9\r\n", NULL);
    line(&f, "X-RateLimit-Remaining: 0\r\n", NULL);
    cr_assert_eq(f.retry_after, 6);
    cr_assert_eq(f.r, 4, "the first member by default");
    cr_assert_eq(f.r_min, 0);
    cr_assert_eq(f.x_remaining, 0);

    burst_fields_reset(&f);
    line(&f, "RateLimit: \"a\";r=4;t=6, \"b\";r=1;t=9\r\n", "b");
    cr_assert_eq(f.r, 1, "--rule b follows member b");
    line(&f, "HTTP/1.1 200 OK\r\n", NULL);
    cr_assert_eq(f.r, BURST_ABSENT, "a status line starts a new block");
    cr_assert_eq(f.retry_after, BURST_ABSENT);
}

Test(burst_fields, malformed)
{
    burst_fields f;
    burst_fields_reset(&f);
    line(&f, "Retry-After: Fri, 27 Nov 2026 12:00:00 GMT\r\n", NULL);
    line(&f, "RateLimit: \"a\";t=6\r\n", NULL);
    line(&f, "X-RateLimit-Remaining: -1\r\n", NULL);
    cr_assert_eq(f.retry_after, BURST_MALFORMED);
    cr_assert_eq(f.r, BURST_MALFORMED);
    cr_assert(f.has_ratelimit);
    cr_assert_eq(f.x_remaining, BURST_MALFORMED);
}

Test(burst_fields, policy_member)
{
    const char *v = "\"a\";q=10;w=60, \"b\";q=100;w=3600;pk=:cHsx:";
    int64_t q, w;

    cr_assert_eq(burst_policy_member(v, strlen(v), NULL, &q, &w), 0);
    cr_assert_eq(q, 10, "the first member by default");
    cr_assert_eq(w, 60);
    cr_assert_eq(burst_policy_member(v, strlen(v), "b", &q, &w), 0);
    cr_assert_eq(q, 100, "--rule b follows member b");
    cr_assert_eq(w, 3600);
    cr_assert_eq(burst_policy_member(v, strlen(v), "c", &q, &w), 1, "no member c");
    cr_assert_eq(q, BURST_ABSENT);

    v = "\"a\";w=60";
    cr_assert_eq(burst_policy_member(v, strlen(v), NULL, &q, &w), 0);
    cr_assert_eq(q, BURST_ABSENT, "no q");
    v = "\"a\";q=ten;w=60";
    cr_assert_eq(burst_policy_member(v, strlen(v), NULL, &q, &w), 0);
    cr_assert_eq(q, BURST_MALFORMED);
    v = "\"a;q=10";
    cr_assert_eq(burst_policy_member(v, strlen(v), NULL, &q, &w), -1, "unclosed string");
    cr_assert_eq(burst_policy_member("", 0, NULL, &q, &w), -1, "empty list");

    const char *line = "ratelimit-policy:  \"a\";q=1;w=2 \r\n";
    size_t n;
    cr_assert(burst_header_value(line, strlen(line), "RateLimit-Policy", &v, &n));
    cr_assert_eq(n, strlen("\"a\";q=1;w=2"));
    cr_assert_eq(memcmp(v, "\"a\";q=1;w=2", n), 0);
    cr_assert(!burst_header_value(line, strlen(line), "RateLimit", &v, &n));
}

/* ---- policy ---------------------------------------------------------------------------------- */

TestSuite(burst_policy, .fini = rl_test_leak_check);

/* burst_options_parse on a command line given as one string of words; the words stay in a
 * static buffer, since the options borrow them (the rule name, the URL). */
static int parse_words(const char *words, burst_options *o)
{
    static char buf[256];
    char *argv[16];
    int argc = 0;

    snprintf(buf, sizeof buf, "%s", words);
    for (char *w = strtok(buf, " "); w != NULL && argc < 15; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    optind = 0; /* getopt starts over */
    return burst_options_parse(argc, argv, o);
}

/* Options as the command line leaves them without --limit. */
static burst_options policy_opts(const char *words)
{
    burst_options o;
    cr_assert_eq(parse_words(words, &o), 0);
    cr_assert(o.from_policy);
    cr_assert_eq(o.count, 0);
    return o;
}

/* A run of one answer with status and the policy field value (NULL: none). */
static burst_run policy_run(long status, const char *policy)
{
    burst_run run;
    memset(&run, 0, sizeof run);
    run.rec = calloc(1, sizeof *run.rec);
    run.n = run.cap = 1;
    run.rec[0].status = status;
    run.first_answer = status != 0 ? 0 : SIZE_MAX;
    if (policy != NULL) {
        run.policy_state = 1;
        snprintf(run.policy, sizeof run.policy, "%s", policy);
    }
    return run;
}

Test(burst_policy, quota_and_window_from_the_first_answer)
{
    burst_options o = policy_opts("rl-burst http://127.0.0.1:1/");
    burst_run run = policy_run(200, "\"demo\";q=10;w=60");
    cr_assert_eq(burst_policy_apply(&o, &run), BURST_EXIT_OK);
    cr_assert_eq(o.count, 10);
    cr_assert_eq(o.period_ms, 60000);
    cr_assert_eq(o.burst, 10, "burst = COUNT");
    cr_assert_str_eq(o.limit_text, "10/60s");
    free(run.rec);
}

Test(burst_policy, options_still_count)
{
    burst_options o = policy_opts("rl-burst --burst 4 --rule b http://127.0.0.1:1/");
    burst_run run = policy_run(429, "\"a\";q=10;w=60, \"b\";q=2;w=1");
    cr_assert_eq(burst_policy_apply(&o, &run), BURST_EXIT_OK);
    cr_assert_eq(o.count, 2, "--rule b");
    cr_assert_eq(o.period_ms, 1000);
    cr_assert_eq(o.burst, 4, "--burst");
    free(run.rec);

    cr_assert_eq(parse_words("rl-burst --limit 5/s http://127.0.0.1:1/", &o), 0);
    cr_assert(!o.from_policy, "--limit given: the policy is not read");
    run = policy_run(200, "\"a\";q=10;w=60");
    cr_assert_eq(burst_policy_apply(&o, &run), BURST_EXIT_OK);
    cr_assert_eq(o.count, 5);
    cr_assert_eq(o.period_ms, 1000);
    free(run.rec);
}

Test(burst_policy, no_usable_policy, .init = cr_redirect_stderr)
{
    const char *cmd = "rl-burst --rule x http://127.0.0.1:1/";
    const char *bad[] = {NULL, "\"x\";q=0;w=60", "\"x\";w=60", "\"y\";q=1;w=1", "\"x;q=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        burst_options o = policy_opts(cmd);
        burst_run run = policy_run(200, bad[i]);
        cr_assert_eq(burst_policy_apply(&o, &run), BURST_EXIT_USAGE, "policy %s",
                     bad[i] ? bad[i] : "(none)");
        cr_assert_eq(o.count, 0);
        free(run.rec);
    }
    burst_options o = policy_opts(cmd);
    burst_run run = policy_run(0, NULL);
    cr_assert_eq(burst_policy_apply(&o, &run), BURST_EXIT_TRANSPORT, "no answer at all");
    free(run.rec);
    fflush(stderr);
    cr_assert_stderr_neq_str("", "each says why on stderr");
}

/* ---- judge ---------------------------------------------------------------------------------- */

static burst_options opts(void)
{
    burst_options o;
    memset(&o, 0, sizeof o);
    o.clients = 1;
    o.limit_text = "10/m";
    o.count = 10;
    o.period_ms = 60000;
    o.burst = 10;
    o.algo = RL_ALGO_GCRA;
    return o;
}

static const char addrs[1][BURST_ADDR_MAX] = {"127.0.1.1"};

/* n answers, each sent 1 ms after the previous one was complete (so the order is certain):
 * statuses st[], RateLimit r[] (-1 = no field), Retry-After ra[] (-1 = none). */
static burst_run run_of(size_t n, const long *st, const int64_t *r, const int64_t *ra)
{
    burst_run run;
    memset(&run, 0, sizeof run);
    run.rec = calloc(n, sizeof *run.rec);
    run.n = run.cap = n;
    run.wall_start_us = 1000LL * 60000 * 1000 + 5000000; /* 5 s into a minute */
    for (size_t i = 0; i < n; i++) {
        burst_record *x = &run.rec[i];
        x->sent_us = (int64_t)i * 1000;
        x->done_us = x->sent_us + 500;
        x->status = st[i];
        burst_fields_reset(&x->f);
        if (r[i] >= 0) {
            x->f.has_ratelimit = 1;
            x->f.r = x->f.r_min = x->f.x_remaining = r[i];
        }
        x->f.retry_after = ra[i];
    }
    run.elapsed_us = run.rec[n - 1].done_us;
    return run;
}

static burst_client judge(const burst_options *o, burst_run *run)
{
    burst_client *cs = burst_judge(o, addrs, run), c;
    cr_assert_not_null(cs);
    c = cs[0];
    free(cs);
    free(run->rec);
    return c;
}

Test(burst_judge, tight_burst_exact)
{
    burst_options o = opts();
    long st[12];
    int64_t r[12], ra[12];
    for (int i = 0; i < 12; i++) {
        st[i] = i < 10 ? 200 : 429;
        r[i] = i < 10 ? 9 - i : 0;
        ra[i] = i < 10 ? -1 : 6;
    }
    burst_run run = run_of(12, st, r, ra);
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.admitted, 10);
    cr_assert_eq(c.refused, 2);
    cr_assert_eq(c.max_allowed, 10);
    cr_assert_eq(c.min_allowed, 10);
    cr_assert(!c.over && !c.under);
    cr_assert_eq(c.header_violations, 0, "%s", c.first_violation);
    cr_assert_str_eq(burst_client_verdict(&c), "ok");
}

Test(burst_judge, over_and_under)
{
    burst_options o = opts();
    long st[12];
    int64_t r[12], ra[12];
    for (int i = 0; i < 12; i++) {
        st[i] = i < 11 ? 200 : 429;
        r[i] = -1;
        ra[i] = 6;
    }
    burst_run run = run_of(12, st, r, ra);
    burst_client c = judge(&o, &run);
    cr_assert(c.over, "11 admitted in a tight burst of 10");
    cr_assert_str_eq(burst_client_verdict(&c), "over-admission");

    for (int i = 0; i < 12; i++)
        st[i] = i < 9 ? 200 : 429;
    run = run_of(12, st, r, ra);
    c = judge(&o, &run);
    cr_assert(c.under, "9 admitted where the burst admits exactly 10");
}

Test(burst_judge, refusal_without_retry_after)
{
    burst_options o = opts();
    long st[2] = {200, 429};
    int64_t r[2] = {9, 0}, ra[2] = {-1, -1};
    burst_run run = run_of(2, st, r, ra);
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.header_violations, 1);
    cr_assert(strstr(c.first_violation, "429 without Retry-After") != NULL, "%s",
              c.first_violation);
}

Test(burst_judge, remaining_rises_in_a_tight_burst)
{
    burst_options o = opts();
    long st[3] = {200, 200, 200};
    int64_t r[3] = {9, 8, 9}, ra[3] = {-1, -1, -1};
    burst_run run = run_of(3, st, r, ra);
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.header_violations, 1);
    cr_assert(strstr(c.first_violation, "request 3 (200): RateLimit r=9 after r=8 of request 2") !=
                  NULL,
              "%s", c.first_violation);
}

Test(burst_judge, overlapping_answers_may_come_in_any_order)
{
    burst_options o = opts();
    long st[2] = {200, 200};
    int64_t r[2] = {8, 9}, ra[2] = {-1, -1};
    burst_run run = run_of(2, st, r, ra);
    run.rec[1].sent_us = 100; /* sent before the first answer was in: no order is known */
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.header_violations, 0, "%s", c.first_violation);
}

Test(burst_judge, x_ratelimit_remaining_must_match)
{
    burst_options o = opts();
    long st[1] = {200};
    int64_t r[1] = {9}, ra[1] = {-1};
    burst_run run = run_of(1, st, r, ra);
    run.rec[0].f.x_remaining = 7;
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.header_violations, 1);
    cr_assert(strstr(c.first_violation, "X-RateLimit-Remaining 7 but RateLimit r=9") != NULL);
}

Test(burst_judge, fixed_window_two_windows)
{
    burst_options o = opts();
    o.algo = RL_ALGO_FIXED_WINDOW;
    long st[2] = {200, 200};
    int64_t r[2] = {9, 9}, ra[2] = {-1, -1};
    burst_run run = run_of(2, st, r, ra);
    run.wall_start_us = 1000LL * 60000 * 1000 - 1500; /* the run crosses a minute boundary */
    run.rec[1].sent_us = 2000;
    run.rec[1].done_us = 2500;
    burst_client c = judge(&o, &run);
    cr_assert_eq(c.windows, 2);
    cr_assert_eq(c.max_allowed, 20);
    cr_assert_eq(c.min_allowed, -1);
    cr_assert_eq(c.header_violations, 0, "a new window may refill: %s", c.first_violation);
}
