/* config_override.c -- one setting of a loaded config set from outside the file
 *
 * A program maps what it reads (environment variables: the rows' env names) onto keys and
 * hands each value here. The value goes through the key's row (schema.c): the same type and
 * bounds as the file's, then the section's finish hook again (the file's cross-key checks:
 * RATE_LIMIT_REDIS_DB on top of a redis.cluster file is refused as the file's db would be),
 * and a rule's numbers through the file's rule check. The core itself never reads the
 * environment. Messages name the origin and quote the value as the user
 * wrote it: `environment RATE_LIMIT_REDIS_PORT: invalid value "70000": expected an integer
 * in 1..65535`.
 */
#include "fmacros.h"

#include "config_int.h"
#include "rule.h"
#include "rule_check.h"

static int ov_fail(rl_error *err, const rl_override *ov, const char *why)
{
    const char *shown = ov->shown != NULL ? ov->shown : ov->value;
    char q[RL_QUOTE_SIZE];

    snprintf(err->text, sizeof err->text, "%s: invalid value %s: %s", ov->origin,
             rl_quote(q, shown, strlen(shown)), why);
    return -1;
}

/* One rule's key from text, then the rule's numbers through the file's check: a number the
 * check refuses is put back. The derived fields (lengths, key identity) follow. */
static int ov_rule(rl_schema_ctx *ctx, const rl_setting *row, const char *v, rl_rule *rule,
                   char *why, size_t size)
{
    int scalar = row->type == RL_SETTING_BOOL || row->type == RL_SETTING_INT ||
                 row->type == RL_SETTING_INT64 || row->type == RL_SETTING_CHOICE;
    size_t width = row->type == RL_SETTING_INT64 ? sizeof(int64_t) : sizeof(int);
    unsigned char old[sizeof(int64_t)];

    if (scalar)
        memcpy(old, (char *)rule + row->offset, width);
    if (rl_schema_set_text(ctx, row, v, rule, why, size) != 0)
        return -1;
    if (rl_rule_check_numbers(rule, why, size) != RL_CHECK_OK) {
        if (scalar)
            memcpy((char *)rule + row->offset, old, width);
        return -1;
    }
    rl_rule_derive(rule);
    return 0;
}

/* "rules[NAME].KEY" or "rules[*].KEY": every rule it names gets the value. */
static int ov_rules(rl_config *cfg, const rl_override *ov, rl_error *err)
{
    const char *open = ov->key + 5, *close = strchr(open, ']');
    rl_schema_ctx ctx = {.sec = &rl_cfg_rule_section, .cfg = cfg};
    const rl_setting *row;
    char why[RL_ERRSTR_MAX];
    size_t nlen, hits = 0;

    if (*open != '[' || close == NULL || close[1] != '.' ||
        (row = rl_schema_row(&rl_cfg_rule_section, close + 2)) == NULL) {
        snprintf(err->text, sizeof err->text, "%s: unknown key %s", ov->origin, ov->key);
        return -1;
    }
    open++;
    nlen = (size_t)(close - open);
    for (size_t i = 0; i < cfg->nrules; i++) {
        rl_rule *rule = &cfg->rules[i];
        if (!(nlen == 1 && *open == '*') &&
            !(strlen(rule->name) == nlen && memcmp(rule->name, open, nlen) == 0))
            continue;
        ctx.index = i;
        if (ov_rule(&ctx, row, ov->value, rule, why, sizeof why) != 0)
            return ov_fail(err, ov, why);
        hits++;
    }
    if (hits == 0) {
        snprintf(err->text, sizeof err->text, "%s: no rule named \"%.*s\"", ov->origin, (int)nlen,
                 open);
        return -1;
    }
    return 0;
}

/* The owned value of a row (STRING, CIDRS, LIST), or NULL: what an override replaces. */
static void **ov_owned(const rl_setting *row, void *base)
{
    if (row->type != RL_SETTING_STRING && row->type != RL_SETTING_CIDRS &&
        row->type != RL_SETTING_LIST)
        return NULL;
    return (void **)(void *)((char *)base + row->offset);
}

/* Frees a row's owned value as it was (the struct `old`, a copy of the section's). */
static void ov_free_value(const rl_setting *row, void *old)
{
    void **p = ov_owned(row, old);

    if (p == NULL)
        return;
    if (row->type == RL_SETTING_LIST) {
        char **list = *p;
        size_t n = *(size_t *)(void *)((char *)old + row->offset2);
        for (size_t i = 0; list != NULL && i < n; i++)
            free(list[i]);
    }
    free(*p);
}

/* One row of group k: the value through the row, then the section's finish hook on the whole
 * group, the row counted as given. Refused by either: the group is put back as it was (a copy
 * taken before; the hooks allocate nothing once loaded) and the new value freed. */
static int ov_group(rl_config *cfg, size_t k, const rl_setting *row, const rl_override *ov,
                    rl_error *err)
{
    const rl_section *sec = rl_cfg_group_section(cfg, k);
    void *base = rl_cfg_group_base(cfg, k);
    uint64_t given = cfg->given[k];
    char why[RL_ERRSTR_MAX] = "";
    void *old = malloc(sec->size);
    void **owned = ov_owned(row, base);
    rl_error scratch;
    cfg_loader ld = {.path = cfg->path, .err = &scratch};
    rl_schema_ctx ctx = {.ld = &ld,
                         .sec = sec,
                         .cfg = cfg,
                         .given = &cfg->given[k],
                         .why = why,
                         .whysize = sizeof why};
    int rc;

    if (old == NULL) {
        snprintf(err->text, sizeof err->text, "%s: out of memory", ov->origin);
        return -1;
    }
    memcpy(old, base, sec->size);
    scratch.text[0] = '\0';
    if (owned != NULL)
        *owned = NULL; /* the old value stays in `old`: the set must not free it */
    rc = rl_schema_set_text(&ctx, row, ov->value, base, why, sizeof why);
    if (rc == 0 && row - sec->settings < RL_CFG_ROWS_MAX)
        cfg->given[k] |= 1ULL << (row - sec->settings);
    if (rc == 0 && sec->finish != NULL && (rc = sec->finish(&ctx, base)) != 0 && why[0] == '\0')
        snprintf(why, sizeof why, "%s", scratch.text);
    if (rc != 0) {
        ov_free_value(row, base);
        memcpy(base, old, sec->size);
        cfg->given[k] = given;
    } else
        ov_free_value(row, old);
    free(old);
    return rc != 0 ? ov_fail(err, ov, why) : 0;
}

int rl_config_override(rl_config *cfg, const rl_override *ov, rl_error *err)
{
    const char *dot = strchr(ov->key, '.');
    size_t nlen;

    if (strncmp(ov->key, "rules[", 6) == 0)
        return ov_rules(cfg, ov, err);
    nlen = dot != NULL ? (size_t)(dot - ov->key) : 0;
    for (size_t k = 0; dot != NULL && k < rl_cfg_ngroups(cfg); k++) {
        const rl_section *sec = rl_cfg_group_section(cfg, k);
        const rl_setting *row;
        if (strlen(sec->name) != nlen || memcmp(sec->name, ov->key, nlen) != 0 ||
            (row = rl_schema_row(sec, dot + 1)) == NULL)
            continue;
        return ov_group(cfg, k, row, ov, err);
    }
    snprintf(err->text, sizeof err->text, "%s: unknown key %s", ov->origin, ov->key);
    return -1;
}
