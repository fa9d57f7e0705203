/* config_value.c -- typed readers and error reporting for the configuration loader
 *
 * Every setting goes through one of these: each checks the libconfig type, the range or the
 * shape, and reports the first problem as "FILE:LINE: KEY: message \"value\"" into the
 * loader's rl_error (see config_int.h). KEY is the path built from the tree ("rules[1].limit").
 * libconfig 1.5 stores an integer literal too big for an int with atoi(), so it wraps without
 * a word (4294967312 reads as 16); cfg_reread_int() takes such numbers from the source text.
 */
#include "fmacros.h"

#include "config_int.h"
#include "error.h"

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
        rl_errbuf_vset(t + n, size - (size_t)n, fmt, ap);
    return -1;
}

/* Reports an error about setting s: "file:line: key: ...". Returns -1. */
int rl_cfg_fail(const cfg_loader *ld, const config_setting_t *s, const char *fmt, ...)
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
int rl_cfg_fail_file(const cfg_loader *ld, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_vfail(ld, ld->path, 0, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int rl_cfg_oom(const cfg_loader *ld)
{
    return rl_cfg_fail_file(ld, "out of memory");
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
int rl_cfg_wrong_type(const cfg_loader *ld, const config_setting_t *s, const char *expected)
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
    return rl_cfg_fail(ld, s, "expected %s, got %s%s", expected,
                       cfg_type_name(config_setting_type(s)), v);
}

int rl_cfg_unknown_key(const cfg_loader *ld, const config_setting_t *s)
{
    return rl_cfg_fail(ld, s, "unknown key");
}

/* ---- typed values ------------------------------------------------------------------------ */

static int cfg_is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '*';
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
int rl_cfg_int(const cfg_loader *ld, const config_setting_t *s, long long min, long long max,
               long long *out)
{
    char q[RL_QUOTE_SIZE];
    int type = config_setting_type(s);
    long long v, re = 0;
    const char *lit = NULL;
    size_t litlen = 0;

    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return rl_cfg_wrong_type(ld, s, "an integer");
    v = type == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    switch (cfg_reread_int(ld, s, &re, &lit, &litlen)) {
    case -1:
        return rl_cfg_fail(ld, s, "integer %s does not fit in 64 bits", rl_quote(q, lit, litlen));
    case 1:
        /* Trust the source only where it agrees with what libconfig kept of it. */
        if (type == CONFIG_TYPE_INT ? (int)(unsigned)re == (int)v : re == v)
            v = re;
        break;
    default: break;
    }
    if (v < min)
        return rl_cfg_fail(ld, s, "%lld is below the minimum %lld", v, min);
    if (v > max)
        return rl_cfg_fail(ld, s, "%lld is above the maximum %lld", v, max);
    *out = v;
    return 0;
}

int rl_cfg_int32(const cfg_loader *ld, const config_setting_t *s, int min, int max, int *out)
{
    long long v = 0;

    if (rl_cfg_int(ld, s, min, max, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

int rl_cfg_bool(const cfg_loader *ld, const config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return rl_cfg_wrong_type(ld, s, "a boolean");
    *out = config_setting_get_bool(s) ? 1 : 0;
    return 0;
}

/* A string, borrowed from libconfig's tree. */
int rl_cfg_string(const cfg_loader *ld, const config_setting_t *s, const char **out)
{
    *out = "";
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return rl_cfg_wrong_type(ld, s, "a string");
    *out = config_setting_get_string(s);
    return 0;
}

/* Replaces *dst with a copy of v, or with NULL when v is empty and empty_is_null. */
int rl_cfg_set_string(const cfg_loader *ld, const char *v, int empty_is_null, char **dst)
{
    char *copy = NULL;

    if (!(empty_is_null && v[0] == '\0')) {
        copy = strdup(v);
        if (copy == NULL)
            return rl_cfg_oom(ld);
    }
    free(*dst);
    *dst = copy;
    return 0;
}

int rl_cfg_group(const cfg_loader *ld, const config_setting_t *s)
{
    return config_setting_is_group(s) ? 0 : rl_cfg_wrong_type(ld, s, "a group");
}

int rl_cfg_is(const config_setting_t *s, const char *name)
{
    return strcmp(config_setting_name(s), name) == 0;
}

/* ---- lists ------------------------------------------------------------------------------- */

/* s must be an array or a list of 1..max strings. Returns their count, or -1. */
int rl_cfg_string_list(const cfg_loader *ld, const config_setting_t *s, int max)
{
    int n;

    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return rl_cfg_wrong_type(ld, s, "a list of strings");
    n = config_setting_length(s);
    if (n == 0)
        return rl_cfg_fail(ld, s, "empty list: leave the key out instead");
    if (n > max)
        return rl_cfg_fail(ld, s, "%d entries is above the maximum %d", n, max);
    for (int i = 0; i < n; i++) {
        const char *v;
        if (rl_cfg_string(ld, config_setting_get_elem(s, (unsigned)i), &v) != 0)
            return -1;
    }
    return n;
}

/* A list of address blocks into a new array *out of *n entries (owned by the config). */
int rl_cfg_cidr_list(const cfg_loader *ld, const config_setting_t *s, rl_cidr **out, size_t *n)
{
    int len = rl_cfg_string_list(ld, s, CFG_LIST_MAX);

    if (len < 0)
        return -1;
    free(*out);
    *n = 0;
    *out = calloc((size_t)len, sizeof **out);
    if (*out == NULL)
        return rl_cfg_oom(ld);
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        char why[128], q[RL_QUOTE_SIZE];
        if (rl_cidr_parse(v, &(*out)[i], why, sizeof why) != 0)
            return rl_cfg_fail(ld, e, "invalid address block %s: %s", rl_quote(q, v, strlen(v)),
                               why);
    }
    *n = (size_t)len;
    return 0;
}
