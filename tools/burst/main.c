/* main.c -- rl-burst: send a burst from many clients and prove the rate limit held
 *
 *   rl-burst -n N -c C -k K [--xff] [--rate R] [--duration S] [--limit COUNT/PERIOD]
 *            [--burst B] [--algorithm A] [--json] URL
 *
 * Options, then the load, then (without --limit) the rule from the first answer's
 * RateLimit-Policy, then the judgement; the exit status says which way it went:
 * 0 every client within its allowance and the headers coherent; 1 a violation (over-admission
 * is reported as 1 even when some requests failed, since failures can only hide admissions);
 * 2 usage, or no --limit and no usable RateLimit-Policy; 3 some request got no HTTP answer,
 * so nothing else could be concluded.
 */
#include "fmacros.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "burst.h"

static int main_exit_code(const burst_summary *s)
{
    if (s->over > 0)
        return BURST_EXIT_VIOLATION;
    if (s->run->transport_errors > 0)
        return BURST_EXIT_TRANSPORT;
    if (s->under > 0 || s->header_violations > 0)
        return BURST_EXIT_VIOLATION;
    return BURST_EXIT_OK;
}

static int main_judge_and_report(const burst_options *o, const char (*addrs)[BURST_ADDR_MAX],
                                 const burst_run *run)
{
    burst_summary s = {.o = o, .run = run};
    burst_stats st;
    burst_client *cs = burst_judge(o, addrs, run);

    if (cs == NULL || burst_stats_compute(run, &st) != 0) {
        fprintf(stderr, "rl-burst: out of memory judging %zu requests\n", run->n);
        free(cs);
        return BURST_EXIT_TRANSPORT;
    }
    s.clients = cs;
    s.stats = &st;
    for (int i = 0; i < o->clients; i++) {
        s.over += cs[i].over;
        s.under += cs[i].under;
        s.header_violations += cs[i].header_violations;
    }
    s.exit_code = main_exit_code(&s);
    burst_report_text(&s, o->json ? stderr : stdout);
    if (o->json)
        burst_report_json(&s, stdout);
    free(cs);
    return s.exit_code;
}

int main(int argc, char **argv)
{
    burst_options o;
    burst_run run;
    char(*addrs)[BURST_ADDR_MAX];
    int rc = burst_options_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BURST_EXIT_OK : BURST_EXIT_USAGE;
    addrs = burst_client_addrs(&o);
    if (addrs == NULL)
        return BURST_EXIT_USAGE;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "rl-burst: libcurl could not initialise\n");
        free(addrs);
        return BURST_EXIT_TRANSPORT;
    }
    if (burst_load_run(&o, (const char(*)[BURST_ADDR_MAX])addrs, &run) != 0) {
        fprintf(stderr, "rl-burst: %s\n", run.first_error);
        rc = BURST_EXIT_TRANSPORT;
    } else if ((rc = burst_policy_apply(&o, &run)) == BURST_EXIT_OK) {
        rc = main_judge_and_report(&o, (const char(*)[BURST_ADDR_MAX])addrs, &run);
    }
    burst_run_free(&run);
    curl_global_cleanup();
    free(addrs);
    return rc;
}
