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
 * The groups are read by config_groups.c and config_rules.c with the typed readers of
 * config_value.c (config_int.h); config*.c are the only files that include <libconfig.h>.
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

static int cfg_load_root(const cfg_loader *ld, const config_setting_t *root, rl_config *cfg)
{
    int have_rules = 0;

    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        int rc;

        if (rl_cfg_is(s, "shm"))
            rc = rl_cfg_load_shm(ld, s, &cfg->shm);
        else if (rl_cfg_is(s, "redis"))
            rc = rl_cfg_load_redis(ld, s, &cfg->redis);
        else if (rl_cfg_is(s, "headers"))
            rc = rl_cfg_load_headers(ld, s, cfg);
        else if (rl_cfg_is(s, "identity"))
            rc = rl_cfg_load_identity(ld, s, &cfg->identity);
        else if (rl_cfg_is(s, "access"))
            rc = rl_cfg_load_access(ld, s, &cfg->access);
        else if (rl_cfg_is(s, "proxy"))
            rc = rl_cfg_load_proxy(ld, s, &cfg->proxy);
        else if (rl_cfg_is(s, "fastcgi"))
            rc = rl_cfg_load_fastcgi(ld, s, &cfg->fastcgi);
        else if (rl_cfg_is(s, "admin"))
            rc = rl_cfg_load_admin(ld, s, &cfg->admin);
        else if (rl_cfg_is(s, "rules")) {
            rc = rl_cfg_load_rules(ld, s, cfg);
            have_rules = 1;
        } else
            rc = rl_cfg_unknown_key(ld, s);
        if (rc != 0)
            return -1;
    }
    if (!have_rules)
        return rl_cfg_fail_file(ld, "missing required key \"rules\"");
    if (cfg_key_headers(ld, root, cfg) != 0)
        return -1;
    if (cfg->shm.name == NULL && rl_cfg_shm_default_name(ld, &cfg->shm) != 0)
        return -1;
    if (cfg->redis.host == NULL && rl_cfg_set_string(ld, "127.0.0.1", 0, &cfg->redis.host) != 0)
        return -1;
    if (cfg->redis.prefix == NULL && rl_cfg_set_string(ld, "rl:", 0, &cfg->redis.prefix) != 0)
        return -1;
    if (cfg->admin.health_path == NULL && rl_cfg_admin_defaults(ld, &cfg->admin, 0) != 0)
        return -1;
    return 0;
}

static void cfg_defaults(rl_config *cfg)
{
    cfg->shm.capacity = 100000;
    cfg->shm.mode = 0600; /* 0660 when shm.group is given (rl_cfg_load_shm) */
    cfg->redis.enabled = 0;
    cfg->redis.port = 6379;
    cfg->redis.db = 0;
    cfg->redis.connect_timeout_ms = 100;
    cfg->redis.command_timeout_ms = 50;
    cfg->redis.breaker_failures = 3;
    cfg->redis.breaker_open_ms = 250;
    cfg->redis.breaker_open_max_ms = 0; /* set after the group: max(1000, breaker_open_ms) */
    cfg->redis.hosts = 1;
    cfg->x_ratelimit_headers = 1;
    cfg->admin.enabled = 1;
    cfg->identity.header = RL_FORWARD_XFF;
    cfg->identity.ipv6_prefix = 64;
    cfg->proxy.connect_timeout_ms = 1000;
    cfg->proxy.timeout_ms = 30000;
    cfg->fastcgi.read_timeout_ms = 5000;
    cfg->fastcgi.idle_timeout_ms = 30000;
    cfg->fastcgi.max_connections = 256;
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

    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL || (cfg->path = strdup(file)) == NULL) {
        rl_cfg_oom(&ld);
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
    for (size_t i = 0; i < cfg->redis.ncluster; i++)
        free(cfg->redis.cluster[i]);
    free(cfg->redis.cluster);
    for (size_t i = 0; i < cfg->redis.nsentinels; i++)
        free(cfg->redis.sentinels[i]);
    free(cfg->redis.sentinels);
    free(cfg->redis.master_name);
    free(cfg->proxy.backend);
    free(cfg->admin.allow);
    free(cfg->admin.health_path);
    free(cfg->admin.stats_path);
    free(cfg->admin.test_path);
    free(cfg->admin.metrics_path);
    free(cfg->path);
    free(cfg);
}
