/* policy.c -- without --limit, the rule to judge against is the one the server states
 *
 * The filter sends RateLimit-Policy: "name";q=QUOTA;w=WINDOW_S, one member per matched rule
 * (core/headers.c), on its refusals and, through the recipes, on admitted answers too. The run's
 * first answer in send order (load.c keeps its value) gives the rule: the member --rule names,
 * else the first; COUNT = q, PERIOD = w seconds. Taken after the run, so no request is spent on
 * asking: the answer that states the policy is judged like any other.
 *
 * What the policy cannot say: the algorithm and the GCRA burst. The defaults stand (gcra, burst
 * = COUNT) unless --algorithm / --burst say otherwise, and the report says where the rule came
 * from. w is whole seconds (the filter rounds a period up), so a rule whose period is not whole
 * seconds must be given with --limit.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "burst.h"

static int policy_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "rl-burst: no --limit, and <why>; give the rule with --limit" on stderr; the usage exit. */
static int policy_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "rl-burst: no --limit, and ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; give the rule with --limit COUNT/PERIOD\n");
    return BURST_EXIT_USAGE;
}

int burst_policy_apply(burst_options *o, const burst_run *run)
{
    const char *member = o->rule != NULL ? o->rule : "(the first)";
    char seq[32], why[96];
    int64_t q, w;
    int rc;

    if (!o->from_policy)
        return BURST_EXIT_OK;
    if (run->first_answer == SIZE_MAX) {
        fprintf(stderr,
                "rl-burst: no --limit, and no request got an HTTP answer to read the server's "
                "RateLimit-Policy from (first error: %s)\n",
                run->first_error[0] ? run->first_error : "none");
        return BURST_EXIT_TRANSPORT;
    }
    snprintf(seq, sizeof seq, "%zu (status %ld)", run->first_answer + 1,
             run->rec[run->first_answer].status);
    if (run->policy_state == 0)
        return policy_fail("the server's first answer, request %s, has no RateLimit-Policy field",
                           seq);
    if (run->policy_state == 2)
        return policy_fail("the RateLimit-Policy of request %s is longer than the %d bytes "
                           "rl-burst reads",
                           seq, BURST_POLICY_MAX - 1);
    rc = burst_policy_member(run->policy, strlen(run->policy), o->rule, &q, &w);
    if (rc < 0)
        return policy_fail("the RateLimit-Policy of the first answer does not parse: %s",
                           run->policy);
    if (rc > 0)
        return policy_fail("the first answer's RateLimit-Policy (%s) has no member \"%s\"",
                           run->policy, member);
    if (q < 1 || w < 1)
        return policy_fail("the first answer's RateLimit-Policy (%s) has no q >= 1 and w >= 1 "
                           "for member %s",
                           run->policy, member);
    if (w > INT64_MAX / 1000 || burst_options_rule(o, q, w * 1000, why, sizeof why) != 0)
        return policy_fail("the first answer's RateLimit-Policy (%s) is out of bounds: %s",
                           run->policy, w > INT64_MAX / 1000 ? "w is too large" : why);
    snprintf(o->limit_own, sizeof o->limit_own, "%" PRId64 "/%" PRId64 "s", q, w);
    o->limit_text = o->limit_own;
    return BURST_EXIT_OK;
}
