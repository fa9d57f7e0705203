/* main.c -- ratelimit-filter: options, configuration, then serve
 *
 *   ratelimit-filter [-c FILE]            serve (FastCGI on fd 0, or one CGI request)
 *   ratelimit-filter --listen ADDR [--workers N] [-c FILE]
 *                                         the prefork daemon (master and N workers)
 *   ratelimit-filter -t [-c FILE]         check the configuration and exit
 *   ratelimit-filter --shm-remove [-c F]  remove the configuration's shared-memory segments
 *                                         (the table and its statistics)
 *   ratelimit-filter --decide [-c FILE] --client ADDR --path PATH [--method M] [--host H]
 *                    [--header 'Name: value']... [--count N]
 *                                         decide N requests, print one JSON line each
 *
 * FILE defaults to $RATELIMIT_CONFIG, else MAIN_DEFAULT_CONFIG. Exit codes: 0 ok,
 * 1 configuration error, 2 usage error, 3 runtime error (cannot open the stores, bind the
 * socket, or accept).
 */
#include "../core/fmacros.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "decide.h"
#include "settings.h"
#include "fcgi_loop.h"
#include "listen.h"
#include "log.h"
#include "prefork.h"
#include "ratelimit.h"

#define MAIN_DEFAULT_CONFIG "/etc/ratelimit-filter/ratelimit.conf"
#define MAIN_DEFAULT_WORKERS 4

enum { MAIN_EXIT_OK = 0, MAIN_EXIT_CONFIG = 1, MAIN_EXIT_USAGE = 2, MAIN_EXIT_RUNTIME = 3 };

enum main_mode { MAIN_SERVE, MAIN_TEST, MAIN_SHM_REMOVE, MAIN_DECIDE };

enum {
    MAIN_OPT_SHM_REMOVE = 256,
    MAIN_OPT_DECIDE,
    MAIN_OPT_CLIENT, /* CLIENT..COUNT: a request's options, which need --decide */
    MAIN_OPT_PATH,
    MAIN_OPT_METHOD,
    MAIN_OPT_HOST,
    MAIN_OPT_HEADER,
    MAIN_OPT_COUNT,
    MAIN_OPT_LISTEN,
    MAIN_OPT_WORKERS,
};

#define MAIN_COUNT_MAX 1000000

static void main_usage(FILE *out)
{
    fprintf(out,
            "Usage: ratelimit-filter [-c FILE] [-t | --shm-remove]\n"
            "       ratelimit-filter --decide [-c FILE] --client ADDR --path PATH [--method M]\n"
            "                        [--host H] [--header 'Name: value']... [--count N]\n"
            "       ratelimit-filter --listen ADDR [--workers N] [-c FILE]\n"
            "\n"
            "A rate limiter for web servers, run as a FastCGI authorizer or responder (which\n"
            "forwards allowed requests to proxy.backend).\n"
            "\n"
            "  -c, --config FILE  configuration file (default: $RATELIMIT_CONFIG, else\n"
            "                     " MAIN_DEFAULT_CONFIG ")\n"
            "  -t, --test         check the configuration file and exit\n"
            "      --shm-remove   remove the configuration's shared-memory segment and exit\n"
            "      --decide       decide COUNT requests (default 1) through the configured\n"
            "                     stores and print one JSON line per decision; the request is\n"
            "                     --client (the peer address), --path, --method (GET),\n"
            "                     --host and --header (repeatable)\n"
            "      --listen ADDR  run as a daemon on ADDR: IP:PORT, [IPv6]:PORT or /path.sock\n"
            "                     (unix socket, mode 0660)\n"
            "      --workers N    worker processes of the daemon, 1..%d (default %d)\n"
            "  -h, --help         show this help and exit\n"
            "  -V, --version      show the version and exit\n"
            "\n"
            "Exit status: 0 ok, 1 configuration error, 2 usage error, 3 runtime error.\n",
            PREFORK_WORKERS_MAX, MAIN_DEFAULT_WORKERS);
}

static int main_usage_error(void)
{
    fprintf(stderr, "Usage: ratelimit-filter [-c FILE] [-t | --shm-remove | --listen ADDR]\n"
                    "Try 'ratelimit-filter --help' for more information.\n");
    return MAIN_EXIT_USAGE;
}

/* Each rule's live state in the table in place: kept, or (its limit or algorithm changed: its
 * keys carry another fingerprint) not read again. */
static void main_test_census(const rl_config *cfg)
{
    size_t nrules = rl_config_nrules(cfg);
    int64_t *live = calloc(nrules + 1, sizeof *live);
    int64_t *stale = calloc(nrules + 1, sizeof *stale);

    if (live != NULL && stale != NULL && rl_limiter_shm_census(cfg, live, stale) == 0) {
        for (size_t i = 0; i < nrules; i++) {
            const char *n = rl_config_rule(cfg, i)->name;
            if (live[i] > 0)
                fprintf(stderr, "ratelimit-filter: rule \"%s\": %lld live entries, kept\n", n,
                        (long long)live[i]);
            if (stale[i] > 0)
                fprintf(stderr,
                        "ratelimit-filter: rule \"%s\": %lld live entries under another limit "
                        "or algorithm are not read: its clients start fresh under this one\n",
                        n, (long long)stale[i]);
        }
    }
    free(live);
    free(stale);
}

static int main_test(const char *file)
{
    rl_error err;
    rl_config *cfg = settings_load(file, &err);

    if (cfg == NULL) {
        fprintf(stderr, "ratelimit-filter: %s\n", err.text);
        fprintf(stderr, "ratelimit-filter: configuration file %s test failed\n", file);
        return MAIN_EXIT_CONFIG;
    }
    /* What a start or reload would do to the running table: whether the clients' state is
     * kept, carried to a new generation, or reset; and a table it could not open fails the
     * test, so a configuration -t accepts is never refused at start for a reason it hid. */
    char plan[1024];
    int rc = rl_limiter_shm_plan(cfg, plan, sizeof plan);
    fprintf(stderr, "ratelimit-filter: %s\n", plan);
    if (rc == RL_SHM_PLAN_KEEP || rc == RL_SHM_PLAN_CARRY)
        main_test_census(cfg);
    rl_config_free(cfg);
    if (rc < 0) {
        fprintf(stderr, "ratelimit-filter: configuration file %s test failed\n", file);
        return MAIN_EXIT_RUNTIME;
    }
    fprintf(stderr, "ratelimit-filter: configuration file %s test is successful\n", file);
    return MAIN_EXIT_OK;
}

static int main_shm_remove(const char *file)
{
    rl_error err;
    rl_config *cfg = settings_load(file, &err);

    if (cfg == NULL) {
        fprintf(stderr, "ratelimit-filter: %s\n", err.text);
        return MAIN_EXIT_CONFIG;
    }
    if (rl_shm_unlink(rl_config_shm_name(cfg)) == 0)
        fprintf(stderr, "ratelimit-filter: removed shared memory %s\n", rl_config_shm_name(cfg));
    else
        fprintf(stderr, "ratelimit-filter: shared memory %s did not exist\n",
                rl_config_shm_name(cfg));
    if (rl_stats_unlink(rl_config_shm_name(cfg)) == 0)
        fprintf(stderr, "ratelimit-filter: removed its statistics %s-stats\n",
                rl_config_shm_name(cfg));
    rl_config_free(cfg);
    return MAIN_EXIT_OK;
}

/* Loads file and opens its limiter (logging the table's note): MAIN_EXIT_OK with *cfg and
 * *lim the caller's, or the exit code (logged: configuration or runtime). */
static int main_open(const char *file, rl_config **cfg, rl_limiter **lim)
{
    rl_error err;

    if ((*cfg = settings_load(file, &err)) == NULL) {
        log_error("%s", err.text);
        return MAIN_EXIT_CONFIG;
    }
    if ((*lim = rl_limiter_open(*cfg, &err)) == NULL) {
        log_error("cannot open the limiter: %s", err.text);
        rl_config_free(*cfg);
        return MAIN_EXIT_RUNTIME;
    }
    if (*rl_limiter_shm_note(*lim) != '\0')
        log_info("%s", rl_limiter_shm_note(*lim));
    return MAIN_EXIT_OK;
}

/* The prefork daemon: the stores are opened once here only to fail at start (exit 3) rather
 * than in a restart loop; each worker opens its own after fork. */
static int main_daemon(const char *file, const char *listen_spec, int workers)
{
    char why[512];
    rl_config *cfg;
    rl_limiter *lim;
    int rc = main_open(file, &cfg, &lim);

    if (rc != MAIN_EXIT_OK)
        return rc;
    rl_limiter_close(lim);
    int fd = listen_open(listen_spec, why, sizeof why);
    if (fd < 0) {
        log_error("%s", why);
        rl_config_free(cfg);
        return MAIN_EXIT_RUNTIME;
    }
    log_info("listening on %s (configuration %s)", listen_spec, file);
    rc = prefork_run(&cfg, fd, workers);
    listen_close(fd, listen_spec);
    rl_config_free(cfg);
    return rc == 0 ? MAIN_EXIT_OK : MAIN_EXIT_RUNTIME;
}

static int main_serve(const char *file)
{
    rl_config *cfg;
    rl_limiter *lim;
    int rc = main_open(file, &cfg, &lim);

    if (rc != MAIN_EXIT_OK)
        return rc;
    rc = loop_run(&cfg, &lim);
    rl_limiter_close(lim);
    rl_config_free(cfg);
    return rc == 0 ? MAIN_EXIT_OK : MAIN_EXIT_RUNTIME;
}

/* What the command line asks. */
typedef struct main_opts {
    const char *file;
    enum main_mode mode;
    decide_args da;
    int decide_opts; /* request options given: they need --decide */
    const char *listen_spec;
    int workers;
} main_opts;

/* Takes option c (its argument in optarg) into o. -1 to go on, or the exit code. */
static int main_option(int c, main_opts *o)
{
    if (c >= MAIN_OPT_CLIENT && c <= MAIN_OPT_COUNT)
        o->decide_opts = 1;
    switch (c) {
    case 'c': o->file = optarg; break;
    case 't':
    case MAIN_OPT_SHM_REMOVE:
    case MAIN_OPT_DECIDE:
        if (o->mode != MAIN_SERVE) {
            fprintf(stderr, "ratelimit-filter: -t, --shm-remove and --decide exclude each other\n");
            return main_usage_error();
        }
        o->mode = c == 't' ? MAIN_TEST : c == MAIN_OPT_DECIDE ? MAIN_DECIDE : MAIN_SHM_REMOVE;
        break;
    case MAIN_OPT_CLIENT: o->da.client = optarg; break;
    case MAIN_OPT_PATH: o->da.path = optarg; break;
    case MAIN_OPT_METHOD: o->da.method = optarg; break;
    case MAIN_OPT_HOST: o->da.host = optarg; break;
    case MAIN_OPT_HEADER:
        if (o->da.nheaders == DECIDE_HEADERS_MAX) {
            fprintf(stderr, "ratelimit-filter: at most %d --header\n", DECIDE_HEADERS_MAX);
            return main_usage_error();
        }
        o->da.headers[o->da.nheaders++] = optarg;
        break;
    case MAIN_OPT_COUNT: {
        char *end;
        o->da.count = strtol(optarg, &end, 10);
        if (end == optarg || *end != '\0' || o->da.count < 1 || o->da.count > MAIN_COUNT_MAX) {
            fprintf(stderr, "ratelimit-filter: --count \"%s\": expected 1..%d\n", optarg,
                    MAIN_COUNT_MAX);
            return main_usage_error();
        }
        break;
    }
    case MAIN_OPT_LISTEN:
        if (optarg[0] == '\0') {
            fprintf(stderr, "ratelimit-filter: --listen needs an address or a path\n");
            return main_usage_error();
        }
        o->listen_spec = optarg;
        break;
    case MAIN_OPT_WORKERS: {
        char *end;
        errno = 0;
        long n = strtol(optarg, &end, 10);
        if (*end != '\0' || end == optarg || errno != 0 || n < 1 || n > PREFORK_WORKERS_MAX) {
            fprintf(stderr, "ratelimit-filter: --workers \"%s\": must be 1..%d\n", optarg,
                    PREFORK_WORKERS_MAX);
            return main_usage_error();
        }
        o->workers = (int)n;
        break;
    }
    case 'h': main_usage(stdout); return MAIN_EXIT_OK;
    case 'V': printf("ratelimit-filter %s\n", RL_VERSION); return MAIN_EXIT_OK;
    default: /* getopt_long already said what was wrong */ return main_usage_error();
    }
    return -1;
}

/* Reads the command line into o. -1 to go on, or the exit code (usage errors said). */
static int main_args(int argc, char **argv, main_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"shm-remove", no_argument, NULL, MAIN_OPT_SHM_REMOVE},
        {"decide", no_argument, NULL, MAIN_OPT_DECIDE},
        {"client", required_argument, NULL, MAIN_OPT_CLIENT},
        {"path", required_argument, NULL, MAIN_OPT_PATH},
        {"method", required_argument, NULL, MAIN_OPT_METHOD},
        {"host", required_argument, NULL, MAIN_OPT_HOST},
        {"header", required_argument, NULL, MAIN_OPT_HEADER},
        {"count", required_argument, NULL, MAIN_OPT_COUNT},
        {"listen", required_argument, NULL, MAIN_OPT_LISTEN},
        {"workers", required_argument, NULL, MAIN_OPT_WORKERS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, rc;

    while ((c = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1)
        if ((rc = main_option(c, o)) != -1)
            return rc;
    if (optind < argc) {
        fprintf(stderr, "ratelimit-filter: unexpected argument \"%s\"\n", argv[optind]);
        return main_usage_error();
    }
    if (o->file[0] == '\0') {
        fprintf(stderr, "ratelimit-filter: -c needs a file name\n");
        return main_usage_error();
    }
    if (o->decide_opts && o->mode != MAIN_DECIDE) {
        fprintf(stderr, "ratelimit-filter: --client, --path, --method, --host, --header and "
                        "--count need --decide\n");
        return main_usage_error();
    }
    if (o->mode == MAIN_DECIDE && (o->da.client == NULL || o->da.path == NULL)) {
        fprintf(stderr, "ratelimit-filter: --decide needs --client and --path\n");
        return main_usage_error();
    }
    if (o->workers != 0 && o->listen_spec == NULL) {
        fprintf(stderr, "ratelimit-filter: --workers needs --listen\n");
        return main_usage_error();
    }
    if (o->listen_spec != NULL && o->mode != MAIN_SERVE) {
        fprintf(stderr, "ratelimit-filter: --listen excludes -t, --shm-remove and --decide\n");
        return main_usage_error();
    }
    return -1;
}

int main(int argc, char **argv)
{
    main_opts o = {.file = getenv("RATELIMIT_CONFIG"), .mode = MAIN_SERVE, .da = {.count = 1}};
    int rc;

    if (o.file == NULL || o.file[0] == '\0')
        o.file = MAIN_DEFAULT_CONFIG;
    if ((rc = main_args(argc, argv, &o)) != -1)
        return rc;
    switch (o.mode) {
    case MAIN_TEST: return main_test(o.file);
    case MAIN_DECIDE: return decide_run(o.file, &o.da);
    case MAIN_SHM_REMOVE: return main_shm_remove(o.file);
    default: break;
    }
    return o.listen_spec != NULL
               ? main_daemon(o.file, o.listen_spec, o.workers ? o.workers : MAIN_DEFAULT_WORKERS)
               : main_serve(o.file);
}
