/* settings.c -- the rows of the filter's sections (proxy, fastcgi, headers, admin), checks
 *
 * One rl_setting row per key (ratelimit_schema.h): the core's loader reads them with the
 * same readers and messages as its own. To add a key: a field in settings.h, a row here, a
 * line in the MANUAL's key table (test_schema checks the two agree).
 */
#include "../core/fmacros.h"

#include "settings.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "env.h"

#define NROWS(rows) (sizeof(rows) / sizeof((rows)[0]))

#define SETTINGS_TIMEOUT_MAX_MS 60000
#define SETTINGS_PROXY_TIMEOUT_MAX_MS 3600000
/* A whole exchange: a day at most; an hour by default, above any upload or download most
 * sites proxy (a bound that cut those would lose what a client or backend sent). */
#define SETTINGS_PROXY_TOTAL_MAX_MS 86400000
#define SETTINGS_ADMIN_PATH_MAX 1024
/* fastcgi: connection deadlines and the connections one process holds */
#define SETTINGS_FASTCGI_IDLE_MAX_MS 3600000
#define SETTINGS_FASTCGI_CONNECTIONS_MAX 65536

/* ---- proxy -------------------------------------------------------------------------------- */

/* Accepts "http://HOST[:PORT][/]" only: HOST a name, an IPv4 address or a bracketed IPv6
 * address. The request URI is appended as the client sent it, so a path, query, fragment or
 * userinfo here would be ambiguous: refused. Stored without the trailing '/'. */
static int settings_backend(char *v, const char *q, char *why, size_t size)
{
    static const char scheme[] = "http://";
    const char *p, *host;

    if (strncmp(v, scheme, sizeof scheme - 1) != 0) {
        snprintf(why, size, "invalid backend %s: must be an http:// URL (\"http://HOST[:PORT]\")",
                 q);
        return -1;
    }
    p = host = v + sizeof scheme - 1;
    if (*p == '[') {
        p += strspn(p + 1, "0123456789abcdefABCDEF:.") + 1;
        if (*p != ']' || p == host + 1) {
            snprintf(why, size, "invalid backend %s: bad IPv6 address", q);
            return -1;
        }
        p++;
    } else {
        p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        if (p == host) {
            snprintf(why, size, "invalid backend %s: no host", q);
            return -1;
        }
    }
    if (*p == ':') {
        const char *digits = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535) {
            snprintf(why, size, "invalid backend %s: port must be 1..65535", q);
            return -1;
        }
    }
    if (*p == '/')
        p++;
    if (*p != '\0') {
        snprintf(why, size,
                 "invalid backend %s: only \"http://HOST[:PORT]\" is allowed (the request's own "
                 "path and query are appended)",
                 q);
        return -1;
    }
    if (v[0] != '\0' && v[strlen(v) - 1] == '/')
        v[strlen(v) - 1] = '\0';
    return 0;
}

#define PROXY(f) offsetof(settings_proxy, f)
static const rl_setting settings_proxy_rows[] = {
    {.key = "backend",
     .type = RL_SETTING_STRING,
     .offset = PROXY(backend),
     .check = settings_backend,
     .doc = "forward allowed requests to this URL (unset: none)"},
    RL_SETTING_INT_ROW("connect_timeout_ms", PROXY(connect_timeout_ms), 1, SETTINGS_TIMEOUT_MAX_MS,
                       "1000", "the backend's connect bound"),
    RL_SETTING_INT_ROW("timeout_ms", PROXY(timeout_ms), 1, SETTINGS_PROXY_TIMEOUT_MAX_MS, "30000",
                       "the longest the backend may stay silent"),
    RL_SETTING_INT_ROW("total_timeout_ms", PROXY(total_timeout_ms), 1, SETTINGS_PROXY_TOTAL_MAX_MS,
                       "3600000", "the longest one exchange with the backend may take"),
};

static const rl_section settings_proxy_section = {
    "proxy", settings_proxy_rows, NROWS(settings_proxy_rows), sizeof(settings_proxy), NULL};

/* ---- fastcgi ------------------------------------------------------------------------------ */

#define FASTCGI(f) offsetof(settings_fastcgi, f)
static const rl_setting settings_fastcgi_rows[] = {
    RL_SETTING_INT_ROW("read_timeout_ms", FASTCGI(read_timeout_ms), 1, SETTINGS_TIMEOUT_MAX_MS,
                       "5000", "a request's parameters must arrive within this of its first byte"),
    RL_SETTING_INT_ROW("idle_timeout_ms", FASTCGI(idle_timeout_ms), 1, SETTINGS_FASTCGI_IDLE_MAX_MS,
                       "30000", "a kept connection with no request for this long is closed"),
    RL_SETTING_INT_ROW("max_connections", FASTCGI(max_connections), 1,
                       SETTINGS_FASTCGI_CONNECTIONS_MAX, "256",
                       "connections one filter process holds at once"),
};

static const rl_section settings_fastcgi_section = {
    "fastcgi", settings_fastcgi_rows, NROWS(settings_fastcgi_rows), sizeof(settings_fastcgi), NULL};

/* ---- headers ------------------------------------------------------------------------------ */

#define HEADERS(f) offsetof(settings_headers, f)
static const rl_setting settings_headers_rows[] = {
    {.key = "x_ratelimit",
     .type = RL_SETTING_BOOL,
     .offset = HEADERS(x_ratelimit),
     .def = "true",
     .doc = "also send X-RateLimit-*"},
    {.key = "problem_json",
     .type = RL_SETTING_BOOL,
     .offset = HEADERS(problem_json),
     .def = "false",
     .doc = "refusals carry an application/problem+json body"},
};

static const rl_section settings_headers_section = {
    "headers", settings_headers_rows, NROWS(settings_headers_rows), sizeof(settings_headers), NULL};

/* ---- admin -------------------------------------------------------------------------------- */

/* Then the row's canonical check: matched on the canonical path like the rules (exactly: an
 * alias of an admin path is an admin path, and nothing else is). */
static int settings_admin_path(char *v, const char *q, char *why, size_t size)
{
    int control = 0;

    for (const char *c = v; *c != '\0'; c++)
        control |= (unsigned char)*c < 0x20 || *c == 0x7f;
    if (v[0] == '/' && strlen(v) <= SETTINGS_ADMIN_PATH_MAX && strcspn(v, "?# ") == strlen(v) &&
        !control)
        return 0;
    snprintf(why, size,
             "invalid path %s: must start with '/', hold no '?', '#', space or control bytes, "
             "and be at most %d bytes",
             q, SETTINGS_ADMIN_PATH_MAX);
    return -1;
}

/* Two endpoints on one path would make one of them unreachable. */
static int settings_admin_finish(rl_schema_ctx *ctx, void *sec)
{
    static const char *const keys[] = {"health_path", "stats_path", "test_path", "metrics_path"};
    const settings_admin *ac = sec;
    const char *paths[] = {ac->health_path, ac->stats_path, ac->test_path, ac->metrics_path};
    char q[RL_SCHEMA_QUOTE_SIZE];

    for (int i = 1; i < 4; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(paths[i], paths[k]) == 0) {
                /* Reported at the key the file gives (the later one when both are given). */
                int at = rl_schema_given(ctx, keys[i]) ? i : k;
                return rl_schema_fail(ctx, rl_schema_given(ctx, keys[at]) ? keys[at] : NULL,
                                      "path %s is also admin.%s", rl_schema_quote(q, paths[i]),
                                      keys[at == i ? k : i]);
            }
    return 0;
}

#define ADMIN(f) offsetof(settings_admin, f)
#define ADMIN_PATH(k, f, d, what)                                                                  \
    {                                                                                              \
        .key = k, .type = RL_SETTING_STRING, .offset = ADMIN(f), .check = settings_admin_path,     \
        .canonical = "path", .def = d, .doc = what                                                 \
    }
static const rl_setting settings_admin_rows[] = {
    {.key = "enabled",
     .type = RL_SETTING_BOOL,
     .offset = ADMIN(enabled),
     .def = "true",
     .doc = "serve the admin endpoints"},
    {.key = "allow",
     .type = RL_SETTING_CIDRS,
     .offset = ADMIN(allow),
     .offset2 = ADMIN(nallow),
     .def = "[\"127.0.0.1/32\", \"::1/128\"]",
     .doc = "clients the admin endpoints answer"},
    ADMIN_PATH("health_path", health_path, "/api/health/rate-limiter", "GET health"),
    ADMIN_PATH("stats_path", stats_path, "/api/health/rate-limiter/stats", "GET statistics"),
    ADMIN_PATH("test_path", test_path, "/api/health/rate-limiter/test", "POST a test decision"),
    ADMIN_PATH("metrics_path", metrics_path, "/metrics", "GET Prometheus metrics"),
};

static const rl_section settings_admin_section = {"admin", settings_admin_rows,
                                                  NROWS(settings_admin_rows),
                                                  sizeof(settings_admin), settings_admin_finish};

/* ---- loading ------------------------------------------------------------------------------ */

static const rl_section *const settings_all[] = {&settings_proxy_section, &settings_fastcgi_section,
                                                 &settings_headers_section,
                                                 &settings_admin_section};

const rl_section *const *settings_sections(size_t *n)
{
    *n = NROWS(settings_all);
    return settings_all;
}

rl_config *settings_load(const char *file, rl_error *err)
{
    rl_config *cfg = rl_config_load_with(file, settings_all, NROWS(settings_all), err);

    if (cfg != NULL && env_apply(cfg, err) != 0) {
        rl_config_free(cfg);
        return NULL;
    }
    return cfg;
}

const settings_proxy *settings_get_proxy(const rl_config *cfg)
{
    return rl_config_section(cfg, "proxy");
}

const settings_fastcgi *settings_get_fastcgi(const rl_config *cfg)
{
    return rl_config_section(cfg, "fastcgi");
}

const settings_headers *settings_get_headers(const rl_config *cfg)
{
    return rl_config_section(cfg, "headers");
}

const settings_admin *settings_get_admin(const rl_config *cfg)
{
    return rl_config_section(cfg, "admin");
}
