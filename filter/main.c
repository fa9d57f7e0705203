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

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "decide.h"
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
    MAIN_OPT_CLIENT,
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
    int64_t *live = calloc(cfg->nrules + 1, sizeof *live);
    int64_t *stale = calloc(cfg->nrules + 1, sizeof *stale);

    if (live != NULL && stale != NULL && rl_limiter_shm_census(cfg, live, stale) == 0) {
        for (size_t i = 0; i < cfg->nrules; i++) {
            const char *n = cfg->rules[i].name;
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
    rl_config *cfg = rl_config_load(file, &err);

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
    rl_config *cfg = rl_config_load(file, &err);

    if (cfg == NULL) {
        fprintf(stderr, "ratelimit-filter: %s\n", err.text);
        return MAIN_EXIT_CONFIG;
    }
    if (rl_shm_unlink(cfg->shm.name) == 0)
        fprintf(stderr, "ratelimit-filter: removed shared memory %s\n", cfg->shm.name);
    else
        fprintf(stderr, "ratelimit-filter: shared memory %s did not exist\n", cfg->shm.name);
    if (rl_stats_unlink(cfg->shm.name) == 0)
        fprintf(stderr, "ratelimit-filter: removed its statistics %s-stats\n", cfg->shm.name);
    rl_config_free(cfg);
    return MAIN_EXIT_OK;
}

/* The prefork daemon: the stores are opened once here only to fail at start (exit 3) rather
 * than in a restart loop; each worker opens its own after fork. */
static int main_daemon(const char *file, const char *listen_spec, int workers)
{
    char why[512];
    rl_error err;
    rl_config *cfg = rl_config_load(file, &err);

    if (cfg == NULL) {
        log_error("%s", err.text);
        return MAIN_EXIT_CONFIG;
    }
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        log_error("cannot open the limiter: %s", err.text);
        rl_config_free(cfg);
        return MAIN_EXIT_RUNTIME;
    }
    if (*rl_limiter_shm_note(lim) != '\0')
        log_info("%s", rl_limiter_shm_note(lim));
    rl_limiter_close(lim);
    int fd = listen_open(listen_spec, why, sizeof why);
    if (fd < 0) {
        log_error("%s", why);
        rl_config_free(cfg);
        return MAIN_EXIT_RUNTIME;
    }
    log_info("listening on %s (configuration %s)", listen_spec, file);
    int rc = prefork_run(&cfg, fd, workers);
    listen_close(fd, listen_spec);
    rl_config_free(cfg);
    return rc == 0 ? MAIN_EXIT_OK : MAIN_EXIT_RUNTIME;
}

static int main_serve(const char *file)
{
    rl_error err;
    rl_config *cfg = rl_config_load(file, &err);

    if (cfg == NULL) {
        log_error("%s", err.text);
        return MAIN_EXIT_CONFIG;
    }
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        log_error("cannot open the limiter: %s", err.text);
        rl_config_free(cfg);
        return MAIN_EXIT_RUNTIME;
    }
    if (*rl_limiter_shm_note(lim) != '\0')
        log_info("%s", rl_limiter_shm_note(lim));
    int rc = loop_run(&cfg, &lim);
    rl_limiter_close(lim);
    rl_config_free(cfg);
    return rc == 0 ? MAIN_EXIT_OK : MAIN_EXIT_RUNTIME;
}

int main(int argc, char **argv)
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
    const char *file = getenv("RATELIMIT_CONFIG");
    enum main_mode mode = MAIN_SERVE;
    decide_args da = {.count = 1};
    int decide_opts = 0; /* request options given: they need --decide */
    int c;
    const char *listen_spec = NULL;
    int workers = 0;

    if (file == NULL || file[0] == '\0')
        file = MAIN_DEFAULT_CONFIG;
    while ((c = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 't':
        case MAIN_OPT_SHM_REMOVE:
        case MAIN_OPT_DECIDE:
            if (mode != MAIN_SERVE) {
                fprintf(stderr,
                        "ratelimit-filter: -t, --shm-remove and --decide exclude each other\n");
                return main_usage_error();
            }
            mode = c == 't' ? MAIN_TEST : c == MAIN_OPT_DECIDE ? MAIN_DECIDE : MAIN_SHM_REMOVE;
            break;
        case MAIN_OPT_CLIENT:
            da.client = optarg;
            decide_opts = 1;
            break;
        case MAIN_OPT_PATH:
            da.path = optarg;
            decide_opts = 1;
            break;
        case MAIN_OPT_METHOD:
            da.method = optarg;
            decide_opts = 1;
            break;
        case MAIN_OPT_HOST:
            da.host = optarg;
            decide_opts = 1;
            break;
        case MAIN_OPT_HEADER:
            if (da.nheaders == DECIDE_HEADERS_MAX) {
                fprintf(stderr, "ratelimit-filter: at most %d --header\n", DECIDE_HEADERS_MAX);
                return main_usage_error();
            }
            da.headers[da.nheaders++] = optarg;
            decide_opts = 1;
            break;
        case MAIN_OPT_COUNT: {
            char *end;
            da.count = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || da.count < 1 || da.count > MAIN_COUNT_MAX) {
                fprintf(stderr, "ratelimit-filter: --count \"%s\": expected 1..%d\n", optarg,
                        MAIN_COUNT_MAX);
                return main_usage_error();
            }
            decide_opts = 1;
            break;
        }
        case MAIN_OPT_LISTEN:
            if (optarg[0] == '\0') {
                fprintf(stderr, "ratelimit-filter: --listen needs an address or a path\n");
                return main_usage_error();
            }
            listen_spec = optarg;
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
            workers = (int)n;
            break;
        }
        case 'h': main_usage(stdout); return MAIN_EXIT_OK;
        case 'V': printf("ratelimit-filter %s\n", RL_VERSION); return MAIN_EXIT_OK;
        default: /* getopt_long already said what was wrong */ return main_usage_error();
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ratelimit-filter: unexpected argument \"%s\"\n", argv[optind]);
        return main_usage_error();
    }
    if (file[0] == '\0') {
        fprintf(stderr, "ratelimit-filter: -c needs a file name\n");
        return main_usage_error();
    }

    if (decide_opts && mode != MAIN_DECIDE) {
        fprintf(stderr, "ratelimit-filter: --client, --path, --method, --host, --header and "
                        "--count need --decide\n");
        return main_usage_error();
    }
    if (mode == MAIN_DECIDE && (da.client == NULL || da.path == NULL)) {
        fprintf(stderr, "ratelimit-filter: --decide needs --client and --path\n");
        return main_usage_error();
    }
    if (workers != 0 && listen_spec == NULL) {
        fprintf(stderr, "ratelimit-filter: --workers needs --listen\n");
        return main_usage_error();
    }
    if (listen_spec != NULL && mode != MAIN_SERVE) {
        fprintf(stderr, "ratelimit-filter: --listen excludes -t, --shm-remove and --decide\n");
        return main_usage_error();
    }

    switch (mode) {
    case MAIN_TEST: return main_test(file);
    case MAIN_DECIDE: return decide_run(file, &da);
    case MAIN_SHM_REMOVE: return main_shm_remove(file);
    default: break;
    }
    /* Before any fork: libcurl's global state is set up once, the proxy handles per process. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error("libcurl could not be initialised");
        return MAIN_EXIT_RUNTIME;
    }
    int rc = listen_spec != NULL
                 ? main_daemon(file, listen_spec, workers ? workers : MAIN_DEFAULT_WORKERS)
                 : main_serve(file);
    curl_global_cleanup();
    return rc;
}
