/* config_groups.c -- the configuration's groups other than the rules
 *
 * shm, redis, proxy, headers, identity, access and admin: each loader walks its group's
 * members, rejects unknown keys, reads each value with config_value.c and applies defaults.
 */
#include "fmacros.h"

#include "config_int.h"

/* ---- shm ----------------------------------------------------------------------------------- */

static int cfg_shm_name(const cfg_loader *ld, const config_setting_t *s, rl_shm_config *shm)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (v[0] != '/')
        return rl_cfg_fail(ld, s, "invalid name %s: must start with '/'", rl_quote(q, v, n));
    if (strchr(v + 1, '/') != NULL)
        return rl_cfg_fail(ld, s, "invalid name %s: no '/' allowed after the first character",
                           rl_quote(q, v, n));
    if (n < CFG_SHM_NAME_MIN || n > CFG_SHM_NAME_MAX)
        return rl_cfg_fail(ld, s, "invalid name %s: must be %d..%d characters", rl_quote(q, v, n),
                           CFG_SHM_NAME_MIN, CFG_SHM_NAME_MAX);
    return rl_cfg_set_string(ld, v, 0, &shm->name);
}

/* "/ratelimit-" and the 64-bit FNV-1a hash of the file's real path, so that each
 * configuration gets its own segment whatever path it is named by. */
int rl_cfg_shm_default_name(const cfg_loader *ld, rl_shm_config *shm)
{
    char name[64];
    char *real = realpath(ld->path, NULL);
    const char *p = real != NULL ? real : ld->path;
    uint64_t h = 14695981039346656037ULL;

    for (; *p != '\0'; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    free(real);
    snprintf(name, sizeof name, "/ratelimit-%016" PRIx64, h);
    return rl_cfg_set_string(ld, name, 0, &shm->name);
}

static int cfg_shm_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_shm_config *shm = ud;
    long long v = 0;
    int rc;

    if (rl_cfg_is(s, "name"))
        rc = cfg_shm_name(ld, s, shm);
    else if (rl_cfg_is(s, "capacity")) {
        rc = rl_cfg_int(ld, s, CFG_SHM_CAPACITY_MIN, CFG_SHM_CAPACITY_MAX, &v);
        shm->capacity = v;
    } else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_shm(const cfg_loader *ld, const config_setting_t *g, rl_shm_config *shm)
{
    return rl_cfg_members(ld, g, cfg_shm_member, shm);
}

/* ---- redis --------------------------------------------------------------------------------- */

static int cfg_redis_string(const cfg_loader *ld, const config_setting_t *s, char **dst)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (rl_cfg_is(s, "host") && n == 0)
        return rl_cfg_fail(ld, s, "invalid host \"\": must not be empty");
    if (rl_cfg_is(s, "prefix") && n > CFG_REDIS_PREFIX_MAX)
        return rl_cfg_fail(ld, s, "invalid prefix %s: must be at most %d bytes", rl_quote(q, v, n),
                           CFG_REDIS_PREFIX_MAX);
    /* An empty socket, user or password means "unset"; an empty prefix is a real one. */
    return rl_cfg_set_string(
        ld, v, rl_cfg_is(s, "socket") || rl_cfg_is(s, "password") || rl_cfg_is(s, "user"), dst);
}

static int cfg_redis_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_redis_config *r = ud;
    int rc;

    if (rl_cfg_is(s, "enabled"))
        rc = rl_cfg_bool(ld, s, &r->enabled);
    else if (rl_cfg_is(s, "host"))
        rc = cfg_redis_string(ld, s, &r->host);
    else if (rl_cfg_is(s, "port"))
        rc = rl_cfg_int32(ld, s, 1, 65535, &r->port);
    else if (rl_cfg_is(s, "socket"))
        rc = cfg_redis_string(ld, s, &r->socket);
    else if (rl_cfg_is(s, "db"))
        rc = rl_cfg_int32(ld, s, 0, CFG_DB_MAX, &r->db);
    else if (rl_cfg_is(s, "user"))
        rc = cfg_redis_string(ld, s, &r->user);
    else if (rl_cfg_is(s, "password"))
        rc = cfg_redis_string(ld, s, &r->password);
    else if (rl_cfg_is(s, "prefix"))
        rc = cfg_redis_string(ld, s, &r->prefix);
    else if (rl_cfg_is(s, "connect_timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &r->connect_timeout_ms);
    else if (rl_cfg_is(s, "command_timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &r->command_timeout_ms);
    else if (rl_cfg_is(s, "breaker_failures"))
        rc = rl_cfg_int32(ld, s, 1, CFG_BREAKER_FAILURES_MAX, &r->breaker_failures);
    else if (rl_cfg_is(s, "breaker_open_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_BREAKER_OPEN_MAX_MS, &r->breaker_open_ms);
    else if (rl_cfg_is(s, "breaker_open_max_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_BREAKER_OPEN_MAX_MS, &r->breaker_open_max_ms);
    else if (rl_cfg_is(s, "hosts"))
        rc = rl_cfg_int32(ld, s, 1, CFG_HOSTS_MAX, &r->hosts);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_redis(const cfg_loader *ld, const config_setting_t *g, rl_redis_config *r)
{
    if (rl_cfg_members(ld, g, cfg_redis_member, r) != 0)
        return -1;
    const config_setting_t *max_setting = config_setting_get_member(g, "breaker_open_max_ms");
    /* The breaker's back-off doubles from breaker_open_ms up to breaker_open_max_ms. */
    if (max_setting == NULL)
        r->breaker_open_max_ms = r->breaker_open_ms > 1000 ? r->breaker_open_ms : 1000;
    else if (r->breaker_open_max_ms < r->breaker_open_ms)
        return rl_cfg_fail(ld, max_setting, "%d is below breaker_open_ms (%d)",
                           r->breaker_open_max_ms, r->breaker_open_ms);
    return 0;
}

/* ---- proxy -------------------------------------------------------------------------------- */

/* Accepts "http://HOST[:PORT][/]" only: HOST a name, an IPv4 address or a bracketed IPv6
 * address. The request URI is appended as the client sent it, so a path, query, fragment or
 * userinfo here would be ambiguous: refused. Stored without the trailing '/'. */
static int cfg_proxy_backend(const cfg_loader *ld, const config_setting_t *s, char **dst)
{
    static const char scheme[] = "http://";
    char q[RL_QUOTE_SIZE];
    const char *v, *p, *host;
    size_t n;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return rl_cfg_fail(ld, s,
                           "invalid backend %s: must be an http:// URL (\"http://HOST[:PORT]\")",
                           rl_quote(q, v, n));
    p = host = v + sizeof scheme - 1;
    if (*p == '[') {
        p += strspn(p + 1, "0123456789abcdefABCDEF:.") + 1;
        if (*p != ']' || p == host + 1)
            return rl_cfg_fail(ld, s, "invalid backend %s: bad IPv6 address", rl_quote(q, v, n));
        p++;
    } else {
        p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        if (p == host)
            return rl_cfg_fail(ld, s, "invalid backend %s: no host", rl_quote(q, v, n));
    }
    if (*p == ':') {
        const char *digits = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535)
            return rl_cfg_fail(ld, s, "invalid backend %s: port must be 1..65535",
                               rl_quote(q, v, n));
    }
    if (*p == '/')
        p++;
    if (*p != '\0')
        return rl_cfg_fail(ld, s,
                           "invalid backend %s: only \"http://HOST[:PORT]\" is allowed (the "
                           "request's own path and query are appended)",
                           rl_quote(q, v, n));
    if (rl_cfg_set_string(ld, v, 0, dst) != 0)
        return -1;
    if ((*dst)[strlen(*dst) - 1] == '/')
        (*dst)[strlen(*dst) - 1] = '\0';
    return 0;
}

static int cfg_proxy_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_proxy_config *px = ud;
    int rc;

    if (rl_cfg_is(s, "backend"))
        rc = cfg_proxy_backend(ld, s, &px->backend);
    else if (rl_cfg_is(s, "connect_timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &px->connect_timeout_ms);
    else if (rl_cfg_is(s, "timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_PROXY_TIMEOUT_MAX_MS, &px->timeout_ms);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_proxy(const cfg_loader *ld, const config_setting_t *g, rl_proxy_config *px)
{
    return rl_cfg_members(ld, g, cfg_proxy_member, px);
}

/* ---- fastcgi ------------------------------------------------------------------------------- */

static int cfg_fastcgi_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_fastcgi_config *fc = ud;
    int rc;

    if (rl_cfg_is(s, "read_timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &fc->read_timeout_ms);
    else if (rl_cfg_is(s, "idle_timeout_ms"))
        rc = rl_cfg_int32(ld, s, 1, CFG_FASTCGI_IDLE_MAX_MS, &fc->idle_timeout_ms);
    else if (rl_cfg_is(s, "max_connections"))
        rc = rl_cfg_int32(ld, s, 1, CFG_FASTCGI_CONNECTIONS_MAX, &fc->max_connections);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_fastcgi(const cfg_loader *ld, const config_setting_t *g, rl_fastcgi_config *fc)
{
    return rl_cfg_members(ld, g, cfg_fastcgi_member, fc);
}

/* ---- headers ------------------------------------------------------------------------------- */

static int cfg_headers_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_config *cfg = ud;
    int rc;

    if (rl_cfg_is(s, "x_ratelimit"))
        rc = rl_cfg_bool(ld, s, &cfg->x_ratelimit_headers);
    else if (rl_cfg_is(s, "problem_json"))
        rc = rl_cfg_bool(ld, s, &cfg->problem_json);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_headers(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg)
{
    return rl_cfg_members(ld, g, cfg_headers_member, cfg);
}

/* ---- identity and access ------------------------------------------------------------------- */

static int cfg_identity_header(const cfg_loader *ld, const config_setting_t *s,
                               rl_identity_config *ic)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (strcasecmp(v, "x-forwarded-for") == 0)
        ic->header = RL_FORWARD_XFF;
    else if (strcasecmp(v, "forwarded") == 0)
        ic->header = RL_FORWARD_FORWARDED;
    else
        return rl_cfg_fail(ld, s,
                           "unknown header %s: expected \"x-forwarded-for\" or \"forwarded\"",
                           rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_identity_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_identity_config *ic = ud;
    int rc;

    if (rl_cfg_is(s, "trusted_proxies"))
        rc = rl_cfg_cidr_list(ld, s, &ic->trusted, &ic->ntrusted);
    else if (rl_cfg_is(s, "header"))
        rc = cfg_identity_header(ld, s, ic);
    else if (rl_cfg_is(s, "ipv6_prefix"))
        rc = rl_cfg_int32(ld, s, 1, 128, &ic->ipv6_prefix);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_identity(const cfg_loader *ld, const config_setting_t *g, rl_identity_config *ic)
{
    return rl_cfg_members(ld, g, cfg_identity_member, ic);
}

static int cfg_access_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_access_config *ac = ud;
    int rc;

    if (rl_cfg_is(s, "allow"))
        rc = rl_cfg_cidr_list(ld, s, &ac->allow, &ac->nallow);
    else if (rl_cfg_is(s, "deny"))
        rc = rl_cfg_cidr_list(ld, s, &ac->deny, &ac->ndeny);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_access(const cfg_loader *ld, const config_setting_t *g, rl_access_config *ac)
{
    return rl_cfg_members(ld, g, cfg_access_member, ac);
}

/* ---- admin endpoints ---------------------------------------------------------------------- */

static int cfg_admin_path(const cfg_loader *ld, const config_setting_t *s, char **dst)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (v[0] != '/' || strlen(v) > CFG_ADMIN_PATH_MAX || strcspn(v, "?# ") != strlen(v) ||
        rl_cfg_has_control(v))
        return rl_cfg_fail(ld, s,
                           "invalid path %s: must start with '/', hold no '?', '#', space or "
                           "control bytes, and be at most %d bytes",
                           rl_quote(q, v, strlen(v)), CFG_ADMIN_PATH_MAX);
    return rl_cfg_set_string(ld, v, 0, dst);
}

/* Two endpoints on one path would make one of them unreachable. */
static int cfg_admin_distinct(const cfg_loader *ld, const config_setting_t *g,
                              const rl_admin_config *ac)
{
    static const char *const keys[] = {"health_path", "stats_path", "test_path", "metrics_path"};
    const char *paths[] = {ac->health_path, ac->stats_path, ac->test_path, ac->metrics_path};
    char q[RL_QUOTE_SIZE];

    for (int i = 1; i < 4; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(paths[i], paths[k]) == 0) {
                const config_setting_t *s = config_setting_get_member(g, keys[i]);
                if (s == NULL)
                    s = config_setting_get_member(g, keys[k]);
                return rl_cfg_fail(
                    ld, s != NULL ? s : g, "path %s is also admin.%s",
                    rl_quote(q, paths[i], strlen(paths[i])),
                    s != NULL && strcmp(config_setting_name(s), keys[i]) == 0 ? keys[k] : keys[i]);
            }
    return 0;
}

int rl_cfg_admin_defaults(const cfg_loader *ld, rl_admin_config *ac, int allow_given)
{
    static const struct {
        char **dst;
        const char *v;
    } * d, defs[] = {{NULL, "/api/health/rate-limiter"},
                     {NULL, "/api/health/rate-limiter/stats"},
                     {NULL, "/api/health/rate-limiter/test"},
                     {NULL, "/metrics"}};
    char **dsts[] = {&ac->health_path, &ac->stats_path, &ac->test_path, &ac->metrics_path};
    char why[128];

    for (int i = 0; i < 4; i++) {
        d = &defs[i];
        if (*dsts[i] == NULL && rl_cfg_set_string(ld, d->v, 0, dsts[i]) != 0)
            return -1;
    }
    if (!allow_given) {
        ac->allow = calloc(2, sizeof *ac->allow);
        if (ac->allow == NULL)
            return rl_cfg_oom(ld);
        if (rl_cidr_parse("127.0.0.1/32", &ac->allow[0], why, sizeof why) != 0 ||
            rl_cidr_parse("::1/128", &ac->allow[1], why, sizeof why) != 0)
            return rl_cfg_fail_file(ld, "admin.allow default: %s", why);
        ac->nallow = 2;
    }
    return 0;
}

static int cfg_admin_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    rl_admin_config *ac = ud;
    int rc;

    if (rl_cfg_is(s, "enabled"))
        rc = rl_cfg_bool(ld, s, &ac->enabled);
    else if (rl_cfg_is(s, "allow"))
        rc = rl_cfg_cidr_list(ld, s, &ac->allow, &ac->nallow);
    else if (rl_cfg_is(s, "health_path"))
        rc = cfg_admin_path(ld, s, &ac->health_path);
    else if (rl_cfg_is(s, "stats_path"))
        rc = cfg_admin_path(ld, s, &ac->stats_path);
    else if (rl_cfg_is(s, "test_path"))
        rc = cfg_admin_path(ld, s, &ac->test_path);
    else if (rl_cfg_is(s, "metrics_path"))
        rc = cfg_admin_path(ld, s, &ac->metrics_path);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_admin(const cfg_loader *ld, const config_setting_t *g, rl_admin_config *ac)
{
    if (rl_cfg_members(ld, g, cfg_admin_member, ac) != 0)
        return -1;
    if (rl_cfg_admin_defaults(ld, ac, config_setting_get_member(g, "allow") != NULL) != 0)
        return -1;
    return cfg_admin_distinct(ld, g, ac);
}

/* Reads the whole file into a NUL-terminated buffer (the caller frees it). */
