/* config.c -- read ratelimit.conf with libconfig into the typed structs of ratelimit.h
 *
 * The only file that includes <libconfig.h>. The file is read into memory once, parsed by
 * libconfig, then walked group by group in file order: each member is looked up among the
 * keys its group knows (a typo is an error, never a silently ignored setting), type-checked,
 * range-checked and copied. The first error stops the load. Nothing refers to libconfig's tree
 * afterwards: the rl_config owns every string it holds, and rl_config_free() frees them all.
 *
 * Errors read "FILE:LINE: KEY.PATH: what is wrong", with the bad value quoted, where FILE is
 * the path as the caller gave it (or the @include'd file a setting came from) and KEY.PATH is
 * built from the tree: "rules[1].limit". Errors with no line (the file cannot be opened, a
 * required top-level key is missing) read "FILE: ...".
 *
 * libconfig 1.5 stores an integer literal too big for an int with atoi(), so it wraps without
 * a word (4294967312 reads as 16); cfg_reread_int() takes such numbers from the source text.
 */
#include "fmacros.h"

#include "config_env.h"
#include "ratelimit.h"
#include "cidr.h"
#include "quote.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_FILE_MAX (16 * 1024 * 1024) /* a configuration larger than this is a mistake */
#define CFG_KEY_MAX 256                 /* bytes of a key path shown in a message */

#define CFG_SHM_NAME_MIN 2
#define CFG_SHM_NAME_MAX 200
#define CFG_SHM_CAPACITY_MIN 16
#define CFG_SHM_CAPACITY_MAX 100000000
#define CFG_REDIS_PREFIX_MAX 64
#define CFG_DB_MAX 1000000
#define CFG_TIMEOUT_MAX_MS 60000
#define CFG_BREAKER_FAILURES_MAX 1000
#define CFG_BREAKER_OPEN_MAX_MS 600000
#define CFG_HOSTS_MAX 10000
#define CFG_PROXY_TIMEOUT_MAX_MS 3600000
#define CFG_PRODUCT_MAX (1LL << 50) /* count * period and burst * period, see ratelimit.h */
#define CFG_LIST_MAX 1024           /* entries of a list of addresses, methods or hosts */
#define CFG_METHOD_MAX 31
#define CFG_HOST_MAX 253
#define CFG_HEADER_NAME_MAX 63
#define CFG_ADMIN_PATH_MAX 1024
#define CFG_BODY_MAX 4096           /* the response must fit the filter's 16 KiB buffer */

typedef struct cfg_loader {
    const char *path; /* as the caller gave it, for messages */
    const char *text; /* the file's bytes, NUL-terminated */
    size_t len;
    rl_error *err;
} cfg_loader;

/* ---- errors ------------------------------------------------------------------------------ */

/* Writes the dotted key path of s ("rules[0].limit") into buf; "" for the root. */
static size_t cfg_key(const config_setting_t *s, char *buf, size_t size)
{
    const config_setting_t *parent = config_setting_parent(s);
    const char *name = config_setting_name(s);
    size_t n;
    int r;

    buf[0] = '\0';
    if (parent == NULL)
        return 0;
    n = cfg_key(parent, buf, size);
    if (n + 1 >= size)
        return n;
    if (name != NULL)
        r = snprintf(buf + n, size - n, "%s%s", n > 0 ? "." : "", name);
    else
        r = snprintf(buf + n, size - n, "[%d]", config_setting_index(s));
    if (r < 0)
        return n;
    return (size_t)r < size - n ? n + (size_t)r : size - 1;
}

static int cfg_vfail(const cfg_loader *ld, const char *file, unsigned line, const char *key,
                     const char *fmt, va_list ap) RL_PRINTF(5, 0);

static int cfg_vfail(const cfg_loader *ld, const char *file, unsigned line, const char *key,
                     const char *fmt, va_list ap)
{
    char *t = ld->err->text;
    size_t size = sizeof ld->err->text;
    int n;

    if (line > 0)
        n = snprintf(t, size, "%s:%u: ", file, line);
    else
        n = snprintf(t, size, "%s: ", file);
    if (n >= 0 && (size_t)n < size && key != NULL && key[0] != '\0')
        n += snprintf(t + n, size - (size_t)n, "%s: ", key);
    if (n >= 0 && (size_t)n < size)
        vsnprintf(t + n, size - (size_t)n, fmt, ap);
    return -1;
}

/* Reports an error about setting s: "file:line: key: ...". Returns -1. */
static int cfg_fail(const cfg_loader *ld, const config_setting_t *s, const char *fmt, ...)
    RL_PRINTF(3, 4);

static int cfg_fail(const cfg_loader *ld, const config_setting_t *s, const char *fmt, ...)
{
    char key[CFG_KEY_MAX];
    const char *file = config_setting_source_file(s);
    va_list ap;

    cfg_key(s, key, sizeof key);
    va_start(ap, fmt);
    cfg_vfail(ld, file != NULL ? file : ld->path, config_setting_source_line(s), key, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reports an error about the whole file: "file: ...". Returns -1. */
static int cfg_fail_file(const cfg_loader *ld, const char *fmt, ...) RL_PRINTF(2, 3);

static int cfg_fail_file(const cfg_loader *ld, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_vfail(ld, ld->path, 0, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

static int cfg_oom(const cfg_loader *ld)
{
    return cfg_fail_file(ld, "out of memory");
}

static const char *cfg_type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "nothing";
    }
}

/* "expected an integer, got a string "100"". Returns -1. */
static int cfg_wrong_type(const cfg_loader *ld, const config_setting_t *s, const char *expected)
{
    char v[RL_QUOTE_SIZE + 32] = "";
    const char *str;

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING:
        str = config_setting_get_string(s);
        v[0] = ' ';
        rl_quote(v + 1, str, strlen(str));
        break;
    case CONFIG_TYPE_INT: snprintf(v, sizeof v, " %d", config_setting_get_int(s)); break;
    case CONFIG_TYPE_INT64: snprintf(v, sizeof v, " %lld", config_setting_get_int64(s)); break;
    case CONFIG_TYPE_FLOAT: snprintf(v, sizeof v, " %g", config_setting_get_float(s)); break;
    case CONFIG_TYPE_BOOL:
        snprintf(v, sizeof v, " %s", config_setting_get_bool(s) ? "true" : "false");
        break;
    default: break;
    }
    return cfg_fail(ld, s, "expected %s, got %s%s", expected, cfg_type_name(config_setting_type(s)),
                    v);
}

static int cfg_unknown_key(const cfg_loader *ld, const config_setting_t *s)
{
    return cfg_fail(ld, s, "unknown key");
}

/* ---- typed values ------------------------------------------------------------------------ */

static int cfg_is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '*';
}

/* Finds the integer literal of member s on its source line ("name = LITERAL" or
 * "name: LITERAL"). Returns 1 with its value in *value, 0 when it cannot be found (s comes
 * from an @include'd file, or the line is laid out oddly), or -1 when it does not fit in 64
 * bits; *lit and *litlen then point at it. */
static int cfg_reread_int(const cfg_loader *ld, const config_setting_t *s, long long *value,
                          const char **lit, size_t *litlen)
{
    const char *name = config_setting_name(s);
    const char *ls = ld->text, *le, *end = ld->text + ld->len;
    size_t nlen = name != NULL ? strlen(name) : 0;

    if (name == NULL || config_setting_source_file(s) != NULL)
        return 0;
    for (unsigned line = 1; line < config_setting_source_line(s); line++) {
        ls = memchr(ls, '\n', (size_t)(end - ls));
        if (ls == NULL)
            return 0;
        ls++;
    }
    le = memchr(ls, '\n', (size_t)(end - ls));
    if (le == NULL)
        le = end;

    for (const char *p = ls; p + nlen <= le; p++) {
        const char *q = p + nlen, *num;
        char *stop;
        int hex;

        if (memcmp(p, name, nlen) != 0 || (p > ls && cfg_is_ident(p[-1])) ||
            (q < le && cfg_is_ident(*q)))
            continue;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if (q == le || (*q != '=' && *q != ':'))
            continue;
        q++;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        num = q;
        if (q < le && (*q == '-' || *q == '+'))
            q++;
        hex = le - q > 2 && q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
        if (q == le || !(*q >= '0' && *q <= '9'))
            continue;
        errno = 0;
        *value = strtoll(num, &stop, hex ? 16 : 10);
        *lit = num;
        *litlen = (size_t)(stop - num);
        return errno == ERANGE ? -1 : 1;
    }
    return 0;
}

/* An integer (int or int64 "L") in min..max. */
static int cfg_int(const cfg_loader *ld, const config_setting_t *s, long long min, long long max,
                   long long *out)
{
    char q[RL_QUOTE_SIZE];
    int type = config_setting_type(s);
    long long v, re = 0;
    const char *lit = NULL;
    size_t litlen = 0;

    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return cfg_wrong_type(ld, s, "an integer");
    v = type == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    switch (cfg_reread_int(ld, s, &re, &lit, &litlen)) {
    case -1:
        return cfg_fail(ld, s, "integer %s does not fit in 64 bits", rl_quote(q, lit, litlen));
    case 1:
        /* Trust the source only where it agrees with what libconfig kept of it. */
        if (type == CONFIG_TYPE_INT ? (int)(unsigned)re == (int)v : re == v)
            v = re;
        break;
    default: break;
    }
    if (v < min)
        return cfg_fail(ld, s, "%lld is below the minimum %lld", v, min);
    if (v > max)
        return cfg_fail(ld, s, "%lld is above the maximum %lld", v, max);
    *out = v;
    return 0;
}

static int cfg_int32(const cfg_loader *ld, const config_setting_t *s, int min, int max, int *out)
{
    long long v = 0;

    if (cfg_int(ld, s, min, max, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int cfg_bool(const cfg_loader *ld, const config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return cfg_wrong_type(ld, s, "a boolean");
    *out = config_setting_get_bool(s) ? 1 : 0;
    return 0;
}

/* A string, borrowed from libconfig's tree. */
static int cfg_string(const cfg_loader *ld, const config_setting_t *s, const char **out)
{
    *out = "";
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return cfg_wrong_type(ld, s, "a string");
    *out = config_setting_get_string(s);
    return 0;
}

/* Replaces *dst with a copy of v, or with NULL when v is empty and empty_is_null. */
static int cfg_set_string(const cfg_loader *ld, const char *v, int empty_is_null, char **dst)
{
    char *copy = NULL;

    if (!(empty_is_null && v[0] == '\0')) {
        copy = strdup(v);
        if (copy == NULL)
            return cfg_oom(ld);
    }
    free(*dst);
    *dst = copy;
    return 0;
}

static int cfg_group(const cfg_loader *ld, const config_setting_t *s)
{
    return config_setting_is_group(s) ? 0 : cfg_wrong_type(ld, s, "a group");
}

static int cfg_is(const config_setting_t *s, const char *name)
{
    return strcmp(config_setting_name(s), name) == 0;
}

/* ---- shm ----------------------------------------------------------------------------------- */

static int cfg_shm_name(const cfg_loader *ld, const config_setting_t *s, rl_shm_config *shm)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (v[0] != '/')
        return cfg_fail(ld, s, "invalid name %s: must start with '/'", rl_quote(q, v, n));
    if (strchr(v + 1, '/') != NULL)
        return cfg_fail(ld, s, "invalid name %s: no '/' allowed after the first character",
                        rl_quote(q, v, n));
    if (n < CFG_SHM_NAME_MIN || n > CFG_SHM_NAME_MAX)
        return cfg_fail(ld, s, "invalid name %s: must be %d..%d characters", rl_quote(q, v, n),
                        CFG_SHM_NAME_MIN, CFG_SHM_NAME_MAX);
    return cfg_set_string(ld, v, 0, &shm->name);
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
    return cfg_set_string(ld, name, 0, &shm->name);
}

static int cfg_load_shm(const cfg_loader *ld, const config_setting_t *g, rl_shm_config *shm)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        long long v = 0;
        int rc;

        if (cfg_is(s, "name"))
            rc = cfg_shm_name(ld, s, shm);
        else if (cfg_is(s, "capacity")) {
            rc = cfg_int(ld, s, CFG_SHM_CAPACITY_MIN, CFG_SHM_CAPACITY_MAX, &v);
            shm->capacity = v;
        } else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- redis --------------------------------------------------------------------------------- */

static int cfg_redis_string(const cfg_loader *ld, const config_setting_t *s, char **dst)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (cfg_is(s, "host") && n == 0)
        return cfg_fail(ld, s, "invalid host \"\": must not be empty");
    if (cfg_is(s, "prefix") && n > CFG_REDIS_PREFIX_MAX)
        return cfg_fail(ld, s, "invalid prefix %s: must be at most %d bytes", rl_quote(q, v, n),
                        CFG_REDIS_PREFIX_MAX);
    /* An empty socket, user or password means "unset"; an empty prefix is a real one. */
    return cfg_set_string(ld, v, cfg_is(s, "socket") || cfg_is(s, "password") || cfg_is(s, "user"),
                          dst);
}

static int cfg_load_redis(const cfg_loader *ld, const config_setting_t *g, rl_redis_config *r)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "enabled"))
            rc = cfg_bool(ld, s, &r->enabled);
        else if (cfg_is(s, "host"))
            rc = cfg_redis_string(ld, s, &r->host);
        else if (cfg_is(s, "port"))
            rc = cfg_int32(ld, s, 1, 65535, &r->port);
        else if (cfg_is(s, "socket"))
            rc = cfg_redis_string(ld, s, &r->socket);
        else if (cfg_is(s, "db"))
            rc = cfg_int32(ld, s, 0, CFG_DB_MAX, &r->db);
        else if (cfg_is(s, "user"))
            rc = cfg_redis_string(ld, s, &r->user);
        else if (cfg_is(s, "password"))
            rc = cfg_redis_string(ld, s, &r->password);
        else if (cfg_is(s, "prefix"))
            rc = cfg_redis_string(ld, s, &r->prefix);
        else if (cfg_is(s, "connect_timeout_ms"))
            rc = cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &r->connect_timeout_ms);
        else if (cfg_is(s, "command_timeout_ms"))
            rc = cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &r->command_timeout_ms);
        else if (cfg_is(s, "breaker_failures"))
            rc = cfg_int32(ld, s, 1, CFG_BREAKER_FAILURES_MAX, &r->breaker_failures);
        else if (cfg_is(s, "breaker_open_ms"))
            rc = cfg_int32(ld, s, 1, CFG_BREAKER_OPEN_MAX_MS, &r->breaker_open_ms);
        else if (cfg_is(s, "hosts"))
            rc = cfg_int32(ld, s, 1, CFG_HOSTS_MAX, &r->hosts);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
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

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return cfg_fail(ld, s, "invalid backend %s: must be an http:// URL (\"http://HOST[:PORT]\")",
                        rl_quote(q, v, n));
    p = host = v + sizeof scheme - 1;
    if (*p == '[') {
        p += strspn(p + 1, "0123456789abcdefABCDEF:.") + 1;
        if (*p != ']' || p == host + 1)
            return cfg_fail(ld, s, "invalid backend %s: bad IPv6 address", rl_quote(q, v, n));
        p++;
    } else {
        p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        if (p == host)
            return cfg_fail(ld, s, "invalid backend %s: no host", rl_quote(q, v, n));
    }
    if (*p == ':') {
        const char *digits = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535)
            return cfg_fail(ld, s, "invalid backend %s: port must be 1..65535", rl_quote(q, v, n));
    }
    if (*p == '/')
        p++;
    if (*p != '\0')
        return cfg_fail(ld, s,
                        "invalid backend %s: only \"http://HOST[:PORT]\" is allowed (the "
                        "request's own path and query are appended)",
                        rl_quote(q, v, n));
    if (cfg_set_string(ld, v, 0, dst) != 0)
        return -1;
    if ((*dst)[strlen(*dst) - 1] == '/')
        (*dst)[strlen(*dst) - 1] = '\0';
    return 0;
}

static int cfg_load_proxy(const cfg_loader *ld, const config_setting_t *g, rl_proxy_config *px)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "backend"))
            rc = cfg_proxy_backend(ld, s, &px->backend);
        else if (cfg_is(s, "connect_timeout_ms"))
            rc = cfg_int32(ld, s, 1, CFG_TIMEOUT_MAX_MS, &px->connect_timeout_ms);
        else if (cfg_is(s, "timeout_ms"))
            rc = cfg_int32(ld, s, 1, CFG_PROXY_TIMEOUT_MAX_MS, &px->timeout_ms);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- headers ------------------------------------------------------------------------------- */

static int cfg_load_headers(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "x_ratelimit"))
            rc = cfg_bool(ld, s, &cfg->x_ratelimit_headers);
        else if (cfg_is(s, "problem_json"))
            rc = cfg_bool(ld, s, &cfg->problem_json);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- lists ------------------------------------------------------------------------------- */

/* s must be an array or a list of 1..max strings. Returns their count, or -1. */
static int cfg_string_list(const cfg_loader *ld, const config_setting_t *s, int max)
{
    int n;

    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return cfg_wrong_type(ld, s, "a list of strings");
    n = config_setting_length(s);
    if (n == 0)
        return cfg_fail(ld, s, "empty list: leave the key out instead");
    if (n > max)
        return cfg_fail(ld, s, "%d entries is above the maximum %d", n, max);
    for (int i = 0; i < n; i++) {
        const char *v;
        if (cfg_string(ld, config_setting_get_elem(s, (unsigned)i), &v) != 0)
            return -1;
    }
    return n;
}

/* A list of address blocks into a new array *out of *n entries (owned by the config). */
static int cfg_cidr_list(const cfg_loader *ld, const config_setting_t *s, rl_cidr **out,
                         size_t *n)
{
    int len = cfg_string_list(ld, s, CFG_LIST_MAX);

    if (len < 0)
        return -1;
    free(*out);
    *n = 0;
    *out = calloc((size_t)len, sizeof **out);
    if (*out == NULL)
        return cfg_oom(ld);
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        char why[128], q[RL_QUOTE_SIZE];
        if (rl_cidr_parse(v, &(*out)[i], why, sizeof why) != 0)
            return cfg_fail(ld, e, "invalid address block %s: %s", rl_quote(q, v, strlen(v)),
                            why);
    }
    *n = (size_t)len;
    return 0;
}

/* ---- identity and access ------------------------------------------------------------------- */

static int cfg_identity_header(const cfg_loader *ld, const config_setting_t *s,
                               rl_identity_config *ic)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (strcasecmp(v, "x-forwarded-for") == 0)
        ic->header = RL_FORWARD_XFF;
    else if (strcasecmp(v, "forwarded") == 0)
        ic->header = RL_FORWARD_FORWARDED;
    else
        return cfg_fail(ld, s, "unknown header %s: expected \"x-forwarded-for\" or \"forwarded\"",
                        rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_load_identity(const cfg_loader *ld, const config_setting_t *g,
                             rl_identity_config *ic)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "trusted_proxies"))
            rc = cfg_cidr_list(ld, s, &ic->trusted, &ic->ntrusted);
        else if (cfg_is(s, "header"))
            rc = cfg_identity_header(ld, s, ic);
        else if (cfg_is(s, "ipv6_prefix"))
            rc = cfg_int32(ld, s, 1, 128, &ic->ipv6_prefix);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int cfg_load_access(const cfg_loader *ld, const config_setting_t *g, rl_access_config *ac)
{
    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "allow"))
            rc = cfg_cidr_list(ld, s, &ac->allow, &ac->nallow);
        else if (cfg_is(s, "deny"))
            rc = cfg_cidr_list(ld, s, &ac->deny, &ac->ndeny);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- rules --------------------------------------------------------------------------------- */

static int cfg_rule_name(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (n < 1 || n > RL_NAME_MAX - 1)
        return cfg_fail(ld, s, "invalid name %s: must be 1..%d characters", rl_quote(q, v, n),
                        RL_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-'))
            return cfg_fail(ld, s,
                            "invalid name %s: only letters, digits, '_', '.' and '-' are allowed",
                            rl_quote(q, v, n));
    memcpy(rule->name, v, n + 1);
    return 0;
}

static int cfg_rule_path_prefix(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (v[0] != '/')
        return cfg_fail(ld, s, "invalid path prefix %s: must start with '/'",
                        rl_quote(q, v, strlen(v)));
    return cfg_set_string(ld, v, 0, &rule->path_prefix);
}

static int cfg_rule_limit(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    rl_error why;
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (rl_parse_limit(v, &rule->count, &rule->period_ms, &why) != 0)
        return cfg_fail(ld, s, "%s", why.text);
    return cfg_set_string(ld, v, 0, &rule->limit_text);
}

static int cfg_rule_algorithm(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (strcmp(v, "gcra") == 0)
        rule->algo = RL_ALGO_GCRA;
    else if (strcmp(v, "fixed_window") == 0)
        rule->algo = RL_ALGO_FIXED_WINDOW;
    else if (strcmp(v, "sliding_window") == 0)
        rule->algo = RL_ALGO_SLIDING_WINDOW;
    else if (strcmp(v, "sliding_log") == 0)
        rule->algo = RL_ALGO_SLIDING_LOG;
    else
        return cfg_fail(ld, s,
                        "unknown algorithm %s: expected \"gcra\", \"fixed_window\", "
                        "\"sliding_window\" or \"sliding_log\"",
                        rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_rule_on_redis_down(const cfg_loader *ld, const config_setting_t *s,
                                  rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (rl_parse_redis_down(v, &rule->on_redis_down) != 0)
        return cfg_fail(ld, s, "unknown value %s: expected \"shm\", \"open\" or \"closed\"",
                        rl_quote(q, v, strlen(v)));
    return 0;
}


/* RFC 7230 tchar: what a method or a header name is made of. */
static int cfg_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int cfg_has_control(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 1;
    return 0;
}

static int cfg_rule_path(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (v[0] != '/' || cfg_has_control(v))
        return cfg_fail(ld, s, "invalid path %s: must start with '/' and hold no control bytes",
                        rl_quote(q, v, strlen(v)));
    return cfg_set_string(ld, v, 0, &rule->path);
}

static int cfg_rule_path_regex(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE], why[256];
    const char *v;
    regex_t *re;
    int rc;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (rule->path_regex != NULL)
        return cfg_fail(ld, s, "path_regex given twice");
    re = calloc(1, sizeof *re);
    if (re == NULL)
        return cfg_oom(ld);
    rc = regcomp(re, v, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, re, why, sizeof why);
        free(re);
        return cfg_fail(ld, s, "invalid regex %s: %s", rl_quote(q, v, strlen(v)), why);
    }
    rule->path_regex = re;
    return cfg_set_string(ld, v, 0, &rule->path_regex_text);
}

/* methods or hosts: a list of strings, each checked and copied (hosts in lowercase). */
static int cfg_rule_words(const cfg_loader *ld, const config_setting_t *s, int hosts,
                          char ***out, size_t *nout)
{
    char q[RL_QUOTE_SIZE];
    int n = cfg_string_list(ld, s, CFG_LIST_MAX);

    if (n < 0)
        return -1;
    if (*out != NULL)
        return cfg_fail(ld, s, "given twice");
    *out = calloc((size_t)n, sizeof **out);
    if (*out == NULL)
        return cfg_oom(ld);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        size_t len = strlen(v), k;
        int ok = len >= 1 && len <= (hosts ? CFG_HOST_MAX : CFG_METHOD_MAX);
        for (k = 0; ok && k < len; k++)
            ok = hosts ? (isalnum((unsigned char)v[k]) || v[k] == '-' || v[k] == '.' ||
                          v[k] == '_' || v[k] == ':')
                       : cfg_tchar(v[k]);
        if (!ok)
            return cfg_fail(ld, e,
                            hosts ? "invalid host %s: a name or address without port, 1..253 "
                                    "characters of letters, digits, '-', '.', '_' (':' for IPv6)"
                                  : "invalid method %s: 1..31 token characters",
                            rl_quote(q, v, len));
        (*out)[i] = strdup(v);
        if ((*out)[i] == NULL)
            return cfg_oom(ld);
        *nout = (size_t)i + 1;
        for (k = 0; hosts && k < len; k++)
            (*out)[i][k] = (char)tolower((unsigned char)(*out)[i][k]);
    }
    return 0;
}

/* One key part: "client", "header:NAME" or "cookie:NAME". */
static int cfg_key_part(const cfg_loader *ld, const config_setting_t *e, rl_key_part *part)
{
    char q[RL_QUOTE_SIZE];
    const char *v, *name;
    size_t n;

    if (cfg_string(ld, e, &v) != 0)
        return -1;
    if (strcmp(v, "client") == 0) {
        part->kind = RL_KEY_CLIENT;
        return 0;
    }
    if (strncmp(v, "header:", 7) == 0)
        part->kind = RL_KEY_HEADER;
    else if (strncmp(v, "cookie:", 7) == 0)
        part->kind = RL_KEY_COOKIE;
    else
        return cfg_fail(ld, e,
                        "invalid key %s: expected \"client\", \"header:NAME\" or \"cookie:NAME\"",
                        rl_quote(q, v, strlen(v)));
    name = v + 7;
    n = strlen(name);
    for (size_t k = 0; k < n; k++)
        if (!cfg_tchar(name[k]))
            n = 0;
    if (n == 0 || n > CFG_HEADER_NAME_MAX)
        return cfg_fail(ld, e, "invalid key %s: NAME must be 1..%d token characters",
                        rl_quote(q, v, strlen(v)), CFG_HEADER_NAME_MAX);
    part->name = strdup(name);
    if (part->name == NULL)
        return cfg_oom(ld);
    if (part->kind == RL_KEY_HEADER) /* header names are case-insensitive */
        for (char *c = part->name; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
    return 0;
}

static int cfg_rule_key(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    int n;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        rule->nkey = 0;
        if (cfg_key_part(ld, s, &rule->key[0]) != 0)
            return -1;
        rule->nkey = 1;
        return 0;
    }
    n = cfg_string_list(ld, s, RL_KEY_PARTS_MAX);
    if (n < 0)
        return -1;
    rule->nkey = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        rl_key_part *part = &rule->key[rule->nkey];
        if (cfg_key_part(ld, e, part) != 0)
            return -1;
        rule->nkey++;
        for (size_t k = 0; k + 1 < rule->nkey; k++)
            if (rule->key[k].kind == part->kind &&
                (part->name == NULL || strcmp(rule->key[k].name, part->name) == 0))
                return cfg_fail(ld, e, "duplicate key part \"%s\"", config_setting_get_string(e));
    }
    return 0;
}

static int cfg_rule_missing(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (strcmp(v, "skip") == 0)
        rule->on_missing_key = RL_MISSING_SKIP;
    else if (strcmp(v, "refuse") == 0)
        rule->on_missing_key = RL_MISSING_REFUSE;
    else if (strcmp(v, "shared") == 0)
        rule->on_missing_key = RL_MISSING_SHARED;
    else
        return cfg_fail(ld, s, "unknown policy %s: expected \"skip\", \"refuse\" or \"shared\"",
                        rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_rule_body(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (strlen(v) > CFG_BODY_MAX)
        return cfg_fail(ld, s, "body of %zu bytes is above the maximum %d", strlen(v),
                        CFG_BODY_MAX);
    return cfg_set_string(ld, v, 0, &rule->body);
}

static int cfg_load_rule(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg)
{
    rl_rule *rule = &cfg->rules[cfg->nrules];
    const config_setting_t *limit = NULL, *burst = NULL, *cost = NULL;
    char q[RL_QUOTE_SIZE];

    if (cfg_group(ld, g) != 0)
        return -1;
    rule->line = (int)config_setting_source_line(g);
    rule->algo = RL_ALGO_GCRA;
    rule->status = 429;
    rule->missing_key_status = 400;
    rule->cost = 1;
    rule->nkey = 1; /* key = "client" */
    cfg->nrules++; /* from here on rl_config_free() frees what the rule holds */

    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "name"))
            rc = cfg_rule_name(ld, s, rule);
        else if (cfg_is(s, "path_prefix"))
            rc = cfg_rule_path_prefix(ld, s, rule);
        else if (cfg_is(s, "limit")) {
            rc = cfg_rule_limit(ld, s, rule);
            limit = s;
        } else if (cfg_is(s, "burst")) {
            long long v = 0;
            rc = cfg_int(ld, s, 1, RL_COUNT_MAX, &v);
            rule->burst = v;
            burst = s;
        } else if (cfg_is(s, "algorithm"))
            rc = cfg_rule_algorithm(ld, s, rule);
        else if (cfg_is(s, "on_redis_down"))
            rc = cfg_rule_on_redis_down(ld, s, rule);
        else if (cfg_is(s, "path"))
            rc = cfg_rule_path(ld, s, rule);
        else if (cfg_is(s, "path_regex"))
            rc = cfg_rule_path_regex(ld, s, rule);
        else if (cfg_is(s, "methods"))
            rc = cfg_rule_words(ld, s, 0, &rule->methods, &rule->nmethods);
        else if (cfg_is(s, "hosts"))
            rc = cfg_rule_words(ld, s, 1, &rule->hosts, &rule->nhosts);
        else if (cfg_is(s, "key"))
            rc = cfg_rule_key(ld, s, rule);
        else if (cfg_is(s, "on_missing_key"))
            rc = cfg_rule_missing(ld, s, rule);
        else if (cfg_is(s, "missing_key_status"))
            rc = cfg_int32(ld, s, 400, 599, &rule->missing_key_status);
        else if (cfg_is(s, "status"))
            rc = cfg_int32(ld, s, 400, 599, &rule->status);
        else if (cfg_is(s, "body"))
            rc = cfg_rule_body(ld, s, rule);
        else if (cfg_is(s, "dry_run"))
            rc = cfg_bool(ld, s, &rule->dry_run);
        else if (cfg_is(s, "cost")) {
            long long v = 0;
            rc = cfg_int(ld, s, 1, RL_COUNT_MAX, &v);
            rule->cost = v;
            cost = s;
        } else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }

    if (rule->name[0] == '\0')
        return cfg_fail(ld, g, "missing required key \"name\"");
    if (limit == NULL)
        return cfg_fail(ld, g, "missing required key \"limit\"");
    if (burst == NULL)
        rule->burst = rule->count;
    if (rule->path_prefix == NULL && rule->path == NULL && rule->path_regex == NULL &&
        cfg_set_string(ld, "/", 0, &rule->path_prefix) != 0)
        return -1;
    /* A cost above what the rule can ever admit would refuse every request it matches. */
    if (cost != NULL && rule->cost > (rule->algo == RL_ALGO_GCRA ? rule->burst : rule->count))
        return cfg_fail(ld, cost, "cost %lld is above the rule's %s %lld: no request could pass",
                        (long long)rule->cost, rule->algo == RL_ALGO_GCRA ? "burst" : "count",
                        (long long)(rule->algo == RL_ALGO_GCRA ? rule->burst : rule->count));
    /* Both factors are bounded (1e9 and 366 days), so these products cannot overflow. */
    if (rule->count * rule->period_ms > CFG_PRODUCT_MAX)
        return cfg_fail(ld, limit,
                        "limit %s is too large for its period: count x period in ms must not "
                        "exceed 2^50",
                        rl_quote(q, rule->limit_text, strlen(rule->limit_text)));
    /* The log's state is fixed-size: one 32-bit offset per admitted unit (slidelog.c). */
    if (rule->algo == RL_ALGO_SLIDING_LOG && rule->count > RL_LOG_MAX)
        return cfg_fail(ld, limit,
                        "sliding_log keeps one timestamp per request: count must be <= %d "
                        "(use \"sliding_window\" for larger limits)",
                        RL_LOG_MAX);
    if (rule->algo == RL_ALGO_SLIDING_LOG && rule->period_ms > RL_LOG_PERIOD_MAX_MS)
        return cfg_fail(ld, limit,
                        "sliding_log keeps timestamps as 32-bit offsets: the period must be at "
                        "most %lld ms (49.7 days; use \"sliding_window\" for longer periods)",
                        RL_LOG_PERIOD_MAX_MS);
    if (rule->burst * rule->period_ms > CFG_PRODUCT_MAX)
        return cfg_fail(ld, burst,
                        "burst %lld is too large for the period of %s: burst x period in ms "
                        "must not exceed 2^50",
                        (long long)rule->burst,
                        rl_quote(q, rule->limit_text, strlen(rule->limit_text)));
    for (size_t i = 0; i + 1 < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, rule->name) == 0)
            return cfg_fail(ld, config_setting_get_member(g, "name"),
                            "duplicate name %s: rules[%zu] at line %d has it already",
                            rl_quote(q, rule->name, strlen(rule->name)), i, cfg->rules[i].line);
    return 0;
}

static int cfg_load_rules(const cfg_loader *ld, const config_setting_t *list, rl_config *cfg)
{
    int n;

    if (!config_setting_is_list(list) && !config_setting_is_array(list))
        return cfg_wrong_type(ld, list, "a list of groups");
    n = config_setting_length(list);
    if (n == 0)
        return cfg_fail(ld, list, "no rules: at least one is required");
    if (n > RL_MAX_RULES)
        return cfg_fail(ld, list, "%d rules is above the maximum %d", n, RL_MAX_RULES);
    cfg->rules = calloc((size_t)n, sizeof *cfg->rules);
    if (cfg->rules == NULL)
        return cfg_oom(ld);
    for (int i = 0; i < n; i++)
        if (cfg_load_rule(ld, config_setting_get_elem(list, (unsigned)i), cfg) != 0)
            return -1;
    return 0;
}

/* ---- the file ------------------------------------------------------------------------------ */

/* ---- admin endpoints ---------------------------------------------------------------------- */

static int cfg_admin_path(const cfg_loader *ld, const config_setting_t *s, char **dst)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (cfg_string(ld, s, &v) != 0)
        return -1;
    if (v[0] != '/' || strlen(v) > CFG_ADMIN_PATH_MAX || strcspn(v, "?# ") != strlen(v) ||
        cfg_has_control(v))
        return cfg_fail(ld, s,
                        "invalid path %s: must start with '/', hold no '?', '#', space or "
                        "control bytes, and be at most %d bytes",
                        rl_quote(q, v, strlen(v)), CFG_ADMIN_PATH_MAX);
    return cfg_set_string(ld, v, 0, dst);
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
                return cfg_fail(ld, s != NULL ? s : g, "path %s is also admin.%s",
                                rl_quote(q, paths[i], strlen(paths[i])),
                                s != NULL && strcmp(config_setting_name(s), keys[i]) == 0
                                    ? keys[k] : keys[i]);
            }
    return 0;
}

static int cfg_admin_defaults(const cfg_loader *ld, rl_admin_config *ac, int allow_given)
{
    static const struct {
        char **dst;
        const char *v;
    } *d, defs[] = {{NULL, "/api/health/rate-limiter"},
                    {NULL, "/api/health/rate-limiter/stats"},
                    {NULL, "/api/health/rate-limiter/test"},
                    {NULL, "/metrics"}};
    char **dsts[] = {&ac->health_path, &ac->stats_path, &ac->test_path, &ac->metrics_path};
    char why[128];

    for (int i = 0; i < 4; i++) {
        d = &defs[i];
        if (*dsts[i] == NULL && cfg_set_string(ld, d->v, 0, dsts[i]) != 0)
            return -1;
    }
    if (!allow_given) {
        ac->allow = calloc(2, sizeof *ac->allow);
        if (ac->allow == NULL)
            return cfg_oom(ld);
        if (rl_cidr_parse("127.0.0.1/32", &ac->allow[0], why, sizeof why) != 0 ||
            rl_cidr_parse("::1/128", &ac->allow[1], why, sizeof why) != 0)
            return cfg_fail_file(ld, "admin.allow default: %s", why);
        ac->nallow = 2;
    }
    return 0;
}

static int cfg_load_admin(const cfg_loader *ld, const config_setting_t *g, rl_admin_config *ac)
{
    int allow_given = 0;

    if (cfg_group(ld, g) != 0)
        return -1;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (cfg_is(s, "enabled"))
            rc = cfg_bool(ld, s, &ac->enabled);
        else if (cfg_is(s, "allow")) {
            rc = cfg_cidr_list(ld, s, &ac->allow, &ac->nallow);
            allow_given = 1;
        } else if (cfg_is(s, "health_path"))
            rc = cfg_admin_path(ld, s, &ac->health_path);
        else if (cfg_is(s, "stats_path"))
            rc = cfg_admin_path(ld, s, &ac->stats_path);
        else if (cfg_is(s, "test_path"))
            rc = cfg_admin_path(ld, s, &ac->test_path);
        else if (cfg_is(s, "metrics_path"))
            rc = cfg_admin_path(ld, s, &ac->metrics_path);
        else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    if (cfg_admin_defaults(ld, ac, allow_given) != 0)
        return -1;
    return cfg_admin_distinct(ld, g, ac);
}

/* Reads the whole file into a NUL-terminated buffer (the caller frees it). */
static char *cfg_read_file(const cfg_loader *ld, size_t *len)
{
    FILE *f = fopen(ld->path, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (f == NULL) {
        cfg_fail_file(ld, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;

        if (cap - n < 4096) {
            char *bigger;
            cap = cap == 0 ? 8192 : cap * 2;
            if (cap > CFG_FILE_MAX + 8192) {
                cfg_fail_file(ld, "cannot read: larger than %d bytes", CFG_FILE_MAX);
                goto fail;
            }
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                cfg_oom(ld);
                goto fail;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        cfg_fail_file(ld, "cannot read: %s", strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* The filter copies each header a key reads into a fixed slot: bound their number. */
static int cfg_key_headers(const cfg_loader *ld, const config_setting_t *root,
                           const rl_config *cfg)
{
    const char *seen[RL_KEY_HEADERS_MAX];
    size_t nseen = 0;

    for (size_t i = 0; i < cfg->nrules; i++) {
        for (size_t k = 0; k < cfg->rules[i].nkey; k++) {
            const rl_key_part *p = &cfg->rules[i].key[k];
            size_t j = 0;
            if (p->kind != RL_KEY_HEADER)
                continue;
            while (j < nseen && strcmp(seen[j], p->name) != 0)
                j++;
            if (j < nseen)
                continue;
            if (nseen == RL_KEY_HEADERS_MAX) {
                const config_setting_t *g =
                    config_setting_get_elem(config_setting_get_member(root, "rules"),
                                            (unsigned)i);
                return cfg_fail(ld, config_setting_get_member(g, "key"),
                                "rules read more than %d different headers", RL_KEY_HEADERS_MAX);
            }
            seen[nseen++] = p->name;
        }
    }
    return 0;
}

static int cfg_load_root(const cfg_loader *ld, const config_setting_t *root, rl_config *cfg)
{
    int have_rules = 0;

    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        int rc;

        if (cfg_is(s, "shm"))
            rc = cfg_load_shm(ld, s, &cfg->shm);
        else if (cfg_is(s, "redis"))
            rc = cfg_load_redis(ld, s, &cfg->redis);
        else if (cfg_is(s, "headers"))
            rc = cfg_load_headers(ld, s, cfg);
        else if (cfg_is(s, "identity"))
            rc = cfg_load_identity(ld, s, &cfg->identity);
        else if (cfg_is(s, "access"))
            rc = cfg_load_access(ld, s, &cfg->access);
        else if (cfg_is(s, "proxy"))
            rc = cfg_load_proxy(ld, s, &cfg->proxy);
        else if (cfg_is(s, "admin"))
            rc = cfg_load_admin(ld, s, &cfg->admin);
        else if (cfg_is(s, "rules")) {
            rc = cfg_load_rules(ld, s, cfg);
            have_rules = 1;
        } else
            rc = cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    if (!have_rules)
        return cfg_fail_file(ld, "missing required key \"rules\"");
    if (cfg_key_headers(ld, root, cfg) != 0)
        return -1;
    if (cfg->shm.name == NULL && cfg_shm_default_name(ld, &cfg->shm) != 0)
        return -1;
    if (cfg->redis.host == NULL && cfg_set_string(ld, "127.0.0.1", 0, &cfg->redis.host) != 0)
        return -1;
    if (cfg->redis.prefix == NULL && cfg_set_string(ld, "rl:", 0, &cfg->redis.prefix) != 0)
        return -1;
    if (cfg->admin.health_path == NULL && cfg_admin_defaults(ld, &cfg->admin, 0) != 0)
        return -1;
    return 0;
}

static void cfg_defaults(rl_config *cfg)
{
    cfg->shm.capacity = 100000;
    cfg->redis.enabled = 0;
    cfg->redis.port = 6379;
    cfg->redis.db = 0;
    cfg->redis.connect_timeout_ms = 100;
    cfg->redis.command_timeout_ms = 50;
    cfg->redis.breaker_failures = 3;
    cfg->redis.breaker_open_ms = 1000;
    cfg->redis.hosts = 1;
    cfg->x_ratelimit_headers = 1;
    cfg->admin.enabled = 1;
    cfg->identity.header = RL_FORWARD_XFF;
    cfg->identity.ipv6_prefix = 64;
    cfg->proxy.connect_timeout_ms = 1000;
    cfg->proxy.timeout_ms = 30000;
}

rl_config *rl_config_load(const char *file, rl_error *err)
{
    rl_error spare;
    cfg_loader ld = {.path = file != NULL ? file : "(null)", .err = err != NULL ? err : &spare};
    config_t lc;
    rl_config *cfg;
    char *text;
    const char *nul;

    ld.err->text[0] = '\0';
    if (file == NULL) {
        cfg_fail_file(&ld, "cannot open: %s", strerror(EINVAL));
        return NULL;
    }
    text = cfg_read_file(&ld, &ld.len);
    if (text == NULL)
        return NULL;
    ld.text = text;
    nul = memchr(text, '\0', ld.len);
    if (nul != NULL) {
        unsigned line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        snprintf(ld.err->text, sizeof ld.err->text, "%s:%u: NUL byte in the file", file, line);
        free(text);
        return NULL;
    }

    config_init(&lc);
    if (config_read_string(&lc, text) != CONFIG_TRUE) {
        const char *efile = config_error_file(&lc);
        char prefix[32] = "";
        if (config_error_line(&lc) > 0)
            snprintf(prefix, sizeof prefix, ":%d", config_error_line(&lc));
        snprintf(ld.err->text, sizeof ld.err->text, "%s%s: %s", efile != NULL ? efile : file,
                 prefix, config_error_text(&lc));
        config_destroy(&lc);
        free(text);
        return NULL;
    }

    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL || (cfg->path = strdup(file)) == NULL) {
        cfg_oom(&ld);
        goto fail;
    }
    cfg_defaults(cfg);
    if (cfg_load_root(&ld, config_root_setting(&lc), cfg) != 0)
        goto fail;
    /* The environment overrides the file (config_env.c); its errors name the variable. */
    if (rl_config_env(cfg, ld.err) != 0)
        goto fail;
    config_destroy(&lc);
    free(text);
    return cfg;
fail:
    rl_config_free(cfg);
    config_destroy(&lc);
    free(text);
    return NULL;
}

void rl_config_free(rl_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nrules; i++) {
        rl_rule *r = &cfg->rules[i];
        free(r->path_prefix);
        free(r->limit_text);
        free(r->path);
        free(r->path_regex_text);
        if (r->path_regex != NULL)
            regfree(r->path_regex);
        free(r->path_regex);
        for (size_t k = 0; k < r->nmethods; k++)
            free(r->methods[k]);
        free(r->methods);
        for (size_t k = 0; k < r->nhosts; k++)
            free(r->hosts[k]);
        free(r->hosts);
        for (size_t k = 0; k < r->nkey; k++)
            free(r->key[k].name);
        free(r->body);
    }
    free(cfg->identity.trusted);
    free(cfg->access.allow);
    free(cfg->access.deny);
    free(cfg->rules);
    free(cfg->shm.name);
    free(cfg->redis.host);
    free(cfg->redis.socket);
    free(cfg->redis.user);
    free(cfg->redis.password);
    free(cfg->redis.prefix);
    free(cfg->proxy.backend);
    free(cfg->admin.allow);
    free(cfg->admin.health_path);
    free(cfg->admin.stats_path);
    free(cfg->admin.test_path);
    free(cfg->admin.metrics_path);
    free(cfg->path);
    free(cfg);
}
