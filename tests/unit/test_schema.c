/* test_schema.c -- the MANUAL's configuration key table against the schema's rows
 *
 * Every row of the core's sections (rl_config_schema) and of the filter's (settings_sections)
 * must be documented in MANUAL.md's key table ("| `section.key` | type | default | what |",
 * rules' keys as `rules[].key`) with its type, its default ("unset" when it has none) and,
 * for integers and lists, its bounds; its environment variable, if any, in the environment
 * table; and every key the table documents must be a row. RL_TEST_DATA/../MANUAL.md is read
 * (the unit tests run from the tree).
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../filter/settings.h"
#include "config_types.h"
#include "config_where.h"
#include "leakcheck.h"
#include "ratelimit.h"
#include "ratelimit_schema.h"

#define CELL_MAX 1024
#define DOC_MAX 128

typedef struct doc_row {
    char key[128];
    char type[CELL_MAX], def[CELL_MAX], what[CELL_MAX];
    int used;
} doc_row;

static doc_row docs[DOC_MAX];
static size_t ndocs;
static char *manual;

/* The cell's text without backticks and surrounding blanks. */
static void cell_copy(char *dst, const char *src, size_t len)
{
    size_t n = 0;

    while (len > 0 && (*src == ' '))
        src++, len--;
    while (len > 0 && src[len - 1] == ' ')
        len--;
    for (size_t i = 0; i < len && n + 1 < CELL_MAX; i++)
        if (src[i] != '`')
            dst[n++] = src[i];
    dst[n] = '\0';
}

/* The key table: rows of section 4 whose first cell is a dotted key (or `rules`). */
static void read_manual(void)
{
    const char *data = getenv("RL_TEST_DATA");
    char path[512];
    FILE *f;
    long size;

    snprintf(path, sizeof path, "%s/../../MANUAL.md", data != NULL ? data : "tests/data");
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    manual = calloc(1, (size_t)size + 1);
    cr_assert_not_null(manual);
    cr_assert_eq(fread(manual, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    const char *start = strstr(manual, "\n## 4. Configuration");
    const char *end = start != NULL ? strstr(start, "\n## 5.") : NULL;
    cr_assert(start != NULL && end != NULL, "MANUAL.md has no section 4");
    for (const char *line = start; line != NULL && line < end; line = strchr(line + 1, '\n')) {
        const char *l = line + 1, *cells[5];
        size_t ncell = 0;
        if (strncmp(l, "| `", 3) != 0)
            continue;
        for (const char *p = l; *p != '\n' && *p != '\0' && ncell < 5; p++)
            if (*p == '|')
                cells[ncell++] = p;
        if (ncell != 5)
            continue;
        doc_row *d = &docs[ndocs];
        char key[CELL_MAX];
        cell_copy(key, cells[0] + 1, (size_t)(cells[1] - cells[0] - 1));
        if (strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.[]") != strlen(key) ||
            (strchr(key, '.') == NULL && strcmp(key, "rules") != 0))
            continue;
        cr_assert_lt(ndocs, DOC_MAX);
        snprintf(d->key, sizeof d->key, "%s", key);
        cell_copy(d->type, cells[1] + 1, (size_t)(cells[2] - cells[1] - 1));
        cell_copy(d->def, cells[2] + 1, (size_t)(cells[3] - cells[2] - 1));
        cell_copy(d->what, cells[3] + 1, (size_t)(cells[4] - cells[3] - 1));
        ndocs++;
    }
    cr_assert_gt(ndocs, 40, "the key table was not found (%zu rows)", ndocs);
}

static void fini(void)
{
    free(manual);
    rl_test_leak_check();
}

TestSuite(schema, .init = read_manual, .fini = fini);

static const char *type_doc(const rl_setting *r)
{
    if (r->type_doc != NULL)
        return r->type_doc;
    switch (r->type) {
    case RL_SETTING_BOOL: return "boolean";
    case RL_SETTING_INT:
    case RL_SETTING_INT64: return "integer";
    case RL_SETTING_CIDRS: return "list of address blocks";
    case RL_SETTING_LIST: return "list of strings";
    default: return "string";
    }
}

/* One row against its documentation; returns the number of mismatches (each reported). */
static int check_row(const rl_section *sec, const rl_setting *r)
{
    char key[128], want[CELL_MAX];
    doc_row *d = NULL;
    int bad = 0;

    snprintf(key, sizeof key, strcmp(sec->name, "rules") == 0 ? "%s[].%s" : "%s.%s", sec->name,
             r->key);
    for (size_t i = 0; i < ndocs && d == NULL; i++)
        if (strcmp(docs[i].key, key) == 0)
            d = &docs[i];
    if (d == NULL) {
        cr_log_error("%s: not in the MANUAL's key table", key);
        return 1;
    }
    d->used = 1;
    if (strcmp(d->type, type_doc(r)) != 0) {
        cr_log_error("%s: type: MANUAL says \"%s\", the schema \"%s\"", key, d->type, type_doc(r));
        bad++;
    }
    if (r->flags & RL_SETTING_REQUIRED)
        snprintf(want, sizeof want, "required");
    else if (r->def == NULL) /* no default: the key is unset unless given */
        snprintf(want, sizeof want, "unset");
    else if ((r->type == RL_SETTING_STRING || r->type == RL_SETTING_CHOICE) &&
             !(r->flags & RL_SETTING_DERIVED))
        snprintf(want, sizeof want, "\"%s\"", r->def);
    else
        snprintf(want, sizeof want, "%s", r->def);
    if ((r->type == RL_SETTING_INT || r->type == RL_SETTING_INT64 || r->type == RL_SETTING_BOOL) &&
                !(r->flags & RL_SETTING_DERIVED)
            ? strncmp(d->def, want, strlen(want)) != 0
            : strstr(d->def, want) == NULL) {
        cr_log_error("%s: default: MANUAL says \"%s\", the schema \"%s\"", key, d->def, want);
        bad++;
    }
    if (r->type == RL_SETTING_INT || r->type == RL_SETTING_INT64 || r->type == RL_SETTING_LIST) {
        if (r->range_doc != NULL)
            snprintf(want, sizeof want, "%s", r->range_doc);
        else
            snprintf(want, sizeof want, "%lld..%lld", r->min, r->max);
        if (strstr(d->what, want) == NULL) {
            cr_log_error("%s: bounds %s not in the MANUAL's \"%s\"", key, want, d->what);
            bad++;
        }
    }
    for (const rl_setting_choice *c = r->type == RL_SETTING_CHOICE ? r->choices : NULL;
         c != NULL && c->name != NULL; c++) {
        snprintf(want, sizeof want, "\"%s\"", c->name);
        if (strstr(d->what, want) == NULL) {
            cr_log_error("%s: choice %s not in the MANUAL's \"%s\"", key, want, d->what);
            bad++;
        }
    }
    if (r->env != NULL) {
        char env[256];
        snprintf(env, sizeof env, "| `%s` | `%s` |", r->env, key);
        if (strstr(manual, env) == NULL) {
            cr_log_error("%s: its variable %s is not in the MANUAL's environment table", key,
                         r->env);
            bad++;
        }
    }
    return bad;
}

static int check_sections(const rl_section *const *secs, size_t n)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < secs[i]->nsettings; k++)
            bad += check_row(secs[i], &secs[i]->settings[k]);
    return bad;
}

Test(schema, every_row_is_documented_and_every_documented_key_is_a_row)
{
    size_t ncore, nfilter;
    const rl_section *const *core = rl_config_schema(&ncore);
    const rl_section *const *filter = settings_sections(&nfilter);
    int bad = check_sections(core, ncore) + check_sections(filter, nfilter);

    for (size_t i = 0; i < ndocs; i++)
        if (!docs[i].used && strcmp(docs[i].key, "rules") != 0) {
            cr_log_error("%s: documented, but no section has this key", docs[i].key);
            bad++;
        }
    cr_assert_eq(bad, 0, "%d mismatch(es) between MANUAL.md and the schema (see above)", bad);
}

/* A file with one rule and nothing else, loaded as the program does (settings_load) or as
 * the library alone does (rl_config_load). */
static rl_config *load_minimal(int program)
{
    char path[64];
    rl_error err;

    snprintf(path, sizeof path, "/tmp/rl-schema-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("rules = ( { name = \"a\"; limit = \"1/s\"; } );\n", f);
    fclose(f);
    rl_config *cfg = program ? settings_load(path, &err) : rl_config_load(path, &err);
    unlink(path);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

/* The loader refuses what the rows do not know, and a row's default is what loading gives. */
Test(schema, defaults_come_from_the_rows)
{
    rl_config *cfg = load_minimal(1);
    cr_expect_eq(settings_get_proxy(cfg)->timeout_ms, 30000);
    cr_expect_null(settings_get_proxy(cfg)->backend);
    cr_expect_eq(settings_get_fastcgi(cfg)->read_timeout_ms, 5000);
    cr_expect_eq(settings_get_fastcgi(cfg)->idle_timeout_ms, 30000);
    cr_expect_eq(settings_get_fastcgi(cfg)->max_connections, 256);
    cr_expect_eq(settings_get_headers(cfg)->x_ratelimit, 1);
    cr_expect_eq(settings_get_admin(cfg)->nallow, 2);
    cr_expect_str_eq(settings_get_admin(cfg)->metrics_path, "/metrics");
    cr_expect_eq(rl_config_rule(cfg, 0)->status, 429);
    cr_expect_eq(rl_config_rule(cfg, 0)->cost, 1);
    rl_config_free(cfg);
}

/* An override goes through the key's row: bounds, type and the origin in the message. */
Test(schema, overrides_use_the_rows)
{
    rl_config *cfg = load_minimal(0);
    rl_error err;

    rl_override ov = {.key = "proxy.timeout_ms", .value = "5", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "no proxy section in the core");
    cr_expect_str_eq(err.text, "test: unknown key proxy.timeout_ms");
    ov = (rl_override){.key = "fastcgi.max_connections", .value = "5", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "no fastcgi section in the core");
    cr_expect_str_eq(err.text, "test: unknown key fastcgi.max_connections");
    ov = (rl_override){.key = "redis.hosts", .value = "10001", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"10001\": expected an integer in 1..10000");
    ov = (rl_override){.key = "rules[a].status", .value = "503", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(rl_config_rule(cfg, 0)->status, 503);
    ov = (rl_override){.key = "rules[b].status", .value = "503", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: no rule named \"b\"");
    /* The rule's numbers go through the file's check; a refused number is put back. */
    ov = (rl_override){.key = "rules[a].cost", .value = "2", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"2\": cost 2 is above the rule's burst 1: no "
                               "request could pass");
    cr_expect_eq(rl_config_rule(cfg, 0)->cost, 1);
    /* A path is checked as the file's is, and the rule's derived length follows it. */
    ov = (rl_override){.key = "rules[a].path_prefix", .value = "/x//y", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect(strstr(err.text, "no request path has this form") != NULL, "%s", err.text);
    ov = (rl_override){.key = "rules[a].path_prefix", .value = "/api", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(rl_config_rule(cfg, 0)->path_prefix_len, 4);
    ov = (rl_override){.key = "rules[*].limit", .value = "0/s", .origin = "test", .shown = "0"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect(strncmp(err.text, "test: invalid value \"0\": ", 25) == 0, "%s", err.text);
    rl_config_free(cfg);
}

/* A CHOICE row: its names and values are one table; a wrong name's message lists them, from
 * the file (test_config's bad cases) and from an override alike. */
Test(schema, choices_come_from_one_table)
{
    rl_config *cfg = load_minimal(0);
    rl_error err;

    rl_override ov = {.key = "rules[a].on_redis_down", .value = "later", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text,
                     "test: invalid value \"later\": expected \"shm\", \"open\" or \"closed\"");
    cr_expect_eq(rl_config_rule(cfg, 0)->on_redis_down, RL_REDIS_DOWN_SHM);
    ov = (rl_override){.key = "rules[a].on_redis_down", .value = "closed", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(rl_config_rule(cfg, 0)->on_redis_down, RL_REDIS_DOWN_CLOSED);
    ov = (rl_override){.key = "rules[*].algorithm", .value = "GCRA", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "names match in their own case");
    cr_expect_str_eq(err.text, "test: invalid value \"GCRA\": expected \"gcra\", "
                               "\"fixed_window\", \"sliding_window\" or \"sliding_log\"");
    ov = (rl_override){.key = "rules[*].algorithm", .value = "sliding_window", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(rl_config_rule(cfg, 0)->algo, RL_ALGO_SLIDING_WINDOW);
    /* identity.header matches in any case, as HTTP header names do. */
    ov = (rl_override){.key = "identity.header", .value = "Forwarded", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    ov = (rl_override){.key = "identity.header", .value = "x-real-ip", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"x-real-ip\": expected "
                               "\"x-forwarded-for\" or \"forwarded\"");
    rl_config_free(cfg);
}

/* A LIST row from text: its bounds and its entries' check. An override runs the section's
 * finish hook again (the cross-key checks, the derived defaults); refused, the section is
 * left as it was, a list's entries freed (the leak check). */
Test(schema, overrides_run_the_sections_finish_hook)
{
    rl_config *cfg = load_minimal(0);
    rl_error err;
    char many[65 * 20] = "";

    rl_override ov = {.key = "redis.cluster",
                      .value = "[\"127.0.0.1:7000\", \"127.0.0.1:7001\"]",
                      .origin = "test"};
    cr_assert_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_assert_eq(cfg->redis.ncluster, 2);
    cr_expect_str_eq(cfg->redis.cluster[1], "127.0.0.1:7001");
    rl_redis_where w;
    rl_config_redis_where(cfg, &w);
    cr_expect(w.ncluster == 2 && strcmp(w.cluster[0], "127.0.0.1:7000") == 0,
              "the accessor shows the seeds");
    cr_expect(w.nsentinels == 0 && w.sentinels == NULL && w.master_name == NULL);
    ov = (rl_override){.key = "redis.cluster", .value = "127.0.0.1:7000 x", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"127.0.0.1:7000 x\": invalid cluster node "
                               "\"x\": must be \"HOST:PORT\"");
    ov = (rl_override){.key = "redis.cluster", .value = "[]", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"[]\": expected 1..64 entries");
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "127.0.0.1:%d,", 7000 + i);
    ov = (rl_override){.key = "redis.cluster", .value = many, .origin = "test", .shown = "65"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"65\": more than 64 entries");
    cr_expect_eq(cfg->redis.ncluster, 2, "a refused list leaves the old one");
    cr_expect_str_eq(cfg->redis.cluster[0], "127.0.0.1:7000");

    /* The finish hook: what the file's cross-key checks refuse, an override cannot set. */
    ov = (rl_override){.key = "redis.db", .value = "3", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"3\": a cluster has only db 0 (db is 3)");
    cr_expect_eq(cfg->redis.db, 0, "a refused override is put back");
    ov = (rl_override){.key = "redis.sentinels", .value = "127.0.0.1:26379", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"127.0.0.1:26379\": sentinels and cluster "
                               "exclude each other");
    cr_expect_null(cfg->redis.sentinels);
    cr_expect_eq(cfg->redis.nsentinels, 0);
    ov = (rl_override){.key = "redis.host", .value = "10.0.0.1", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"10.0.0.1\": cluster and host exclude each "
                               "other");
    cr_expect_str_eq(cfg->redis.host, "127.0.0.1");
    /* Only with sentinels may master_name be set: refused, and not counted as given. */
    ov = (rl_override){.key = "redis.master_name", .value = "m", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"m\": master_name needs sentinels");
    cr_expect_null(cfg->redis.master_name);

    /* A derived default follows the key it derives from, until it is given itself. */
    ov = (rl_override){.key = "redis.breaker_open_ms", .value = "5000", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(cfg->redis.breaker_open_max_ms, 5000);
    ov = (rl_override){.key = "redis.breaker_open_max_ms", .value = "2000", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1);
    cr_expect_str_eq(err.text, "test: invalid value \"2000\": 2000 is below breaker_open_ms "
                               "(5000)");
    cr_expect_eq(cfg->redis.breaker_open_max_ms, 5000);
    ov = (rl_override){.key = "redis.breaker_open_max_ms", .value = "8000", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    ov = (rl_override){.key = "redis.breaker_open_ms", .value = "9000", .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "breaker_open_max_ms is given now");
    cr_expect_eq(cfg->redis.breaker_open_ms, 5000);
    rl_config_free(cfg);
}

/* A list of address blocks from an override is bounded as the file's is (CFG_LIST_MAX
 * entries), and an entry too long for any address block is refused, not cut short: a refused
 * value leaves the list as it was. */
Test(schema, overridden_address_blocks_have_the_files_bounds)
{
    rl_config *cfg = load_minimal(0);
    size_t size = 1025 * 16 + 3;
    char *v = malloc(size), *p = v;
    rl_error err;

    cr_assert_not_null(v);
    *p++ = '[';
    for (int i = 0; i < 1025; i++)
        p += sprintf(p, "%s\"10.%d.%d.0/24\"", i > 0 ? "," : "", i / 256, i % 256);
    *p++ = ']';
    *p = '\0';
    rl_override ov = {.key = "access.allow", .value = v, .origin = "test", .shown = "1025"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "1025 blocks accepted");
    cr_expect_str_eq(err.text, "test: invalid value \"1025\": more than 1024 entries");
    cr_expect_eq(cfg->access.nallow, 0);
    p = strrchr(v, ',');
    p[0] = ']';
    p[1] = '\0';
    cr_expect_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_eq(cfg->access.nallow, 1024);
    free(v);

    ov = (rl_override){.key = "access.deny",
                       .value = "1.2.3.4/32 ::ffff:1.2.3.4/00000000000000000000000000000000000000000000000128",
                       .origin = "test"};
    cr_expect_eq(rl_config_override(cfg, &ov, &err), -1, "an over-long entry accepted");
    cr_expect(strstr(err.text, "longer than") != NULL, "%s", err.text);
    cr_expect_eq(cfg->access.ndeny, 0);
    rl_config_free(cfg);
}

/* The forwarded header a program must pass on: none until a proxy is trusted, then the one
 * identity.header names. */
Test(schema, forward_header_follows_the_identity_rows)
{
    rl_config *cfg = load_minimal(0);
    rl_error err;

    cr_expect_null(rl_config_forward_header(cfg));
    rl_override ov = {.key = "identity.trusted_proxies", .value = "10.0.0.0/8", .origin = "test"};
    cr_assert_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_str_eq(rl_config_forward_header(cfg), "x-forwarded-for");
    ov = (rl_override){.key = "identity.header", .value = "Forwarded", .origin = "test"};
    cr_assert_eq(rl_config_override(cfg, &ov, &err), 0, "%s", err.text);
    cr_expect_str_eq(rl_config_forward_header(cfg), "forwarded");
    rl_config_free(cfg);
}

/* The library never reads the environment; the program maps it onto the rows (env.c). */
Test(schema, only_the_program_reads_the_environment)
{
    rl_redis_where w;

    setenv("RATE_LIMIT_REDIS_PORT", "7000", 1);
    rl_config *cfg = load_minimal(0);
    rl_config_redis_where(cfg, &w);
    cr_expect_eq(w.port, 6379, "rl_config_load applied RATE_LIMIT_REDIS_PORT");
    rl_config_free(cfg);

    cfg = load_minimal(1);
    rl_config_redis_where(cfg, &w);
    cr_expect_eq(w.port, 7000, "settings_load did not apply RATE_LIMIT_REDIS_PORT");
    rl_config_free(cfg);
}
