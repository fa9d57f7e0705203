/* smoke.c -- a program built against the installed libratelimit by tests/install/check.sh,
 * through `pkg-config --cflags --libs ratelimit` only (never this tree's include/ or build/).
 *
 * Usage: smoke CONFIG. Loads CONFIG, opens a limiter, decides one GET / from 127.0.0.1, reads
 * the pool's statistics, prints
 *   "allowed|refused STATUS BACKEND REMAINING RULE requests=N RULE=ALLOWED health=HEALTH"
 * (RULE the first matched rule's name, read through rl_rule_name: rl_rule is opaque; N the
 * pool's decisions so far) and closes everything. It uses the public API only: the header
 * declares nothing else. Exit 0; 1 with the error on stderr when the config, the limiter or
 * the decision fails; 2 on bad usage.
 */
#include <ratelimit.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    rl_error err = {{0}};
    rl_request req = {0};
    rl_decision d;
    rl_config *cfg;
    rl_limiter *lim;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: smoke CONFIG\n");
        return 2;
    }
    cfg = rl_config_load(argv[1], &err);
    if (cfg == NULL) {
        fprintf(stderr, "smoke: %s\n", err.text);
        return 1;
    }
    lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        fprintf(stderr, "smoke: %s\n", err.text);
        rl_config_free(cfg);
        return 1;
    }
    req.remote_addr = "127.0.0.1";
    req.path = "/";
    req.method = "GET";
    if (rl_decide(lim, &req, &d) < 0) {
        fprintf(stderr, "smoke: %s\n", rl_limiter_errstr(lim));
    } else {
        static rl_stats st; /* ~20 KiB: not on the stack */
        const rl_rule *rule = d.nresults > 0 ? d.results[0].rule : NULL;
        rl_limiter_stats(lim, &st);
        printf("%s %d %s %lld %s requests=%lld", d.allowed ? "allowed" : "refused", d.status,
               rl_backend_name(d.backend),
               d.nresults > 0 ? (long long)d.results[0].remaining : -1LL,
               rule != NULL ? rl_rule_name(rule) : "-", (long long)st.global[RL_STAT_REQUESTS]);
        for (size_t i = 0; i < st.nrules; i++)
            printf(" %s=%lld", rl_rule_name(st.rules[i].rule),
                   (long long)st.rules[i].c[RL_STAT_ALLOWED]);
        printf(" health=%s\n", rl_limiter_health(lim));
        rc = 0;
    }
    rl_limiter_close(lim);
    rl_config_free(cfg);
    return rc;
}
