/* config.c -- read ratelimit.conf with libconfig into the typed structs of ratelimit.h
 *
 * The file is read into memory once, parsed by
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
 * Each group is read against its section's table of rows (schema.c): the core's own
 * (config_groups.c, config_rules.c) and a program's (rl_config_load_with). config*.c and
 * schema.c are the only files that include <libconfig.h>.
 */
#include "fmacros.h"

#include "config_int.h"

static char *cfg_read_file(const cfg_loader *ld, size_t *len)
{
    FILE *f = fopen(ld->path, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (f == NULL) {
        rl_cfg_fail_file(ld, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;

        if (cap - n < 4096) {
            char *bigger;
            cap = cap == 0 ? 8192 : cap * 2;
            if (cap > CFG_FILE_MAX + 8192) {
                rl_cfg_fail_file(ld, "cannot read: larger than %d bytes", CFG_FILE_MAX);
                goto fail;
            }
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                rl_cfg_oom(ld);
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
        rl_cfg_fail_file(ld, "cannot read: %s", strerror(errno));
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
static int cfg_key_headers(const cfg_loader *ld, const config_setting_t *root, const rl_config *cfg)
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
                    config_setting_get_elem(config_setting_get_member(root, "rules"), (unsigned)i);
                return rl_cfg_fail(ld, config_setting_get_member(g, "key"),
                                   "rules read more than %d different headers", RL_KEY_HEADERS_MAX);
            }
            seen[nseen++] = p->name;
        }
    }
    return 0;
}

/* The core's sections in MANUAL order, and where each one's struct lies in rl_config. */
static const rl_section *const cfg_core[] = {&rl_cfg_shm_section, &rl_cfg_redis_section,
                                             &rl_cfg_identity_section, &rl_cfg_access_section,
                                             &rl_cfg_rule_section};
#define CFG_NCORE (sizeof cfg_core / sizeof cfg_core[0])
#define CFG_NGROUPS (CFG_NCORE - 1) /* all but the rules, a list read by config_rules.c */

const rl_section *const *rl_config_schema(size_t *n)
{
    *n = CFG_NCORE;
    return cfg_core;
}

static void *cfg_core_base(rl_config *cfg, size_t i)
{
    void *bases[CFG_NGROUPS] = {&cfg->shm, &cfg->redis, &cfg->identity, &cfg->access};
    return bases[i];
}

_Static_assert(CFG_NGROUPS + 64 <= RL_CFG_GROUPS_MAX, "rl_config.given has a word per group");

/* Section i of every section (core groups first, then the program's): its table and struct. */
static const rl_section *cfg_section(const rl_config *cfg, size_t i)
{
    return i < CFG_NGROUPS ? cfg_core[i] : cfg->extra[i - CFG_NGROUPS];
}

static void *cfg_base(rl_config *cfg, size_t i)
{
    return i < CFG_NGROUPS ? cfg_core_base(cfg, i) : cfg->extra_data[i - CFG_NGROUPS];
}

size_t rl_cfg_ngroups(const rl_config *cfg)
{
    return CFG_NGROUPS + cfg->nextra;
}

const rl_section *rl_cfg_group_section(const rl_config *cfg, size_t k)
{
    return cfg_section(cfg, k);
}

void *rl_cfg_group_base(rl_config *cfg, size_t k)
{
    return cfg_base(cfg, k);
}

static int cfg_load_root(const cfg_loader *ld, const config_setting_t *root, rl_config *cfg)
{
    size_t nsec = CFG_NGROUPS + cfg->nextra;
    unsigned char read[CFG_NGROUPS + 64] = {0};
    int have_rules = 0;

    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        size_t k = 0;
        int rc;

        if (rl_cfg_is(s, "rules")) {
            rc = rl_cfg_load_rules(ld, s, cfg);
            have_rules = 1;
        } else {
            while (k < nsec && !rl_cfg_is(s, cfg_section(cfg, k)->name))
                k++;
            if (k == nsec)
                rc = rl_cfg_unknown_key(ld, s);
            else {
                rl_schema_ctx ctx = {
                    .ld = ld, .sec = cfg_section(cfg, k), .cfg = cfg, .given = &cfg->given[k]};
                rc = rl_schema_read(&ctx, s, cfg_base(cfg, k));
                read[k] = 1;
            }
        }
        if (rc != 0)
            return -1;
    }
    if (!have_rules)
        return rl_cfg_fail_file(ld, "missing required key \"rules\"");
    if (cfg_key_headers(ld, root, cfg) != 0)
        return -1;
    /* Sections the file leaves out still get their derived defaults. */
    for (size_t k = 0; k < nsec; k++) {
        rl_schema_ctx ctx = {
            .ld = ld, .sec = cfg_section(cfg, k), .cfg = cfg, .given = &cfg->given[k]};
        if (!read[k] && rl_schema_read(&ctx, NULL, cfg_base(cfg, k)) != 0)
            return -1;
    }
    return 0;
}

/* Every section's defaults, from its rows; the program's sections get their blocks here. */
static int cfg_defaults(const cfg_loader *ld, rl_config *cfg)
{
    if (cfg->nextra > 0) {
        cfg->extra_data = calloc(cfg->nextra, sizeof *cfg->extra_data);
        if (cfg->extra_data == NULL)
            return rl_cfg_oom(ld);
        for (size_t i = 0; i < cfg->nextra; i++)
            if ((cfg->extra_data[i] = calloc(1, cfg->extra[i]->size)) == NULL)
                return rl_cfg_oom(ld);
    }
    for (size_t k = 0; k < CFG_NGROUPS + cfg->nextra; k++) {
        const rl_section *sec = cfg_section(cfg, k);
        if (sec->nsettings > RL_CFG_ROWS_MAX)
            return rl_cfg_fail_file(ld, "section %s has %zu rows, above the maximum %d", sec->name,
                                    sec->nsettings, RL_CFG_ROWS_MAX);
        if (rl_schema_defaults(ld, sec, cfg_base(cfg, k)) != 0)
            return -1;
    }
    return 0;
}

rl_config *rl_config_load(const char *file, rl_error *err)
{
    return rl_config_load_with(file, NULL, 0, err);
}

rl_config *rl_config_load_with(const char *file, const rl_section *const *extra, size_t nextra,
                               rl_error *err)
{
    rl_error spare;
    cfg_loader ld = {.path = file != NULL ? file : "(null)", .err = err != NULL ? err : &spare};
    config_t lc;
    rl_config *cfg = NULL;
    char *text;
    const char *nul;

    ld.err->text[0] = '\0';
    if (file == NULL) {
        rl_cfg_fail_file(&ld, "cannot open: %s", strerror(EINVAL));
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

    if (nextra > 64) {
        rl_cfg_fail_file(&ld, "%zu program sections is above the maximum 64", nextra);
        goto fail;
    }
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL || (cfg->path = strdup(file)) == NULL) {
        rl_cfg_oom(&ld);
        goto fail;
    }
    cfg->extra = extra;
    cfg->nextra = nextra;
    if (cfg_defaults(&ld, cfg) != 0 || cfg_load_root(&ld, config_root_setting(&lc), cfg) != 0)
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
        pcre2_match_data_free(r->path_regex_match);
        pcre2_match_context_free(r->path_regex_mctx);
        pcre2_code_free(r->path_regex);
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
    free(cfg->rules);
    for (size_t k = 0; k < CFG_NGROUPS; k++)
        rl_schema_free(cfg_core[k], cfg_core_base(cfg, k));
    for (size_t k = 0; cfg->extra_data != NULL && k < cfg->nextra; k++) {
        rl_schema_free(cfg->extra[k], cfg->extra_data[k]);
        free(cfg->extra_data[k]);
    }
    free(cfg->extra_data);
    free(cfg->path);
    free(cfg);
}
