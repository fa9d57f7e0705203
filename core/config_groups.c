/* config_groups.c -- the configuration's groups other than the rules
 *
 * shm, redis, proxy, headers, identity, access and admin: each loader walks its group's
 * members, rejects unknown keys, reads each value with config_value.c and applies defaults.
 * shm.user and shm.group are looked up here, once: the request path never touches the user
 * database.
 */
#include "fmacros.h"

#include "config_int.h"
#include "redis_cluster.h"

#include <grp.h>
#include <pwd.h>

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

/* ---- shm: who owns the segments ---------------------------------------------------------- */

/* fchown takes (uid_t)-1 as "unchanged": never a real id. */
#define CFG_ID_MAX 0xfffffffeULL

/* What the shm group's members tell each other: shm.group's and shm.mode's defaults depend on
 * shm.user and shm.group, whatever order they are written in. */
typedef struct cfg_shm_ud {
    rl_shm_config *shm;
    int primary_set; /* shm.user names a user of the database: its primary group */
    uint32_t primary;
    int group_given, mode_given;
} cfg_shm_ud;

/* 1 and *out when v is a decimal id in [0, CFG_ID_MAX], else 0. */
static int cfg_numeric_id(const char *v, uint32_t *out)
{
    size_t n = strlen(v);
    unsigned long long id;

    if (n == 0 || n > 10 || strspn(v, "0123456789") != n)
        return 0;
    id = strtoull(v, NULL, 10);
    if (id > CFG_ID_MAX)
        return 0;
    *out = (uint32_t)id;
    return 1;
}

/* getpwnam_r / getpwuid_r (by_id) with a buffer grown on ERANGE (*buf: the caller frees).
 * 0 with *res NULL when there is no such user; an errno value when the lookup failed. */
static int cfg_getpw(const char *name, int by_id, uint32_t id, struct passwd *pwd, char **buf,
                     struct passwd **res)
{
    for (size_t size = 1024;; size *= 2) {
        char *b = realloc(*buf, size);
        int rc;

        if (b == NULL)
            return ENOMEM;
        *buf = b;
        *res = NULL;
        rc = by_id ? getpwuid_r((uid_t)id, pwd, b, size, res) : getpwnam_r(name, pwd, b, size, res);
        if (rc != ERANGE || size >= CFG_PW_BUF_MAX)
            /* The man page lists these as also meaning "not found". */
            return rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? 0 : rc;
    }
}

static int cfg_getgr(const char *name, struct group *grp, char **buf, struct group **res)
{
    for (size_t size = 1024;; size *= 2) {
        char *b = realloc(*buf, size);
        int rc;

        if (b == NULL)
            return ENOMEM;
        *buf = b;
        *res = NULL;
        rc = getgrnam_r(name, grp, b, size, res);
        if (rc != ERANGE || size >= CFG_PW_BUF_MAX)
            return rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? 0 : rc;
    }
}

/* A user name of the system's database, or a numeric uid (which needs no entry). */
static int cfg_shm_user(const cfg_loader *ld, const config_setting_t *s, cfg_shm_ud *u)
{
    char q[RL_QUOTE_SIZE];
    struct passwd pwd, *pw;
    char *buf = NULL;
    const char *v;
    uint32_t id = 0;
    int numeric, rc;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    numeric = cfg_numeric_id(v, &id);
    rc = cfg_getpw(v, 0, 0, &pwd, &buf, &pw);
    if (rc == 0 && pw == NULL && numeric)
        rc = cfg_getpw(NULL, 1, id, &pwd, &buf, &pw);
    if (rc != 0) {
        free(buf);
        return rl_cfg_fail(ld, s, "cannot look up user %s: %s", rl_quote(q, v, strlen(v)),
                           strerror(rc));
    }
    if (pw == NULL && !numeric) {
        free(buf);
        return rl_cfg_fail(ld, s,
                           "unknown user %s: not in the user database (getent passwd); a "
                           "numeric uid is also accepted",
                           rl_quote(q, v, strlen(v)));
    }
    u->shm->uid_set = 1;
    u->shm->uid = pw != NULL ? (uint32_t)pw->pw_uid : id;
    u->primary_set = pw != NULL;
    u->primary = pw != NULL ? (uint32_t)pw->pw_gid : 0;
    free(buf);
    return 0;
}

static int cfg_shm_group(const cfg_loader *ld, const config_setting_t *s, cfg_shm_ud *u)
{
    char q[RL_QUOTE_SIZE];
    struct group grp, *gr;
    char *buf = NULL;
    const char *v;
    uint32_t id = 0;
    int numeric, rc;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    numeric = cfg_numeric_id(v, &id);
    rc = cfg_getgr(v, &grp, &buf, &gr);
    if (rc != 0) {
        free(buf);
        return rl_cfg_fail(ld, s, "cannot look up group %s: %s", rl_quote(q, v, strlen(v)),
                           strerror(rc));
    }
    if (gr == NULL && !numeric) {
        free(buf);
        return rl_cfg_fail(ld, s,
                           "unknown group %s: not in the group database (getent group); a "
                           "numeric gid is also accepted",
                           rl_quote(q, v, strlen(v)));
    }
    u->shm->gid_set = 1;
    u->shm->gid = gr != NULL ? (uint32_t)gr->gr_gid : id;
    u->group_given = 1;
    free(buf);
    return 0;
}

/* A string of octal digits: libconfig reads 0660 as the decimal number 660. The owner (the
 * pool) maps the segment read-write, so it needs rw; the group may share it; anyone else who
 * could open it could read the clients' keys or reset every limit, so others get nothing. */
static int cfg_shm_mode(const cfg_loader *ld, const config_setting_t *s, cfg_shm_ud *u)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;
    long m;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return rl_cfg_fail(ld, s,
                           "must be a string of octal digits, e.g. \"0660\" (an unquoted 0660 "
                           "would be read as the decimal number 660)");
    v = config_setting_get_string(s);
    n = strlen(v);
    if (n < 3 || n > 4 || strspn(v, "01234567") != n || (n == 4 && v[0] != '0'))
        return rl_cfg_fail(ld, s, "invalid mode %s: expected 3 or 4 octal digits, e.g. \"0660\"",
                           rl_quote(q, v, n));
    m = strtol(v, NULL, 8);
    if ((m & 0600) != 0600 || (m & ~0660L) != 0)
        return rl_cfg_fail(ld, s,
                           "invalid mode %s: the owner needs read and write (0600), the group "
                           "may have read and write (0060), nothing else is allowed (no "
                           "execute, nothing for others)",
                           rl_quote(q, v, n));
    u->shm->mode = (int)m;
    u->mode_given = 1;
    return 0;
}

static int cfg_shm_member(const cfg_loader *ld, const config_setting_t *s, void *ud)
{
    cfg_shm_ud *u = ud;
    rl_shm_config *shm = u->shm;
    long long v = 0;
    int rc;

    if (rl_cfg_is(s, "name"))
        rc = cfg_shm_name(ld, s, shm);
    else if (rl_cfg_is(s, "capacity")) {
        rc = rl_cfg_int(ld, s, CFG_SHM_CAPACITY_MIN, CFG_SHM_CAPACITY_MAX, &v);
        shm->capacity = v;
    } else if (rl_cfg_is(s, "user"))
        rc = cfg_shm_user(ld, s, u);
    else if (rl_cfg_is(s, "group"))
        rc = cfg_shm_group(ld, s, u);
    else if (rl_cfg_is(s, "mode"))
        rc = cfg_shm_mode(ld, s, u);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_shm(const cfg_loader *ld, const config_setting_t *g, rl_shm_config *shm)
{
    cfg_shm_ud u = {.shm = shm};

    if (rl_cfg_members(ld, g, cfg_shm_member, &u) != 0)
        return -1;
    if (!u.group_given && u.primary_set) {
        shm->gid_set = 1;
        shm->gid = u.primary;
    }
    if (u.group_given && !u.mode_given)
        shm->mode = 0660; /* naming a group means sharing with it */
    return 0;
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
    if ((rl_cfg_is(s, "host") || rl_cfg_is(s, "master_name")) && n == 0)
        return rl_cfg_fail(ld, s, "invalid %s \"\": must not be empty",
                           rl_cfg_is(s, "host") ? "host" : "master_name");
    if (rl_cfg_is(s, "prefix") && n > CFG_REDIS_PREFIX_MAX)
        return rl_cfg_fail(ld, s, "invalid prefix %s: must be at most %d bytes", rl_quote(q, v, n),
                           CFG_REDIS_PREFIX_MAX);
    /* An empty socket, user or password means "unset"; an empty prefix is a real one. */
    return rl_cfg_set_string(
        ld, v, rl_cfg_is(s, "socket") || rl_cfg_is(s, "password") || rl_cfg_is(s, "user"), dst);
}

/* redis.cluster and redis.sentinels: 1..RL_CLUSTER_NODES_MAX addresses, each "HOST:PORT"
 * (HOST an IPv4 address or a name, no brackets: nodes announce themselves as IP:PORT), into
 * *list (owned) of *n entries. */
static int cfg_redis_nodes(const cfg_loader *ld, const config_setting_t *s, char ***list,
                           size_t *nlist)
{
    int len = rl_cfg_string_list(ld, s, RL_CLUSTER_NODES_MAX);
    const char *what = rl_cfg_is(s, "cluster") ? "cluster node" : "sentinel";

    if (len < 0)
        return -1;
    for (size_t i = 0; i < *nlist; i++)
        free((*list)[i]);
    free(*list);
    *nlist = 0;
    *list = calloc((size_t)len, sizeof **list);
    if (*list == NULL)
        return rl_cfg_oom(ld);
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        const char *colon = strrchr(v, ':');
        char q[RL_QUOTE_SIZE], *end;
        long port = 0;

        if (colon != NULL && colon[1] >= '0' && colon[1] <= '9')
            port = strtol(colon + 1, &end, 10);
        if (colon == NULL || colon == v || port < 1 || port > 65535 || *end != '\0' ||
            colon - v > RL_CLUSTER_HOST_MAX || strcspn(v, "[]{} \t") < strlen(v))
            return rl_cfg_fail(ld, e, "invalid %s %s: must be \"HOST:PORT\"", what,
                               rl_quote(q, v, strlen(v)));
        (*list)[i] = strdup(v);
        if ((*list)[i] == NULL)
            return rl_cfg_oom(ld);
        *nlist = (size_t)i + 1;
    }
    return 0;
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
    else if (rl_cfg_is(s, "cluster"))
        rc = cfg_redis_nodes(ld, s, &r->cluster, &r->ncluster);
    else if (rl_cfg_is(s, "sentinels"))
        rc = cfg_redis_nodes(ld, s, &r->sentinels, &r->nsentinels);
    else if (rl_cfg_is(s, "master_name"))
        rc = cfg_redis_string(ld, s, &r->master_name);
    else
        rc = rl_cfg_unknown_key(ld, s);
    return rc;
}

int rl_cfg_load_redis(const cfg_loader *ld, const config_setting_t *g, rl_redis_config *r)
{
    if (rl_cfg_members(ld, g, cfg_redis_member, r) != 0)
        return -1;
    const config_setting_t *cl = config_setting_get_member(g, "cluster");
    if (cl != NULL && r->socket != NULL)
        return rl_cfg_fail(ld, cl, "cluster and socket exclude each other");
    if (cl != NULL && r->db != 0)
        return rl_cfg_fail(ld, cl, "a cluster has only db 0 (db is %d)", r->db);
    const config_setting_t *se = config_setting_get_member(g, "sentinels");
    const config_setting_t *mn = config_setting_get_member(g, "master_name");
    if (se != NULL && cl != NULL)
        return rl_cfg_fail(ld, se, "sentinels and cluster exclude each other");
    if (se != NULL && r->socket != NULL)
        return rl_cfg_fail(ld, se, "sentinels and socket exclude each other");
    if (se != NULL && r->master_name == NULL)
        return rl_cfg_fail(ld, se, "sentinels need master_name");
    if (mn != NULL && se == NULL)
        return rl_cfg_fail(ld, mn, "master_name needs sentinels");
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
    /* Matched on the canonical path like the rules (exactly: an alias of an admin path is an
     * admin path, and nothing else is), so a form no request has would never match. */
    if (rl_cfg_canonical_path(ld, s, "path", v) != 0)
        return -1;
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
