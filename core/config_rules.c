/* config_rules.c -- the rules list of the configuration: the rule's rows and readers
 *
 * Each rule group becomes an rl_rule, read by schema.c against cfg_rule_rows: name, match
 * (path, path_prefix, path_regex compiled once, methods, hosts), limit and burst, algorithm,
 * key parts, missing-key policy, refusal status and body, dry run, cost and on_redis_down,
 * each validated here once so the request path does no parsing. cfg_rule_finish checks what
 * concerns several keys, with the same rl_rule_check_numbers an override goes through.
 */
#include "fmacros.h"

#include "config_int.h"
#include "rule.h"
#include "rule_check.h"
#include "http.h"

#include <stddef.h>
#include <stdint.h>

/* ---- rules --------------------------------------------------------------------------------- */

static int cfg_rule_name(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    const cfg_loader *ld = ctx->ld;
    rl_rule *rule = sec;
    char q[RL_QUOTE_SIZE];
    const char *v;
    size_t n;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    n = strlen(v);
    if (n < 1 || n > RL_NAME_MAX - 1)
        return rl_cfg_fail(ld, s, "invalid name %s: must be 1..%d characters", rl_quote(q, v, n),
                           RL_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-'))
            return rl_cfg_fail(
                ld, s, "invalid name %s: only letters, digits, '_', '.' and '-' are allowed",
                rl_quote(q, v, n));
    memcpy(rule->name, v, n + 1);
    return 0;
}

int rl_cfg_canonical_why(const char *what, const char *v, char *why, size_t size)
{
    char canon[RL_PATH_MAX];
    char q[RL_QUOTE_SIZE], q2[RL_QUOTE_SIZE];
    rl_path_status st;

    if (v[0] != '/') {
        snprintf(why, size, "invalid %s %s: must start with '/'", what, rl_quote(q, v, strlen(v)));
        return -1;
    }
    for (const char *p = v; (p = strchr(p, '%')) != NULL; p++)
        if (isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            snprintf(why, size,
                     "invalid %s %s: requests are matched on their decoded path, so write the "
                     "byte that %.3s stands for",
                     what, rl_quote(q, v, strlen(v)), p);
            return -1;
        }
    st = rl_path_canon(v, RL_PATH_DECODED, canon, NULL);
    if (st != RL_PATH_OK) {
        snprintf(why, size, "invalid %s %s: %s", what, rl_quote(q, v, strlen(v)),
                 rl_path_strerror(st));
        return -1;
    }
    if (strcmp(canon, v) != 0) {
        snprintf(why, size,
                 "invalid %s %s: no request path has this form (repeated '/', '.' or '..' "
                 "segments are removed before matching); write %s",
                 what, rl_quote(q, v, strlen(v)), rl_quote(q2, canon, strlen(canon)));
        return -1;
    }
    return 0;
}

static int cfg_rule_limit(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    const cfg_loader *ld = ctx->ld;
    rl_rule *rule = sec;
    rl_error why;
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (rl_parse_limit(v, &rule->count, &rule->period_ms, &why) != 0)
        return rl_cfg_fail(ld, s, "%s", why.text);
    return rl_cfg_set_string(ld, v, 0, &rule->limit_text);
}

/* Compiled once the whole rule is read: path_case_insensitive may come after it. */
static int cfg_rule_path_regex(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    PCRE2_UCHAR why[256];
    const char *v;
    pcre2_code *re;
    int rc;
    PCRE2_SIZE at;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (rule->path_regex != NULL)
        return rl_cfg_fail(ld, s, "path_regex given twice");
    /* Without PCRE2_UTF: the canonical path is bytes (no UTF-8 check), so a match never
     * fails for an invalid sequence; CASELESS then folds ASCII only, as the other matchers. */
    re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED, rule->path_nocase ? PCRE2_CASELESS : 0,
                       &rc, &at, NULL);
    if (re == NULL) {
        pcre2_get_error_message(rc, why, sizeof why);
        return rl_cfg_fail(ld, s, "invalid regex %s at offset %zu: %s", rl_quote(q, v, strlen(v)),
                           (size_t)at, (const char *)why);
    }
    rule->path_regex = re;
    /* JIT where the platform has it; the interpreter otherwise. Both honour the match limit. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    rule->path_regex_match = pcre2_match_data_create_from_pattern(re, NULL);
    rule->path_regex_mctx = pcre2_match_context_create(NULL);
    if (rule->path_regex_match == NULL || rule->path_regex_mctx == NULL)
        return rl_cfg_oom(ld);
    pcre2_set_match_limit(rule->path_regex_mctx, RL_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(rule->path_regex_mctx, RL_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(rule->path_regex_mctx, RL_REGEX_HEAP_LIMIT_KIB);
    return rl_cfg_set_string(ld, v, 0, &rule->path_regex_text);
}

/* methods or hosts: a list of strings, each checked and copied (hosts in lowercase). */
static int cfg_rule_words(const cfg_loader *ld, const config_setting_t *s, int hosts, char ***out,
                          size_t *nout)
{
    char q[RL_QUOTE_SIZE];
    int n = rl_cfg_string_list(ld, s, CFG_LIST_MAX);

    if (n < 0)
        return -1;
    if (*out != NULL)
        return rl_cfg_fail(ld, s, "given twice");
    *out = calloc((size_t)n, sizeof **out);
    if (*out == NULL)
        return rl_cfg_oom(ld);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        size_t len = strlen(v), k;
        int ok = len >= 1 && len <= (hosts ? CFG_HOST_MAX : CFG_METHOD_MAX);
        for (k = 0; ok && k < len; k++)
            ok = hosts ? (isalnum((unsigned char)v[k]) || v[k] == '-' || v[k] == '.' ||
                          v[k] == '_' || v[k] == ':')
                       : rl_http_tchar(v[k]);
        if (!ok)
            return rl_cfg_fail(ld, e,
                               hosts ? "invalid host %s: a name or address without port, 1..253 "
                                       "characters of letters, digits, '-', '.', '_' (':' for IPv6)"
                                     : "invalid method %s: 1..31 token characters",
                               rl_quote(q, v, len));
        (*out)[i] = strdup(v);
        if ((*out)[i] == NULL)
            return rl_cfg_oom(ld);
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

    if (rl_cfg_string(ld, e, &v) != 0)
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
        return rl_cfg_fail(
            ld, e, "invalid key %s: expected \"client\", \"header:NAME\" or \"cookie:NAME\"",
            rl_quote(q, v, strlen(v)));
    name = v + 7;
    n = strlen(name);
    for (size_t k = 0; k < n; k++)
        if (!rl_http_tchar(name[k]))
            n = 0;
    if (n == 0 || n > CFG_HEADER_NAME_MAX)
        return rl_cfg_fail(ld, e, "invalid key %s: NAME must be 1..%d token characters",
                           rl_quote(q, v, strlen(v)), CFG_HEADER_NAME_MAX);
    part->name = strdup(name);
    if (part->name == NULL)
        return rl_cfg_oom(ld);
    if (part->kind == RL_KEY_HEADER) /* header names are case-insensitive */
        for (char *c = part->name; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
    return 0;
}

static int cfg_rule_key(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    const cfg_loader *ld = ctx->ld;
    rl_rule *rule = sec;
    int n;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        rule->nkey = 0;
        if (cfg_key_part(ld, s, &rule->key[0]) != 0)
            return -1;
        rule->nkey = 1;
        return 0;
    }
    n = rl_cfg_string_list(ld, s, RL_KEY_PARTS_MAX);
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
                return rl_cfg_fail(ld, e, "duplicate key part \"%s\"",
                                   config_setting_get_string(e));
    }
    return 0;
}

static int cfg_rule_methods(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    rl_rule *rule = sec;
    return cfg_rule_words(ctx->ld, s, 0, &rule->methods, &rule->nmethods);
}

static int cfg_rule_hosts(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    rl_rule *rule = sec;
    return cfg_rule_words(ctx->ld, s, 1, &rule->hosts, &rule->nhosts);
}

/* Compiled by cfg_rule_finish: path_case_insensitive may come after it. */
static int cfg_rule_regex_later(rl_schema_ctx *ctx, const config_setting_t *s, void *sec)
{
    const char *v;
    (void)sec;
    return rl_cfg_string(ctx->ld, s, &v);
}

static int cfg_rule_body(char *v, const char *q, char *why, size_t size)
{
    (void)q;
    if (strlen(v) <= CFG_BODY_MAX)
        return 0;
    snprintf(why, size, "body of %zu bytes is above the maximum %d", strlen(v), CFG_BODY_MAX);
    return -1;
}

/* An override of the limit: "COUNT/PERIOD" as in the file. A burst that equalled the count
 * (the default) follows the new count. The rule as the override leaves it goes through the
 * file's check (rl_rule_check_numbers); refused, the rule is unchanged. */
static int cfg_rule_limit_text(rl_schema_ctx *ctx, const char *v, void *sec, char *why, size_t size)
{
    rl_rule *rule = sec, next;
    rl_error perr;
    int64_t count, period;
    char *text;

    (void)ctx;
    if (rl_parse_limit(v, &count, &period, &perr) != 0) {
        snprintf(why, size, "%s", perr.text);
        return -1;
    }
    next = *rule;
    next.count = count;
    next.period_ms = period;
    next.burst = rule->burst == rule->count ? count : rule->burst;
    next.limit_text = (char *)(uintptr_t)v; /* for messages only */
    if (rl_rule_check_numbers(&next, why, size) != RL_CHECK_OK)
        return -1;
    if ((text = strdup(v)) == NULL) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    free(rule->limit_text);
    rule->limit_text = text;
    rule->count = next.count;
    rule->period_ms = next.period_ms;
    rule->burst = next.burst;
    return 0; /* the caller (config_override.c, ov_rule) derives the key identity anew */
}

/* After the rule's keys: the regex, the required keys, derived defaults, the numbers and a
 * unique name. */
static int cfg_rule_finish(rl_schema_ctx *ctx, void *sec)
{
    const cfg_loader *ld = ctx->ld;
    const config_setting_t *g = ctx->group;
    const config_setting_t *limit = config_setting_get_member(g, "limit");
    const config_setting_t *burst = config_setting_get_member(g, "burst");
    const config_setting_t *cost = config_setting_get_member(g, "cost");
    const config_setting_t *regex = config_setting_get_member(g, "path_regex");
    rl_config *cfg = ctx->cfg;
    rl_rule *rule = sec;
    char q[RL_QUOTE_SIZE], why[512];

    if (regex != NULL && cfg_rule_path_regex(ld, regex, rule) != 0)
        return -1;
    if (rule->name[0] == '\0')
        return rl_cfg_fail(ld, g, "missing required key \"name\"");
    if (limit == NULL)
        return rl_cfg_fail(ld, g, "missing required key \"limit\"");
    if (burst == NULL)
        rule->burst = rule->count;
    if (rule->path_prefix == NULL && rule->path == NULL && rule->path_regex == NULL &&
        rl_cfg_set_string(ld, "/", 0, &rule->path_prefix) != 0)
        return -1;
    /* The same check overrides go through (rule_check.c). */
    switch (rl_rule_check_numbers(rule, why, sizeof why)) {
    case RL_CHECK_OK: break;
    case RL_CHECK_BURST: return rl_cfg_fail(ld, burst != NULL ? burst : limit, "%s", why);
    case RL_CHECK_COST: return rl_cfg_fail(ld, cost != NULL ? cost : limit, "%s", why);
    default: return rl_cfg_fail(ld, limit, "%s", why);
    }
    for (size_t i = 0; i < ctx->index; i++)
        if (strcmp(cfg->rules[i].name, rule->name) == 0)
            return rl_cfg_fail(ld, config_setting_get_member(g, "name"),
                               "duplicate name %s: rules[%zu] at line %d has it already",
                               rl_quote(q, rule->name, strlen(rule->name)), i, cfg->rules[i].line);
    rl_rule_derive(rule);
    return 0;
}

static const cfg_custom cfg_rule_name_impl = {cfg_rule_name, NULL};
static const cfg_custom cfg_rule_limit_impl = {cfg_rule_limit, cfg_rule_limit_text};
static const cfg_custom cfg_rule_regex_impl = {cfg_rule_regex_later, NULL};
static const cfg_custom cfg_rule_methods_impl = {cfg_rule_methods, NULL};
static const cfg_custom cfg_rule_hosts_impl = {cfg_rule_hosts, NULL};
static const cfg_custom cfg_rule_key_impl = {cfg_rule_key, NULL};

/* The choice keys: a CHOICE row stores an int. */
_Static_assert(sizeof(rl_algo) == sizeof(int) && sizeof(rl_missing_key) == sizeof(int) &&
                   sizeof(rl_redis_down) == sizeof(int),
               "a CHOICE field is an int");
static const rl_setting_choice cfg_rule_algorithms[] = {
    {"gcra", RL_ALGO_GCRA},
    {"fixed_window", RL_ALGO_FIXED_WINDOW},
    {"sliding_window", RL_ALGO_SLIDING_WINDOW},
    {"sliding_log", RL_ALGO_SLIDING_LOG},
    {NULL, 0},
};
static const rl_setting_choice cfg_rule_missing_policies[] = {
    {"skip", RL_MISSING_SKIP},
    {"refuse", RL_MISSING_REFUSE},
    {"shared", RL_MISSING_SHARED},
    {NULL, 0},
};
static const rl_setting_choice cfg_rule_redis_down[] = {
    {"shm", RL_REDIS_DOWN_SHM},
    {"open", RL_REDIS_DOWN_OPEN},
    {"closed", RL_REDIS_DOWN_CLOSED},
    {NULL, 0},
};

#define RULE(f) offsetof(rl_rule, f)
static const rl_setting cfg_rule_rows[] = {
    {.key = "name",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_name_impl,
     .type_doc = "string",
     .flags = RL_SETTING_REQUIRED,
     .doc = "the rule's unique name"},
    {.key = "path",
     .type = RL_SETTING_STRING,
     .offset = RULE(path),
     .canonical = "path",
     .flags = RL_SETTING_DERIVED,
     .def = "—",
     .doc = "the canonical path equals this"},
    {.key = "path_prefix",
     .type = RL_SETTING_STRING,
     .offset = RULE(path_prefix),
     .canonical = "path prefix",
     .flags = RL_SETTING_DERIVED,
     .def = "\"/\" when no path/path_regex is given",
     .doc = "the canonical path starts so"},
    {.key = "path_case_insensitive",
     .type = RL_SETTING_BOOL,
     .offset = RULE(path_nocase),
     .def = "false",
     .doc = "path matching ignores ASCII case"},
    {.key = "path_regex",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_regex_impl,
     .type_doc = "string",
     .def = "—",
     .doc = "the canonical path matches this PCRE2 regex"},
    {.key = "methods",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_methods_impl,
     .type_doc = "list of strings",
     .def = "any",
     .doc = "the method is one of these"},
    {.key = "hosts",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_hosts_impl,
     .type_doc = "list of strings",
     .def = "any",
     .doc = "the Host is one of these"},
    {.key = "key",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_key_impl,
     .type_doc = "string or list",
     .def = "\"client\"",
     .doc = "what the rule counts by"},
    {.key = "on_missing_key",
     .type = RL_SETTING_CHOICE,
     .offset = RULE(on_missing_key),
     .choices = cfg_rule_missing_policies,
     .noun = "policy",
     .def = "skip",
     .doc = "what a request without the key gets"},
    RL_SETTING_INT_ROW("missing_key_status", RULE(missing_key_status), 400, 599, "400",
                       "status of a missing-key refusal"),
    RL_SETTING_INT_ROW("status", RULE(status), 400, 599, "429", "status of a refusal by this rule"),
    {.key = "body",
     .type = RL_SETTING_STRING,
     .offset = RULE(body),
     .check = cfg_rule_body,
     .flags = RL_SETTING_DERIVED,
     .def = "\"Too Many Requests: retry in N s\\n\"",
     .doc = "body of a refusal by this rule"},
    {.key = "dry_run",
     .type = RL_SETTING_BOOL,
     .offset = RULE(dry_run),
     .def = "false",
     .doc = "decide and report, never refuse"},
    {.key = "cost",
     .type = RL_SETTING_INT64,
     .offset = RULE(cost),
     .min = 1,
     .max = RL_COUNT_MAX,
     .def = "1",
     .range_doc = "1..BURST",
     .doc = "units each matching request uses"},
    {.key = "limit",
     .type = RL_SETTING_CUSTOM,
     .impl = &cfg_rule_limit_impl,
     .type_doc = "string",
     .flags = RL_SETTING_REQUIRED,
     .doc = "COUNT/PERIOD"},
    {.key = "burst",
     .type = RL_SETTING_INT64,
     .offset = RULE(burst),
     .min = 1,
     .max = RL_COUNT_MAX,
     .flags = RL_SETTING_DERIVED,
     .def = "COUNT",
     .doc = "GCRA: requests admitted at once"},
    {.key = "algorithm",
     .type = RL_SETTING_CHOICE,
     .offset = RULE(algo),
     .choices = cfg_rule_algorithms,
     .noun = "algorithm",
     .def = "gcra",
     .doc = "how the limit is counted"},
    {.key = "on_redis_down",
     .type = RL_SETTING_CHOICE,
     .offset = RULE(on_redis_down),
     .choices = cfg_rule_redis_down,
     .def = "shm",
     .doc = "what the rule does while Redis cannot"},
};

const rl_section rl_cfg_rule_section = {"rules", cfg_rule_rows,
                                        sizeof cfg_rule_rows / sizeof cfg_rule_rows[0],
                                        sizeof(rl_rule), cfg_rule_finish};

static int cfg_load_rule(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg)
{
    rl_rule *rule = &cfg->rules[cfg->nrules];
    rl_schema_ctx ctx = {.ld = ld, .sec = &rl_cfg_rule_section, .cfg = cfg, .index = cfg->nrules};

    if (rl_cfg_group(ld, g) != 0)
        return -1;
    rule->line = (int)config_setting_source_line(g);
    rule->nkey = 1; /* key = "client" */
    cfg->nrules++;  /* from here on rl_config_free() frees what the rule holds */
    if (rl_schema_defaults(ld, &rl_cfg_rule_section, rule) != 0)
        return -1;
    return rl_schema_read(&ctx, g, rule);
}

int rl_cfg_load_rules(const cfg_loader *ld, const config_setting_t *list, rl_config *cfg)
{
    int n;

    if (!config_setting_is_list(list) && !config_setting_is_array(list))
        return rl_cfg_wrong_type(ld, list, "a list of groups");
    n = config_setting_length(list);
    if (n == 0)
        return rl_cfg_fail(ld, list, "no rules: at least one is required");
    if (n > RL_MAX_RULES)
        return rl_cfg_fail(ld, list, "%d rules is above the maximum %d", n, RL_MAX_RULES);
    cfg->rules = calloc((size_t)n, sizeof *cfg->rules);
    if (cfg->rules == NULL)
        return rl_cfg_oom(ld);
    for (int i = 0; i < n; i++)
        if (cfg_load_rule(ld, config_setting_get_elem(list, (unsigned)i), cfg) != 0)
            return -1;
    return 0;
}
