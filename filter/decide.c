/* decide.c -- `ratelimit-filter --decide`: decisions from the command line, as JSON lines
 *
 * For trying a configuration: the request is described by options instead of a web server,
 * and is decided by the same core, through the same stores (shared memory, and Redis when
 * enabled), so the decisions count like real requests. Each decision prints one line:
 *   {"allowed":true,"backend":"shm","retry_after_ms":0,"rules":[{"rule":"r","allowed":true,
 *    "dry_run":false,"limit":3,"remaining":2,"reset_ms":20000,"retry_after_ms":0}]}
 * plus "verdict" and "status" (see MANUAL.md) and "client", the identity used in keys.
 */
#include "../core/fmacros.h"

#include "decide.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "decision_json.h"
#include "ratelimit.h"

typedef struct decide_header {
    char name[80];     /* lowercase */
    const char *value; /* borrowed from argv, spaces after ':' skipped */
} decide_header;

typedef struct decide_headers {
    decide_header h[DECIDE_HEADERS_MAX];
    size_t n;
} decide_headers;

static const char *decide_get_header(void *ud, const char *lowercase_name)
{
    const decide_headers *hs = ud;
    for (size_t i = 0; i < hs->n; i++)
        if (strcmp(hs->h[i].name, lowercase_name) == 0)
            return hs->h[i].value;
    return NULL;
}

/* "Name: value" into hs. 0, or -1 (reported) when malformed. */
static int decide_parse_header(const char *arg, decide_headers *hs)
{
    const char *colon = strchr(arg, ':');
    size_t n = colon != NULL ? (size_t)(colon - arg) : 0;
    decide_header *h = &hs->h[hs->n];

    if (n == 0 || n >= sizeof h->name) {
        fprintf(stderr, "ratelimit-filter: --header \"%s\": expected \"Name: value\"\n", arg);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        h->name[i] = (char)tolower((unsigned char)arg[i]);
    h->name[n] = '\0';
    h->value = colon + 1;
    while (*h->value == ' ' || *h->value == '\t')
        h->value++;
    hs->n++;
    return 0;
}

/* 1 when the segment NAME (or NAME + suffix) does not exist. */
static int decide_missing(const char *name, const char *suffix)
{
    char n[512];
    int fd;

    if (snprintf(n, sizeof n, "%s%s", name, suffix) >= (int)sizeof n)
        return 0; /* the limiter reports the name */
    fd = shm_open(n, O_RDONLY, 0);
    if (fd >= 0)
        close(fd);
    return fd < 0 && errno == ENOENT;
}

/* Run as root without shm.user, --decide would create the table or its statistics ("-stats",
 * stats.c) owned by root, mode 0600, and a pool running as the web server's user could then
 * not open them (every request a 500). A tool must never lock the pool out: refuse, say how.
 * The same for a table this configuration does not fit: --decide would replace it by a new
 * generation (shm_gen.c), and creates no segment, new or a generation, without shm.user.
 * Segments that exist and fit are only attached to, which changes no owner. */
static int decide_root_would_create(const rl_config *cfg, const char *file)
{
    const char *which = decide_missing(cfg->shm.name, "")         ? ""
                        : decide_missing(cfg->shm.name, "-stats") ? "-stats"
                                                                  : NULL;
    char plan[1024];
    int rc;

    if (geteuid() != 0 || cfg->shm.uid_set)
        return 0;
    if (which != NULL) {
        fprintf(stderr,
                "ratelimit-filter: shm \"%s%s\" does not exist yet, and --decide run as root "
                "would create it owned by root, which a pool running as another user could not "
                "open; set shm.user (the web server's user, e.g. \"www-data\") in %s, or run "
                "--decide as the pool's user (runuser -u www-data -- ratelimit-filter --decide "
                "...)\n",
                cfg->shm.name, which, file);
        return 1;
    }
    rc = rl_limiter_shm_plan(cfg, plan, sizeof plan);
    if (rc != RL_SHM_PLAN_CARRY && rc != RL_SHM_PLAN_FRESH)
        return 0; /* it fits, or the open says why not */
    fprintf(stderr,
            "ratelimit-filter: %s; --decide run as root without shm.user creates no segment, "
            "and no new generation either: set shm.user (the web server's user, e.g. "
            "\"www-data\") in %s, or run --decide as the pool's user (runuser -u www-data -- "
            "ratelimit-filter --decide ...)\n",
            plan, file);
    return 1;
}

int decide_run(const char *file, const decide_args *a)
{
    static decide_headers hs; /* 2.5 KiB, off the stack */
    rl_error err;
    rl_config *cfg;
    rl_limiter *lim;
    int rc = 0;

    hs.n = 0;
    for (size_t i = 0; i < a->nheaders; i++)
        if (decide_parse_header(a->headers[i], &hs) != 0)
            return 2;
    cfg = rl_config_load(file, &err);
    if (cfg == NULL) {
        fprintf(stderr, "ratelimit-filter: %s\n", err.text);
        return 1;
    }
    if (decide_root_would_create(cfg, file)) {
        rl_config_free(cfg);
        return 3;
    }
    lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        fprintf(stderr, "ratelimit-filter: cannot open the limiter: %s\n", err.text);
        rl_config_free(cfg);
        return 3;
    }

    rl_request req = {
        .remote_addr = a->client,
        .path = a->path,
        .method = a->method != NULL ? a->method : "GET",
        .host = a->host,
        .header = decide_get_header,
        .header_ud = &hs,
        .cost = 1,
    };
    for (long i = 0; i < a->count && rc == 0; i++) {
        rl_decision d;
        json_t *o;
        char *line;

        if (rl_decide(lim, &req, &d) != 0) {
            fprintf(stderr, "ratelimit-filter: cannot decide: %s\n", rl_limiter_errstr(lim));
            rc = 3;
            break;
        }
        if (rl_limiter_errstr(lim)[0] != '\0') /* a store failed; the decision stands */
            fprintf(stderr, "ratelimit-filter: %s\n", rl_limiter_errstr(lim));
        o = decision_json(&d);
        line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (line == NULL) {
            fprintf(stderr, "ratelimit-filter: out of memory\n");
            rc = 3;
        } else {
            printf("%s\n", line);
        }
        free(line);
        json_decref(o);
    }
    if (fflush(stdout) != 0)
        rc = 3;
    rl_limiter_close(lim);
    rl_config_free(cfg);
    return rc;
}
