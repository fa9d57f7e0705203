/* config_groups.c -- the core's sections other than the rules: shm, redis, identity, access
 *
 * Each section is a table of rows (ratelimit_schema.h) read by schema.c, plus the readers and
 * checks no generic row type covers. shm.user and shm.group are looked up here, once: the
 * request path never touches the user database. To add a key: a field in config_types.h, a
 * row here (its bounds, default and doc written once), a line in the MANUAL's key table
 * (test_schema checks that the two agree).
 */
#include "fmacros.h"

#include "config_int.h"
#include "redis_cluster.h"

#include <grp.h>
#include <pwd.h>

#define ROW_OFF(type, field) offsetof(type, field)
#define NROWS(rows) (sizeof(rows) / sizeof((rows)[0]))

/* ---- shm ----------------------------------------------------------------------------------- */

static int cfg_shm_name(char *v, const char *q, char *why, size_t size)
{
    size_t n = strlen(v);

    if (v[0] != '/')
        snprintf(why, size, "invalid name %s: must start with '/'", q);
    else if (strchr(v + 1, '/') != NULL)
        snprintf(why, size, "invalid name %s: no '/' allowed after the first character", q);
    else if (n < CFG_SHM_NAME_MIN || n > CFG_SHM_NAME_MAX)
        snprintf(why, size, "invalid name %s: must be %d..%d characters", q, CFG_SHM_NAME_MIN,
                 CFG_SHM_NAME_MAX);
    else
        return 0;
    return -1;
}

/* "/ratelimit-" and the 64-bit FNV-1a hash of the file's real path, so that each
 * configuration gets its own segment whatever path it is named by. */
static int cfg_shm_default_name(const cfg_loader *ld, rl_shm_config *shm)
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

/* One entry of the user (group 0) or group (1) database, by name or, by_id, by id: *found
 * and, when found, its id in *id and the user's primary group (the group's own id) in *gid.
 * The buffer grows on ERANGE up to CFG_PW_BUF_MAX. 0 (found or not), or an errno value when
 * the lookup failed. */
static int cfg_getent(int group, const char *name, int by_id, uint32_t key, int *found,
                      uint32_t *id, uint32_t *gid)
{
    char *buf = NULL;
    int rc;

    *found = 0;
    for (size_t size = 1024;; size *= 2) {
        char *b = realloc(buf, size);

        if (b == NULL) {
            free(buf);
            return ENOMEM;
        }
        buf = b;
        if (group) {
            struct group grp, *gr = NULL;
            rc = by_id ? getgrgid_r((gid_t)key, &grp, b, size, &gr)
                       : getgrnam_r(name, &grp, b, size, &gr);
            if ((*found = gr != NULL))
                *id = *gid = (uint32_t)gr->gr_gid;
        } else {
            struct passwd pwd, *pw = NULL;
            rc = by_id ? getpwuid_r((uid_t)key, &pwd, b, size, &pw)
                       : getpwnam_r(name, &pwd, b, size, &pw);
            if ((*found = pw != NULL)) {
                *id = (uint32_t)pw->pw_uid;
                *gid = (uint32_t)pw->pw_gid;
            }
        }
        if (rc != ERANGE || size >= CFG_PW_BUF_MAX)
            break;
    }
    free(buf);
    /* The man page lists these as also meaning "not found". */
    return rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? 0 : rc;
}

/* shm.user (group 0) or shm.group (1): a name of the system's database, or a numeric id
 * (which needs no entry), into *id; for a user in the database, its primary group into
 * *primary (*primary_set 1), else *primary_set 0. Looked up once, here. */
static int cfg_shm_id(const cfg_loader *ld, const config_setting_t *s, int group, uint32_t *id,
                      int *primary_set, uint32_t *primary)
{
    static const char *const db[] = {"user", "group"};
    static const char *const getent[] = {"getent passwd", "getent group"};
    static const char *const num[] = {"uid", "gid"};
    char q[RL_QUOTE_SIZE];
    const char *v;
    uint32_t n = 0, gid = 0;
    int numeric, found, rc;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    rl_quote(q, v, strlen(v));
    numeric = cfg_numeric_id(v, &n);
    rc = cfg_getent(group, v, 0, 0, &found, id, &gid);
    if (rc == 0 && !found && numeric)
        rc = cfg_getent(group, NULL, 1, n, &found, id, &gid);
    if (rc != 0)
        return rl_cfg_fail(ld, s, "cannot look up %s %s: %s", db[group], q, strerror(rc));
    if (!found && !numeric)
        return rl_cfg_fail(ld, s,
                           "unknown %s %s: not in the %s database (%s); a numeric %s is also "
                           "accepted",
                           db[group], q, db[group], getent[group], num[group]);
    if (!found)
        *id = n;
    if (primary_set != NULL) {
        *primary_set = found;
        *primary = found ? gid : 0;
    }
    return 0;
}

static int cfg_shm_user(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    rl_shm_config *shm = sec;

    if (cfg_shm_id(ctx->ld, s, 0, &shm->uid, &shm->primary_set, &shm->primary) != 0)
        return -1;
    shm->uid_set = 1;
    return 0;
}

static int cfg_shm_group(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    rl_shm_config *shm = sec;

    if (cfg_shm_id(ctx->ld, s, 1, &shm->gid, NULL, NULL) != 0)
        return -1;
    shm->gid_set = 1;
    return 0;
}

/* A string of octal digits: libconfig reads 0660 as the decimal number 660. The owner (the
 * pool) maps the segment read-write, so it needs rw; the group may share it; anyone else who
 * could open it could read the clients' keys or reset every limit, so others get nothing. */
static int cfg_shm_mode(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    const cfg_loader *ld = ctx->ld;
    rl_shm_config *shm = sec;
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
    shm->mode = (int)m;
    return 0;
}

static const cfg_custom cfg_shm_user_impl = {cfg_shm_user, NULL};
static const cfg_custom cfg_shm_group_impl = {cfg_shm_group, NULL};
static const cfg_custom cfg_shm_mode_impl = {cfg_shm_mode, NULL};

static int cfg_shm_finish(rl_schema_ctx *ctx, void *sec)
{
    rl_shm_config *shm = sec;

    if (!rl_schema_given(ctx, "group") && shm->primary_set) {
        shm->gid_set = 1;
        shm->gid = shm->primary;
    }
    if (!rl_schema_given(ctx, "mode"))
        shm->mode = rl_schema_given(ctx, "group") ? 0660 : 0600; /* a group means sharing */
    if (shm->name == NULL)
        return cfg_shm_default_name(ctx->ld, shm);
    return 0;
}

#define SHM(f) ROW_OFF(rl_shm_config, f)
static const rl_setting cfg_shm_rows[] = {
    {.key = "name",
     .type = RL_SETTING_STRING,
     .offset = SHM(name),
     .check = cfg_shm_name,
     .flags = RL_SETTING_DERIVED,
     .def = "\"/ratelimit-\" + 16 hex digits of a hash of the config file's real path",
     .doc = "POSIX shared-memory name of the table"},
    {.key = "capacity",
     .type = RL_SETTING_INT64,
     .offset = SHM(capacity),
     .min = CFG_SHM_CAPACITY_MIN,
     .max = CFG_SHM_CAPACITY_MAX,
     .def = "100000",
     .doc = "keys (rule x client) the table holds"},
    {.key = "user",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_shm_user_impl,
     .type_doc = "string",
     .def = "unset: the creating process's user",
     .doc = "owner given to created segments"},
    {.key = "group",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_shm_group_impl,
     .type_doc = "string",
     .def = "shm.user's primary group",
     .doc = "group given to created segments"},
    {.key = "mode",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_shm_mode_impl,
     .type_doc = "string",
     .def = "\"0600\"; \"0660\" when shm.group is set",
     .doc = "permission bits of created segments"},
};

const rl_section rl_cfg_shm_section = {"shm", cfg_shm_rows, NROWS(cfg_shm_rows),
                                       sizeof(rl_shm_config), cfg_shm_finish};

/* ---- redis --------------------------------------------------------------------------------- */

static int cfg_redis_host(char *v, const char *q, char *why, size_t size)
{
    (void)q;
    if (v[0] != '\0')
        return 0;
    snprintf(why, size, "invalid host \"\": must not be empty");
    return -1;
}

static int cfg_redis_prefix(char *v, const char *q, char *why, size_t size)
{
    if (strlen(v) <= CFG_REDIS_PREFIX_MAX)
        return 0;
    snprintf(why, size, "invalid prefix %s: must be at most %d bytes", q, CFG_REDIS_PREFIX_MAX);
    return -1;
}

static int cfg_redis_master_name(char *v, const char *q, char *why, size_t size)
{
    (void)q;
    if (v[0] != '\0')
        return 0;
    snprintf(why, size, "invalid master_name \"\": must not be empty");
    return -1;
}

/* One entry of redis.cluster or redis.sentinels: "HOST:PORT", HOST an IPv4 address or a name
 * of at most RL_CLUSTER_HOST_MAX bytes, no brackets (nodes announce themselves as IP:PORT). */
static int cfg_redis_node(const char *what, const char *v, const char *q, char *why, size_t size)
{
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = 0;

    if (colon != NULL && colon[1] >= '0' && colon[1] <= '9')
        port = strtol(colon + 1, &end, 10);
    if (colon == NULL || colon == v || port < 1 || port > 65535 || *end != '\0' ||
        colon - v > RL_CLUSTER_HOST_MAX || strcspn(v, "[]{} \t") < strlen(v)) {
        snprintf(why, size, "invalid %s %s: must be \"HOST:PORT\"", what, q);
        return -1;
    }
    return 0;
}

static int cfg_redis_cluster_node(char *v, const char *q, char *why, size_t size)
{
    return cfg_redis_node("cluster node", v, q, why, size);
}

static int cfg_redis_sentinel(char *v, const char *q, char *why, size_t size)
{
    return cfg_redis_node("sentinel", v, q, why, size);
}

/* Where Redis is: one server (host and port, or socket), a cluster (its seeds name the nodes,
 * which have only db 0) or a master the sentinels name. Run again after each override, so
 * RATE_LIMIT_REDIS_DB on top of a cluster is refused as the file's db is. */
static int cfg_redis_where(rl_schema_ctx *ctx, const rl_redis_config *r)
{
    if (r->ncluster > 0) {
        if (r->socket != NULL)
            return rl_schema_fail(ctx, "cluster", "cluster and socket exclude each other");
        if (rl_schema_given(ctx, "host"))
            return rl_schema_fail(ctx, "cluster", "cluster and host exclude each other");
        if (rl_schema_given(ctx, "port"))
            return rl_schema_fail(ctx, "cluster", "cluster and port exclude each other");
        if (r->db != 0)
            return rl_schema_fail(ctx, "cluster", "a cluster has only db 0 (db is %d)", r->db);
    }
    if (r->nsentinels > 0) {
        if (r->ncluster > 0)
            return rl_schema_fail(ctx, "sentinels", "sentinels and cluster exclude each other");
        if (r->socket != NULL)
            return rl_schema_fail(ctx, "sentinels", "sentinels and socket exclude each other");
        if (rl_schema_given(ctx, "host"))
            return rl_schema_fail(ctx, "sentinels", "sentinels and host exclude each other");
        if (rl_schema_given(ctx, "port"))
            return rl_schema_fail(ctx, "sentinels", "sentinels and port exclude each other");
        if (r->master_name == NULL)
            return rl_schema_fail(ctx, "sentinels", "sentinels need master_name");
    } else if (r->master_name != NULL)
        return rl_schema_fail(ctx, "master_name", "master_name needs sentinels");
    else if (r->sentinel_password != NULL)
        return rl_schema_fail(ctx, "sentinel_password", "sentinel_password needs sentinels");
    if (r->sentinel_user != NULL && r->sentinel_password == NULL)
        return rl_schema_fail(ctx, "sentinel_user", "sentinel_user needs sentinel_password");
    return 0;
}

/* The breaker's back-off doubles from breaker_open_ms up to breaker_open_max_ms. */
static int cfg_redis_finish(rl_schema_ctx *ctx, void *sec)
{
    rl_redis_config *r = sec;

    if (cfg_redis_where(ctx, r) != 0)
        return -1;
    if (!rl_schema_given(ctx, "breaker_open_max_ms"))
        r->breaker_open_max_ms = r->breaker_open_ms > 1000 ? r->breaker_open_ms : 1000;
    else if (r->breaker_open_max_ms < r->breaker_open_ms)
        return rl_schema_fail(ctx, "breaker_open_max_ms", "%d is below breaker_open_ms (%d)",
                              r->breaker_open_max_ms, r->breaker_open_ms);
    return 0;
}

#define REDIS(f) ROW_OFF(rl_redis_config, f)
/* An empty socket, user or password (sentinel_ too) means "unset"; an empty prefix is a real
 * one. */
static const rl_setting cfg_redis_rows[] = {
    {.key = "enabled",
     .type = RL_SETTING_BOOL,
     .offset = REDIS(enabled),
     .def = "false",
     .env = "RATE_LIMIT_USE_REDIS",
     .doc = "decide in Redis"},
    {.key = "host",
     .type = RL_SETTING_STRING,
     .offset = REDIS(host),
     .check = cfg_redis_host,
     .def = "127.0.0.1",
     .env = "RATE_LIMIT_REDIS_HOST",
     .doc = "Redis TCP address"},
    {.key = "port",
     .type = RL_SETTING_INT,
     .offset = REDIS(port),
     .min = 1,
     .max = 65535,
     .def = "6379",
     .env = "RATE_LIMIT_REDIS_PORT",
     .doc = "Redis TCP port"},
    {.key = "socket",
     .type = RL_SETTING_STRING,
     .offset = REDIS(socket),
     .flags = RL_SETTING_EMPTY_NULL,
     .def = "",
     .doc = "unix socket path"},
    {.key = "db",
     .type = RL_SETTING_INT,
     .offset = REDIS(db),
     .min = 0,
     .max = CFG_DB_MAX,
     .def = "0",
     .env = "RATE_LIMIT_REDIS_DB",
     .doc = "database to SELECT"},
    {.key = "user",
     .type = RL_SETTING_STRING,
     .offset = REDIS(user),
     .flags = RL_SETTING_EMPTY_NULL,
     .def = "",
     .doc = "ACL user"},
    {.key = "password",
     .type = RL_SETTING_STRING,
     .offset = REDIS(password),
     .flags = RL_SETTING_EMPTY_NULL,
     .def = "",
     .env = "RATE_LIMIT_REDIS_PASSWORD",
     .doc = "password for AUTH; never logged"},
    {.key = "prefix",
     .type = RL_SETTING_STRING,
     .offset = REDIS(prefix),
     .check = cfg_redis_prefix,
     .def = "rl:",
     .doc = "prepended to every key"},
    RL_SETTING_INT_ROW("connect_timeout_ms", REDIS(connect_timeout_ms), 1, CFG_TIMEOUT_MAX_MS,
                       "100", "the connect step's bound"),
    RL_SETTING_INT_ROW("command_timeout_ms", REDIS(command_timeout_ms), 1, CFG_TIMEOUT_MAX_MS, "50",
                       "one deadline per decision"),
    RL_SETTING_INT_ROW("breaker_failures", REDIS(breaker_failures), 1, CFG_BREAKER_FAILURES_MAX,
                       "3", "consecutive failures that open the circuit breaker"),
    RL_SETTING_INT_ROW("breaker_open_ms", REDIS(breaker_open_ms), 1, CFG_BREAKER_OPEN_MAX_MS, "250",
                       "how long the breaker first skips Redis"),
    {.key = "breaker_open_max_ms",
     .type = RL_SETTING_INT,
     .offset = REDIS(breaker_open_max_ms),
     .min = 1,
     .max = CFG_BREAKER_OPEN_MAX_MS,
     .flags = RL_SETTING_DERIVED,
     .def = "max(1000, breaker_open_ms)",
     .range_doc = "breaker_open_ms..600000",
     .doc = "the breaker's longest skip"},
    RL_SETTING_INT_ROW("hosts", REDIS(hosts), 1, CFG_HOSTS_MAX, "1", "hosts sharing the limits"),
    {.key = "cluster",
     .type = RL_SETTING_LIST,
     .offset = REDIS(cluster),
     .offset2 = REDIS(ncluster),
     .min = 1,
     .max = RL_CLUSTER_NODES_MAX,
     .item_max = RL_CLUSTER_HOST_MAX + 6, /* ":65535" */
     .check = cfg_redis_cluster_node,
     .doc = "Redis Cluster seed nodes"},
    {.key = "sentinels",
     .type = RL_SETTING_LIST,
     .offset = REDIS(sentinels),
     .offset2 = REDIS(nsentinels),
     .min = 1,
     .max = RL_CLUSTER_NODES_MAX,
     .item_max = RL_CLUSTER_HOST_MAX + 6,
     .check = cfg_redis_sentinel,
     .doc = "Redis Sentinel addresses"},
    {.key = "master_name",
     .type = RL_SETTING_STRING,
     .offset = REDIS(master_name),
     .check = cfg_redis_master_name,
     .doc = "the master the sentinels are asked for"},
    {.key = "sentinel_user",
     .type = RL_SETTING_STRING,
     .offset = REDIS(sentinel_user),
     .flags = RL_SETTING_EMPTY_NULL,
     .def = "",
     .doc = "ACL user for the sentinels"},
    {.key = "sentinel_password",
     .type = RL_SETTING_STRING,
     .offset = REDIS(sentinel_password),
     .flags = RL_SETTING_EMPTY_NULL,
     .def = "",
     .doc = "password for the sentinels' AUTH; never logged"},
};

const rl_section rl_cfg_redis_section = {"redis", cfg_redis_rows, NROWS(cfg_redis_rows),
                                         sizeof(rl_redis_config), cfg_redis_finish};

/* ---- identity and access ------------------------------------------------------------------- */

_Static_assert(sizeof(rl_forward_header) == sizeof(int), "a CHOICE field is an int");
static const rl_setting_choice cfg_identity_headers[] = {
    {"x-forwarded-for", RL_FORWARD_XFF},
    {"forwarded", RL_FORWARD_FORWARDED},
    {NULL, 0},
};

#define IDENT(f) ROW_OFF(rl_identity_config, f)
static const rl_setting cfg_identity_rows[] = {
    {.key = "trusted_proxies",
     .type = RL_SETTING_CIDRS,
     .offset = IDENT(trusted),
     .offset2 = IDENT(ntrusted),
     .def = "[]",
     .doc = "proxies whose forwarded header is believed"},
    {.key = "header",
     .type = RL_SETTING_CHOICE,
     .offset = IDENT(header),
     .choices = cfg_identity_headers,
     .noun = "header",
     .flags = RL_SETTING_ANY_CASE,
     .def = "x-forwarded-for",
     .doc = "the forwarded header trusted proxies send"},
    RL_SETTING_INT_ROW("ipv6_prefix", IDENT(ipv6_prefix), 1, 128, "64",
                       "IPv6 clients are counted per this prefix"),
};

const rl_section rl_cfg_identity_section = {"identity", cfg_identity_rows, NROWS(cfg_identity_rows),
                                            sizeof(rl_identity_config), NULL};

#define ACCESS(f) ROW_OFF(rl_access_config, f)
static const rl_setting cfg_access_rows[] = {
    {.key = "allow",
     .type = RL_SETTING_CIDRS,
     .offset = ACCESS(allow),
     .offset2 = ACCESS(nallow),
     .def = "[]",
     .doc = "clients that skip every limit"},
    {.key = "deny",
     .type = RL_SETTING_CIDRS,
     .offset = ACCESS(deny),
     .offset2 = ACCESS(ndeny),
     .def = "[]",
     .doc = "clients refused with 403"},
};

const rl_section rl_cfg_access_section = {"access", cfg_access_rows, NROWS(cfg_access_rows),
                                          sizeof(rl_access_config), NULL};
