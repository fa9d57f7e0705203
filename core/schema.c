/* schema.c -- one loader for every section: a group read against its table of rows
 *
 * A section (ratelimit_schema.h) is a table of rl_setting rows and a finish hook. Reading a
 * group: its struct gets every row's default (rl_schema_defaults, parsed from the row's def
 * text by the same code as an override's value), then each member of the file's group is
 * looked up among the rows (a key no row has is an error, never ignored), read by its type
 * with the row's bounds, and stored at the row's offset; then the required rows are checked
 * and finish() does what concerns several keys. An override (rl_config_override) goes
 * through the same rows: text is parsed by type and bound by the same min..max, a LIST's
 * entries by the same count and length bounds and check, and finish() runs again. Which rows
 * were given is kept per group (rl_config.given), so a finish hook run after an override
 * sees the file's keys and the overridden ones alike. A CHOICE row's names and values are
 * one table, so its error lists exactly what it accepts.
 */
#include "fmacros.h"

#include "config_int.h"
#include "error.h"

const rl_setting *rl_schema_row(const rl_section *sec, const char *key)
{
    for (size_t i = 0; i < sec->nsettings; i++)
        if (strcmp(sec->settings[i].key, key) == 0)
            return &sec->settings[i];
    return NULL;
}

int rl_parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

_Static_assert(RL_SCHEMA_QUOTE_SIZE >= RL_QUOTE_SIZE, "rl_schema_quote's buffer");

const char *rl_schema_quote(char *buf, const char *v)
{
    return rl_quote(buf, v, strlen(v));
}

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

/* A CHOICE row's names as messages list them: "a", "b" or "c". */
static void schema_choice_names(const rl_setting *r, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (const rl_setting_choice *c = r->choices; c->name != NULL && used < size; c++) {
        const char *sep = c == r->choices ? "" : c[1].name == NULL ? " or " : ", ";
        int n = snprintf(buf + used, size - used, "%s\"%s\"", sep, c->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The value of the choice v names into the row's int; 0, or -1 with "expected ..." in why. */
static int schema_choice(const rl_setting *r, const char *v, void *base, char *why, size_t size)
{
    char names[RL_ERRSTR_MAX / 2];

    for (const rl_setting_choice *c = r->choices; c->name != NULL; c++)
        if ((r->flags & RL_SETTING_ANY_CASE) ? strcasecmp(c->name, v) == 0
                                             : strcmp(c->name, v) == 0) {
            *FIELD(base, r->offset, int) = c->value;
            return 0;
        }
    schema_choice_names(r, names, sizeof names);
    snprintf(why, size, "expected %s", names);
    return -1;
}

/* A STRING value through the row's check and canonical-path rule into *dst. s is the file's
 * setting for messages (NULL for an override: the reason then goes to why). */
static int schema_string(rl_schema_ctx *ctx, const rl_setting *r, const config_setting_t *s,
                         const char *v, void *base, char *why, size_t size)
{
    char q[RL_QUOTE_SIZE];
    char *copy = strdup(v);

    if (copy == NULL) {
        snprintf(why, size, "out of memory");
        return s != NULL ? rl_cfg_oom(ctx->ld) : -1;
    }
    if (r->check != NULL && r->check(copy, rl_quote(q, v, strlen(v)), why, size) != 0) {
        free(copy);
        return s != NULL ? rl_cfg_fail(ctx->ld, s, "%s", why) : -1;
    }
    if (r->canonical != NULL && rl_cfg_canonical_why(r->canonical, copy, why, size) != 0) {
        free(copy);
        return s != NULL ? rl_cfg_fail(ctx->ld, s, "%s", why) : -1;
    }
    char **dst = FIELD(base, r->offset, char *);
    free(*dst);
    *dst = copy;
    if ((r->flags & RL_SETTING_EMPTY_NULL) && copy[0] == '\0') {
        free(copy);
        *dst = NULL;
    }
    return 0;
}

static void schema_list_free(char **list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

/* One entry of a LIST: its length bound, then the row's check, into a new string *out. */
static int schema_list_item(const rl_setting *r, const char *v, char **out, char *why, size_t size)
{
    char q[RL_QUOTE_SIZE];
    size_t n = strlen(v);

    *out = NULL;
    rl_quote(q, v, n);
    if (n == 0 || (r->item_max > 0 && n > r->item_max)) {
        snprintf(why, size, "invalid entry %s: must be 1..%zu bytes", q,
                 r->item_max > 0 ? r->item_max : (size_t)-1);
        return -1;
    }
    if ((*out = strdup(v)) == NULL) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    if (r->check != NULL && r->check(*out, q, why, size) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* A LIST row's new entries (owned) into base, the old ones freed. */
static void schema_list_store(const rl_setting *r, void *base, char **list, size_t n)
{
    char ***dst = FIELD(base, r->offset, char **);
    size_t *count = FIELD(base, r->offset2, size_t);

    schema_list_free(*dst, *count);
    *dst = list;
    *count = n;
}

/* A LIST from the file: min..max strings, each through schema_list_item; a bad entry is
 * reported at its own line ("redis.cluster[1]: ..."). */
static int schema_list(const cfg_loader *ld, const rl_setting *r, const config_setting_t *s,
                       void *base)
{
    int len = rl_cfg_string_list(ld, s, (int)r->max);
    char why[RL_ERRSTR_MAX];
    char **list;

    if (len < 0)
        return -1;
    if (len < r->min)
        return rl_cfg_fail(ld, s, "%d entries is below the minimum %lld", len, r->min);
    if ((list = calloc((size_t)len, sizeof *list)) == NULL)
        return rl_cfg_oom(ld);
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (schema_list_item(r, config_setting_get_string(e), &list[i], why, sizeof why) != 0) {
            schema_list_free(list, (size_t)i);
            return rl_cfg_fail(ld, e, "%s", why);
        }
    }
    schema_list_store(r, base, list, (size_t)len);
    return 0;
}

/* The next entry of a list written as text (["a", "b"], a,b or a b): *p moves past the
 * brackets, quotes, commas and blanks before it; returns its length, 0 at the end. One
 * tokeniser for LIST and CIDRS rows, so both accept the same spellings. */
static size_t schema_text_item(const char **p)
{
    static const char sep[] = "[]\", \t";

    *p += strspn(*p, sep);
    return strcspn(*p, sep);
}

/* A LIST from text: entries separated by commas or blanks, with brackets and quotes allowed
 * (["a:1", "b:2"], as the file writes it); the same bounds and check as the file's. */
static int schema_list_text(const rl_setting *r, const char *v, void *base, char *why, size_t size)
{
    char **list = NULL;
    size_t k = 0;

    for (const char *p = v;;) {
        char *item;
        size_t len = schema_text_item(&p);

        if (len == 0)
            break;
        if ((long long)k >= r->max) {
            snprintf(why, size, "more than %lld entries", r->max);
            goto fail;
        }
        char **bigger = realloc(list, (k + 1) * sizeof *list);
        if (bigger == NULL || (item = strndup(p, len)) == NULL) {
            if (bigger != NULL)
                list = bigger;
            snprintf(why, size, "out of memory");
            goto fail;
        }
        list = bigger;
        if (schema_list_item(r, item, &list[k], why, size) != 0) {
            free(item);
            goto fail;
        }
        free(item);
        k++;
        p += len;
    }
    if ((long long)k < r->min) {
        snprintf(why, size, "expected %lld..%lld entries", r->min, r->max);
        goto fail;
    }
    schema_list_store(r, base, list, k);
    return 0;
fail:
    schema_list_free(list, k);
    return -1;
}

/* A list of address blocks written as the MANUAL does: ["127.0.0.1/32", "::1/128"]; at most
 * CFG_LIST_MAX entries, as the file's (rl_cfg_cidr_list), and an entry too long for any
 * address block is refused, never cut short. */
static int schema_cidrs_text(const rl_setting *r, const char *v, void *base, char *why, size_t size)
{
    rl_cidr **list = FIELD(base, r->offset, rl_cidr *);
    size_t *n = FIELD(base, r->offset2, size_t);
    rl_cidr *out = NULL;
    size_t k = 0;
    char item[RL_ADDR_TEXT_MAX + 8];

    for (const char *p = v;;) {
        size_t len = schema_text_item(&p);
        if (len == 0)
            break;
        if (k >= CFG_LIST_MAX || len >= sizeof item) {
            free(out);
            if (k >= CFG_LIST_MAX)
                snprintf(why, size, "more than %d entries", CFG_LIST_MAX);
            else
                snprintf(why, size, "invalid address block: longer than %zu bytes",
                         sizeof item - 1);
            return -1;
        }
        rl_cidr *bigger = realloc(out, (k + 1) * sizeof *out);
        if (bigger == NULL) {
            free(out);
            snprintf(why, size, "out of memory");
            return -1;
        }
        out = bigger;
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (rl_cidr_parse(item, &out[k], why, size) != 0) {
            free(out);
            return -1;
        }
        k++;
        p += len;
    }
    free(*list);
    *list = out;
    *n = k;
    return 0;
}

int rl_schema_set_text(rl_schema_ctx *ctx, const rl_setting *r, const char *v, void *base,
                       char *why, size_t size)
{
    switch (r->type) {
    case RL_SETTING_BOOL:
        if (rl_parse_bool(v, FIELD(base, r->offset, int)) != 0) {
            snprintf(why, size, "%s", RL_BOOL_EXPECTED);
            return -1;
        }
        return 0;
    case RL_SETTING_INT:
    case RL_SETTING_INT64: {
        char *end;
        long long n;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n < r->min || n > r->max) {
            snprintf(why, size, "expected an integer in %lld..%lld", r->min, r->max);
            return -1;
        }
        if (r->type == RL_SETTING_INT)
            *FIELD(base, r->offset, int) = (int)n;
        else
            *FIELD(base, r->offset, int64_t) = n;
        return 0;
    }
    case RL_SETTING_STRING: return schema_string(ctx, r, NULL, v, base, why, size);
    case RL_SETTING_CIDRS: return schema_cidrs_text(r, v, base, why, size);
    case RL_SETTING_LIST: return schema_list_text(r, v, base, why, size);
    case RL_SETTING_CHOICE: return schema_choice(r, v, base, why, size);
    case RL_SETTING_CUSTOM: {
        const cfg_custom *c = r->impl;
        if (c == NULL || c->text == NULL) {
            snprintf(why, size, "cannot be set from outside the file");
            return -1;
        }
        return c->text(ctx, v, base, why, size);
    }
    }
    return -1;
}

int rl_schema_defaults(const cfg_loader *ld, const rl_section *sec, void *base)
{
    rl_schema_ctx ctx = {.ld = ld, .sec = sec};
    char why[256];

    for (size_t i = 0; i < sec->nsettings; i++) {
        const rl_setting *r = &sec->settings[i];
        if (r->def == NULL || (r->flags & (RL_SETTING_DERIVED | RL_SETTING_REQUIRED)) ||
            r->type == RL_SETTING_CUSTOM)
            continue;
        if (rl_schema_set_text(&ctx, r, r->def, base, why, sizeof why) != 0)
            return rl_cfg_fail_file(ld, "%s.%s default: %s", sec->name, r->key, why);
    }
    return 0;
}

/* One member of a group, by its row's type. */
static int schema_member(rl_schema_ctx *ctx, const rl_setting *r, const config_setting_t *s,
                         void *base)
{
    const cfg_loader *ld = ctx->ld;
    char why[RL_ERRSTR_MAX];

    switch (r->type) {
    case RL_SETTING_BOOL: return rl_cfg_bool(ld, s, FIELD(base, r->offset, int));
    case RL_SETTING_INT:
        return rl_cfg_int32(ld, s, (int)r->min, (int)r->max, FIELD(base, r->offset, int));
    case RL_SETTING_INT64: {
        long long v = 0;
        if (rl_cfg_int(ld, s, r->min, r->max, &v) != 0)
            return -1;
        *FIELD(base, r->offset, int64_t) = v;
        return 0;
    }
    case RL_SETTING_STRING: {
        const char *v;
        if (rl_cfg_string(ld, s, &v) != 0)
            return -1;
        return schema_string(ctx, r, s, v, base, why, sizeof why);
    }
    case RL_SETTING_CIDRS:
        return rl_cfg_cidr_list(ld, s, FIELD(base, r->offset, rl_cidr *),
                                FIELD(base, r->offset2, size_t));
    case RL_SETTING_LIST: return schema_list(ld, r, s, base);
    case RL_SETTING_CHOICE: {
        char q[RL_QUOTE_SIZE];
        const char *v;
        if (rl_cfg_string(ld, s, &v) != 0)
            return -1;
        if (schema_choice(r, v, base, why, sizeof why) != 0)
            return rl_cfg_fail(ld, s, "unknown %s %s: %s", r->noun != NULL ? r->noun : "value",
                               rl_quote(q, v, strlen(v)), why);
        return 0;
    }
    case RL_SETTING_CUSTOM: return ((const cfg_custom *)r->impl)->read(ctx, s, base);
    }
    return -1;
}

int rl_schema_read(rl_schema_ctx *ctx, const config_setting_t *g, void *base)
{
    const rl_section *sec = ctx->sec;

    ctx->group = g;
    if (g != NULL) {
        if (rl_cfg_group(ctx->ld, g) != 0)
            return -1;
        for (int i = 0; i < config_setting_length(g); i++) {
            const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
            const rl_setting *r = rl_schema_row(sec, config_setting_name(s));
            if (r == NULL)
                return rl_cfg_unknown_key(ctx->ld, s);
            if (schema_member(ctx, r, s, base) != 0)
                return -1;
            if (ctx->given != NULL && r - sec->settings < RL_CFG_ROWS_MAX)
                *ctx->given |= 1ULL << (r - sec->settings);
        }
    }
    return sec->finish != NULL ? sec->finish(ctx, base) : 0;
}

void rl_schema_free(const rl_section *sec, void *base)
{
    if (base == NULL)
        return;
    for (size_t i = 0; i < sec->nsettings; i++) {
        const rl_setting *r = &sec->settings[i];
        if (r->type == RL_SETTING_STRING)
            free(*FIELD(base, r->offset, char *));
        else if (r->type == RL_SETTING_CIDRS)
            free(*FIELD(base, r->offset, rl_cidr *));
        else if (r->type == RL_SETTING_LIST)
            schema_list_free(*FIELD(base, r->offset, char **), *FIELD(base, r->offset2, size_t));
    }
}

int rl_schema_given(const rl_schema_ctx *ctx, const char *key)
{
    const rl_setting *r;

    if (ctx->given != NULL) {
        r = rl_schema_row(ctx->sec, key);
        return r != NULL && r - ctx->sec->settings < RL_CFG_ROWS_MAX &&
               (*ctx->given >> (r - ctx->sec->settings) & 1);
    }
    return ctx->group != NULL && config_setting_get_member(ctx->group, key) != NULL;
}

int rl_schema_fail(rl_schema_ctx *ctx, const char *key, const char *fmt, ...)
{
    char text[RL_ERRSTR_MAX];
    const config_setting_t *s = NULL;
    va_list ap;

    va_start(ap, fmt);
    rl_errbuf_vset(text, sizeof text, fmt, ap);
    va_end(ap);
    if (ctx->why != NULL) {
        snprintf(ctx->why, ctx->whysize, "%s", text);
        return -1;
    }
    if (ctx->group != NULL)
        s = key != NULL ? config_setting_get_member(ctx->group, key) : NULL;
    if (s == NULL && ctx->group != NULL)
        s = ctx->group;
    if (s != NULL)
        return rl_cfg_fail(ctx->ld, s, "%s", text);
    return rl_cfg_fail_file(ctx->ld, "%s%s%s: %s", ctx->sec->name, key != NULL ? "." : "",
                            key != NULL ? key : "", text);
}
