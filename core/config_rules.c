/* config_rules.c -- the rules list of the configuration
 *
 * Each rule group becomes an rl_rule: name, match (path, path_prefix, path_regex compiled
 * once, methods, hosts), limit and burst, algorithm, key parts, missing-key policy, refusal
 * status and body, dry run, cost and on_redis_down, each validated here once so the request
 * path does no parsing.
 */
#include "fmacros.h"

#include "config_int.h"
#include "rule.h"
#include "rule_check.h"
#include "http.h"

/* ---- rules --------------------------------------------------------------------------------- */

static int cfg_rule_name(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
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

int rl_cfg_canonical_path(const cfg_loader *ld, const config_setting_t *s, const char *what,
                          const char *v)
{
    char canon[RL_PATH_MAX];
    char q[RL_QUOTE_SIZE], q2[RL_QUOTE_SIZE];
    rl_path_status st;

    if (v[0] != '/')
        return rl_cfg_fail(ld, s, "invalid %s %s: must start with '/'", what,
                           rl_quote(q, v, strlen(v)));
    for (const char *p = v; (p = strchr(p, '%')) != NULL; p++)
        if (isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]))
            return rl_cfg_fail(ld, s,
                               "invalid %s %s: requests are matched on their decoded path, so "
                               "write the byte that %.3s stands for",
                               what, rl_quote(q, v, strlen(v)), p);
    st = rl_path_canon(v, RL_PATH_DECODED, canon, NULL);
    if (st != RL_PATH_OK)
        return rl_cfg_fail(ld, s, "invalid %s %s: %s", what, rl_quote(q, v, strlen(v)),
                           rl_path_strerror(st));
    if (strcmp(canon, v) != 0)
        return rl_cfg_fail(ld, s,
                           "invalid %s %s: no request path has this form (repeated '/', '.' or "
                           "'..' segments are removed before matching); write %s",
                           what, rl_quote(q, v, strlen(v)), rl_quote(q2, canon, strlen(canon)));
    return 0;
}

static int cfg_rule_path_prefix(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0 || rl_cfg_canonical_path(ld, s, "path prefix", v) != 0)
        return -1;
    return rl_cfg_set_string(ld, v, 0, &rule->path_prefix);
}

static int cfg_rule_limit(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    rl_error why;
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (rl_parse_limit(v, &rule->count, &rule->period_ms, &why) != 0)
        return rl_cfg_fail(ld, s, "%s", why.text);
    return rl_cfg_set_string(ld, v, 0, &rule->limit_text);
}

static int cfg_rule_algorithm(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
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
        return rl_cfg_fail(ld, s,
                           "unknown algorithm %s: expected \"gcra\", \"fixed_window\", "
                           "\"sliding_window\" or \"sliding_log\"",
                           rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_rule_on_redis_down(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (rl_parse_redis_down(v, &rule->on_redis_down) != 0)
        return rl_cfg_fail(ld, s, "unknown value %s: expected \"shm\", \"open\" or \"closed\"",
                           rl_quote(q, v, strlen(v)));
    return 0;
}

int rl_cfg_has_control(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 1;
    return 0;
}

static int cfg_rule_path(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0 || rl_cfg_canonical_path(ld, s, "path", v) != 0)
        return -1;
    return rl_cfg_set_string(ld, v, 0, &rule->path);
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

static int cfg_rule_missing(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    char q[RL_QUOTE_SIZE];
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (strcmp(v, "skip") == 0)
        rule->on_missing_key = RL_MISSING_SKIP;
    else if (strcmp(v, "refuse") == 0)
        rule->on_missing_key = RL_MISSING_REFUSE;
    else if (strcmp(v, "shared") == 0)
        rule->on_missing_key = RL_MISSING_SHARED;
    else
        return rl_cfg_fail(ld, s, "unknown policy %s: expected \"skip\", \"refuse\" or \"shared\"",
                           rl_quote(q, v, strlen(v)));
    return 0;
}

static int cfg_rule_body(const cfg_loader *ld, const config_setting_t *s, rl_rule *rule)
{
    const char *v;

    if (rl_cfg_string(ld, s, &v) != 0)
        return -1;
    if (strlen(v) > CFG_BODY_MAX)
        return rl_cfg_fail(ld, s, "body of %zu bytes is above the maximum %d", strlen(v),
                           CFG_BODY_MAX);
    return rl_cfg_set_string(ld, v, 0, &rule->body);
}

static int cfg_load_rule(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg)
{
    rl_rule *rule = &cfg->rules[cfg->nrules];
    const config_setting_t *limit = NULL, *burst = NULL, *cost = NULL, *regex = NULL;
    char q[RL_QUOTE_SIZE], why[512];

    if (rl_cfg_group(ld, g) != 0)
        return -1;
    rule->line = (int)config_setting_source_line(g);
    rule->algo = RL_ALGO_GCRA;
    rule->status = 429;
    rule->missing_key_status = 400;
    rule->cost = 1;
    rule->nkey = 1; /* key = "client" */
    cfg->nrules++;  /* from here on rl_config_free() frees what the rule holds */

    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        int rc;

        if (rl_cfg_is(s, "name"))
            rc = cfg_rule_name(ld, s, rule);
        else if (rl_cfg_is(s, "path_prefix"))
            rc = cfg_rule_path_prefix(ld, s, rule);
        else if (rl_cfg_is(s, "limit")) {
            rc = cfg_rule_limit(ld, s, rule);
            limit = s;
        } else if (rl_cfg_is(s, "burst")) {
            long long v = 0;
            rc = rl_cfg_int(ld, s, 1, RL_COUNT_MAX, &v);
            rule->burst = v;
            burst = s;
        } else if (rl_cfg_is(s, "algorithm"))
            rc = cfg_rule_algorithm(ld, s, rule);
        else if (rl_cfg_is(s, "on_redis_down"))
            rc = cfg_rule_on_redis_down(ld, s, rule);
        else if (rl_cfg_is(s, "path"))
            rc = cfg_rule_path(ld, s, rule);
        else if (rl_cfg_is(s, "path_regex")) {
            rc = regex != NULL ? rl_cfg_fail(ld, s, "path_regex given twice") : 0;
            regex = s;
        } else if (rl_cfg_is(s, "path_case_insensitive"))
            rc = rl_cfg_bool(ld, s, &rule->path_nocase);
        else if (rl_cfg_is(s, "methods"))
            rc = cfg_rule_words(ld, s, 0, &rule->methods, &rule->nmethods);
        else if (rl_cfg_is(s, "hosts"))
            rc = cfg_rule_words(ld, s, 1, &rule->hosts, &rule->nhosts);
        else if (rl_cfg_is(s, "key"))
            rc = cfg_rule_key(ld, s, rule);
        else if (rl_cfg_is(s, "on_missing_key"))
            rc = cfg_rule_missing(ld, s, rule);
        else if (rl_cfg_is(s, "missing_key_status"))
            rc = rl_cfg_int32(ld, s, 400, 599, &rule->missing_key_status);
        else if (rl_cfg_is(s, "status"))
            rc = rl_cfg_int32(ld, s, 400, 599, &rule->status);
        else if (rl_cfg_is(s, "body"))
            rc = cfg_rule_body(ld, s, rule);
        else if (rl_cfg_is(s, "dry_run"))
            rc = rl_cfg_bool(ld, s, &rule->dry_run);
        else if (rl_cfg_is(s, "cost")) {
            long long v = 0;
            rc = rl_cfg_int(ld, s, 1, RL_COUNT_MAX, &v);
            rule->cost = v;
            cost = s;
        } else
            rc = rl_cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }

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
    /* The same check RATE_LIMIT_* overrides go through (rule_check.c). */
    switch (rl_rule_check_numbers(rule, why, sizeof why)) {
    case RL_CHECK_OK: break;
    case RL_CHECK_BURST: return rl_cfg_fail(ld, burst != NULL ? burst : limit, "%s", why);
    case RL_CHECK_COST: return rl_cfg_fail(ld, cost != NULL ? cost : limit, "%s", why);
    default: return rl_cfg_fail(ld, limit, "%s", why);
    }
    for (size_t i = 0; i + 1 < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, rule->name) == 0)
            return rl_cfg_fail(ld, config_setting_get_member(g, "name"),
                               "duplicate name %s: rules[%zu] at line %d has it already",
                               rl_quote(q, rule->name, strlen(rule->name)), i, cfg->rules[i].line);
    rl_rule_derive(rule);
    return 0;
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
