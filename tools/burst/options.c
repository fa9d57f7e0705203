/* options.c -- rl-burst's command line, and the addresses of its clients
 *
 * Every option is checked here, once, into a burst_options; the rest of the program trusts
 * it. The rule to judge against is parsed by the core's rl_parse_limit, so it reads exactly
 * like the configuration's `limit`, and it is held to the same bounds (count x period and
 * burst x period at most 2^50 ms). Without --limit the rule is left unset (from_policy) and
 * policy.c sets it through burst_options_rule, under the same bounds, once the first answer
 * is in.
 */
#include "fmacros.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "burst.h"

#define OPT_PRODUCT_MAX (1LL << 50)

enum {
    OPT_XFF = 256,
    OPT_FIRST_CLIENT,
    OPT_RATE,
    OPT_DURATION,
    OPT_RULE,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_PROGRESS,
};

static void opt_usage(FILE *out)
{
    fprintf(out,
            "Usage: rl-burst [OPTIONS] [--limit COUNT/PERIOD] URL\n"
            "\n"
            "Sends requests from many clients to URL and checks that the rate limit held:\n"
            "per client, the 2xx count against what the algorithm allows, and the\n"
            "Retry-After / RateLimit / X-RateLimit-Remaining headers for coherence.\n"
            "\n"
            "Load:\n"
            "  -n N                requests in all (default 100; with --duration: until it ends)\n"
            "  -c C                requests in flight at most (default 10)\n"
            "  -k K                distinct clients; request i is client i %% K's (default 1)\n"
            "      --first-client A  the first client's address (default 127.0.1.1); the next\n"
            "                      clients take the following addresses, skipping .0 and .255\n"
            "      --xff           send every request from this host's default address with the\n"
            "                      client's address in X-Forwarded-For (default: each client\n"
            "                      sends from its own source address in 127.0.0.0/8)\n"
            "      --rate R        pace the requests at R per second overall\n"
            "      --duration S    stop sending after S seconds\n"
            "      --timeout S     give up on one request after S seconds (default 10)\n"
            "\n"
            "The rule to judge against:\n"
            "  -l, --limit L       COUNT/PERIOD as in the configuration, e.g. 10/m, 100/90s;\n"
            "                      without it: q/w of the first answer's RateLimit-Policy\n"
            "  -b, --burst B       GCRA burst (default COUNT)\n"
            "  -a, --algorithm A   gcra (default), fixed_window, sliding_window or sliding_log\n"
            "      --rule NAME     the RateLimit member to follow (default: the first)\n"
            "\n"
            "Output:\n"
            "      --json          JSON summary on stdout (the report goes to stderr)\n"
            "  -q, --quiet         no progress line\n"
            "      --progress      a progress line even when stderr is not a terminal\n"
            "  -h, --help          this help\n"
            "  -V, --version       the version\n"
            "\n"
            "Exit status: 0 within the allowance and coherent, 1 a violation, 2 usage (or\n"
            "no --limit and no usable RateLimit-Policy), 3 a request got no HTTP answer\n"
            "(could not connect, timed out).\n");
}

static int opt_fail(const char *what, const char *value, const char *why)
{
    fprintf(stderr, "rl-burst: invalid %s \"%s\": %s\n", what, value, why);
    fprintf(stderr, "Try 'rl-burst --help' for more information.\n");
    return -1;
}

/* A decimal integer in [min, max], nothing else. */
static int opt_int(const char *what, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;
    char why[96];

    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return opt_fail(what, s, "expected a whole number");
    if (v < min || v > max) {
        snprintf(why, sizeof why, "must be %lld..%lld", (long long)min, (long long)max);
        return opt_fail(what, s, why);
    }
    *out = v;
    return 0;
}

/* A finite decimal number in (0, max]. */
static int opt_positive(const char *what, const char *s, double max, double *out)
{
    char *end;
    double v;
    char why[96];

    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
        return opt_fail(what, s, "expected a number");
    if (v <= 0 || v > max) {
        snprintf(why, sizeof why, "must be > 0 and at most %g", max);
        return opt_fail(what, s, why);
    }
    *out = v;
    return 0;
}

static int opt_algorithm(const char *s, rl_algo *out)
{
    if (strcmp(s, "gcra") == 0)
        *out = RL_ALGO_GCRA;
    else if (strcmp(s, "fixed_window") == 0)
        *out = RL_ALGO_FIXED_WINDOW;
    else if (strcmp(s, "sliding_window") == 0)
        *out = RL_ALGO_SLIDING_WINDOW;
    else if (strcmp(s, "sliding_log") == 0)
        *out = RL_ALGO_SLIDING_LOG;
    else
        return opt_fail("--algorithm", s,
                        "expected gcra, fixed_window, sliding_window or sliding_log");
    return 0;
}

/* --limit: parsed here, checked against --burst in opt_check. */
static int opt_limit(const char *s, burst_options *o)
{
    rl_error err;

    if (rl_parse_limit(s, &o->count, &o->period_ms, &err) != 0)
        return opt_fail("--limit", s, err.text);
    o->limit_text = s;
    return 0;
}

int burst_options_rule(burst_options *o, int64_t count, int64_t period_ms, char *why, size_t size)
{
    if (count < 1 || count > RL_COUNT_MAX || period_ms < 1) {
        snprintf(why, size, "count must be 1..%lld and the period at least 1 ms",
                 (long long)RL_COUNT_MAX);
        return -1;
    }
    if (count > OPT_PRODUCT_MAX / period_ms) {
        snprintf(why, size, "count x period in ms must not exceed 2^50");
        return -1;
    }
    o->count = count;
    o->period_ms = period_ms;
    o->burst = o->burst_given > 0 ? o->burst_given : count;
    if (o->burst > OPT_PRODUCT_MAX / period_ms) {
        snprintf(why, size, "burst %lld x period in ms must not exceed 2^50", (long long)o->burst);
        return -1;
    }
    return 0;
}

/* Checks what no single option can: the options against each other. */
static int opt_check(burst_options *o, int n_given)
{
    char v[32], why[96];

    if (o->burst_given > 0 && o->algo != RL_ALGO_GCRA) {
        snprintf(v, sizeof v, "%lld", (long long)o->burst_given);
        return opt_fail("--burst", v, "only gcra has a burst; the windows allow COUNT");
    }
    if (o->count == 0) {
        o->from_policy = 1; /* the first answer's RateLimit-Policy will say (policy.c) */
    } else if (burst_options_rule(o, o->count, o->period_ms, why, sizeof why) != 0) {
        return opt_fail("--limit", o->limit_text, why);
    }
    if (!n_given)
        o->requests = o->duration_us > 0 ? 0 : 100;
    if (o->requests > 0 && o->requests < o->clients) {
        snprintf(v, sizeof v, "%lld", (long long)o->requests);
        return opt_fail("-n", v, "fewer requests than clients (-k): every client must send");
    }
    return 0;
}

int burst_options_parse(int argc, char **argv, burst_options *o)
{
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'l'},
        {"burst", required_argument, NULL, 'b'},
        {"algorithm", required_argument, NULL, 'a'},
        {"xff", no_argument, NULL, OPT_XFF},
        {"first-client", required_argument, NULL, OPT_FIRST_CLIENT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"rule", required_argument, NULL, OPT_RULE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int64_t v;
    double d;
    struct in_addr a;
    int c, n_given = 0;

    memset(o, 0, sizeof *o);
    o->concurrency = 10;
    o->clients = 1;
    o->first_client = (127u << 24) | (1u << 8) | 1u; /* 127.0.1.1 */
    o->algo = RL_ALGO_GCRA;
    o->timeout_ms = 10000;
    o->progress = -1;

    while ((c = getopt_long(argc, argv, "n:c:k:l:b:a:qhV", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'n':
            rc = opt_int("-n", optarg, 1, BURST_MAX_REQUESTS, &o->requests);
            n_given = 1;
            break;
        case 'c':
            rc = opt_int("-c", optarg, 1, 10000, &v);
            o->concurrency = (int)v;
            break;
        case 'k':
            rc = opt_int("-k", optarg, 1, 65536, &v);
            o->clients = (int)v;
            break;
        case 'l': rc = opt_limit(optarg, o); break;
        case 'b': rc = opt_int("--burst", optarg, 1, RL_COUNT_MAX, &o->burst_given); break;
        case 'a': rc = opt_algorithm(optarg, &o->algo); break;
        case OPT_XFF: o->xff = 1; break;
        case OPT_FIRST_CLIENT:
            if (inet_pton(AF_INET, optarg, &a) != 1)
                rc = opt_fail("--first-client", optarg, "expected an IPv4 address");
            o->first_client = ntohl(a.s_addr);
            break;
        case OPT_RATE: rc = opt_positive("--rate", optarg, 1e6, &o->rate); break;
        case OPT_DURATION:
            rc = opt_positive("--duration", optarg, 86400, &d);
            o->duration_us = (int64_t)(d * 1e6);
            break;
        case OPT_RULE: o->rule = optarg; break;
        case OPT_TIMEOUT:
            rc = opt_positive("--timeout", optarg, 3600, &d);
            o->timeout_ms = (long)ceil(d * 1000);
            break;
        case OPT_JSON: o->json = 1; break;
        case 'q': o->progress = 0; break;
        case OPT_PROGRESS: o->progress = 1; break;
        case 'h': opt_usage(stdout); return 1;
        case 'V': printf("rl-burst (ratelimit-filter) %s\n", RL_VERSION); return 1;
        default: fprintf(stderr, "Try 'rl-burst --help' for more information.\n"); return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "rl-burst: %s\nTry 'rl-burst --help' for more information.\n",
                optind >= argc ? "missing URL" : "one URL only");
        return -1;
    }
    o->url = argv[optind];
    if (o->progress < 0)
        o->progress = isatty(STDERR_FILENO) ? 1 : 0;
    return opt_check(o, n_given);
}

/* The address after a, skipping x.y.z.0 and x.y.z.255 (network and broadcast look-alikes). */
static uint32_t opt_next_addr(uint32_t a)
{
    do
        a++;
    while ((a & 0xffu) == 0 || (a & 0xffu) == 255);
    return a;
}

char (*burst_client_addrs(const burst_options *o))[BURST_ADDR_MAX]
{
    char(*addrs)[BURST_ADDR_MAX] = calloc((size_t)o->clients, sizeof *addrs);
    uint32_t a = o->first_client;
    struct in_addr ia;

    if (addrs == NULL) {
        fprintf(stderr, "rl-burst: out of memory\n");
        return NULL;
    }
    if ((a & 0xffu) == 0 || (a & 0xffu) == 255)
        a = opt_next_addr(a);
    for (int i = 0; i < o->clients; i++, a = opt_next_addr(a)) {
        /* A source address must be a loopback one: the harness only talks to this host. */
        if (!o->xff && (a >> 24) != 127) {
            ia.s_addr = htonl(a);
            inet_ntop(AF_INET, &ia, addrs[i], BURST_ADDR_MAX);
            fprintf(stderr,
                    "rl-burst: client %d would send from %s, outside 127.0.0.0/8: "
                    "use fewer clients (-k), another --first-client, or --xff\n",
                    i + 1, addrs[i]);
            free(addrs);
            return NULL;
        }
        ia.s_addr = htonl(a);
        inet_ntop(AF_INET, &ia, addrs[i], BURST_ADDR_MAX);
    }
    return addrs;
}
