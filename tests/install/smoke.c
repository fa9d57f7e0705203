/* smoke.c -- a program built against the installed libratelimit by tests/install/check.sh,
 * through `pkg-config --cflags --libs ratelimit` only (never this tree's include/ or build/).
 *
 * Usage: smoke CONFIG. Loads CONFIG, opens a limiter, decides one GET / from 127.0.0.1, prints
 * "allowed|refused STATUS BACKEND REMAINING" and closes everything. Exit 0; 1 with the error
 * on stderr when the config, the limiter or the decision fails; 2 on bad usage.
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
        printf("%s %d %s %lld\n", d.allowed ? "allowed" : "refused", d.status,
               rl_backend_name(d.backend),
               d.nresults > 0 ? (long long)d.results[0].remaining : -1LL);
        rc = 0;
    }
    rl_limiter_close(lim);
    rl_config_free(cfg);
    return rc;
}
