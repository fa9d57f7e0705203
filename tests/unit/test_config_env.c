/* test_config_env.c -- RATE_LIMIT_* environment variables over a config file
 *
 * Criterion runs each test in its own process, so setenv() here never leaks into another.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leakcheck.h"
#include "../../filter/settings.h"
#include "config_types.h"
#include "ratelimit.h"

static char path[256];

static void fini(void)
{
    if (path[0] != '\0')
        unlink(path);
    rl_test_leak_check();
}

TestSuite(config_env, .fini = fini);

#define RULES                                                                                      \
    "rules = ( { name = \"api\"; path_prefix = \"/api\"; limit = \"5/s\"; },"                      \
    "          { name = \"global\"; limit = \"100/m\"; burst = 100; },"                            \
    "          { name = \"chat\"; path_prefix = \"/chat\"; limit = \"10/m\"; burst = 3; } );\n"

static void write_conf(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/rl-env-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static rl_config *load_ok(const char *text)
{
    rl_error err;
    write_conf(text);
    rl_config *cfg = settings_load(path, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

static void load_fails(const char *text, const char *want)
{
    rl_error err;
    write_conf(text);
    rl_config *cfg = settings_load(path, &err);
    cr_assert_null(cfg, "loaded, expected: %s", want);
    cr_assert_str_eq(err.text, want);
}

Test(config_env, nothing_set_changes_nothing)
{
    rl_config *cfg =
        load_ok("redis: { enabled = true; host = \"10.0.0.1\"; port = 7000; };\n" RULES);
    cr_assert_eq(cfg->redis.enabled, 1);
    cr_assert_str_eq(cfg->redis.host, "10.0.0.1");
    cr_assert_eq(cfg->redis.port, 7000);
    cr_assert_eq(cfg->rules[1].count, 100);
    cr_assert_eq(cfg->redis.breaker_failures, 3);
    cr_assert_eq(cfg->redis.breaker_open_ms, 250);
    cr_assert_eq(cfg->redis.breaker_open_max_ms, 1000);
    cr_assert_eq(cfg->redis.hosts, 1);
    rl_config_free(cfg);
}

Test(config_env, redis_connection_variables)
{
    setenv("RATE_LIMIT_USE_REDIS", "Yes", 1);
    setenv("RATE_LIMIT_REDIS_HOST", "192.0.2.9", 1);
    setenv("RATE_LIMIT_REDIS_PORT", "6380", 1);
    setenv("RATE_LIMIT_REDIS_DB", "4", 1);
    setenv("RATE_LIMIT_REDIS_PASSWORD", "from-env", 1);
    rl_config *cfg = load_ok("redis: { enabled = false; password = \"file\"; };\n" RULES);
    cr_assert_eq(cfg->redis.enabled, 1);
    cr_assert_str_eq(cfg->redis.host, "192.0.2.9");
    cr_assert_eq(cfg->redis.port, 6380);
    cr_assert_eq(cfg->redis.db, 4);
    cr_assert_str_eq(cfg->redis.password, "from-env");
    rl_config_free(cfg);

    setenv("RATE_LIMIT_USE_REDIS", "0", 1);
    setenv("RATE_LIMIT_REDIS_PASSWORD", "", 1);
    cfg = load_ok("redis: { enabled = true; password = \"file\"; };\n" RULES);
    cr_assert_eq(cfg->redis.enabled, 0);
    cr_assert_null(cfg->redis.password, "set but empty: no AUTH");
    rl_config_free(cfg);
}

Test(config_env, invalid_values_name_the_variable)
{
    setenv("RATE_LIMIT_USE_REDIS", "maybe", 1);
    load_fails(RULES, "environment RATE_LIMIT_USE_REDIS: invalid value \"maybe\": expected "
                      "true, false, 1, 0, yes or no");
    unsetenv("RATE_LIMIT_USE_REDIS");
    setenv("RATE_LIMIT_REDIS_PORT", "70000", 1);
    load_fails(RULES, "environment RATE_LIMIT_REDIS_PORT: invalid value \"70000\": expected an "
                      "integer in 1..65535");
    setenv("RATE_LIMIT_REDIS_PORT", "12x", 1);
    load_fails(RULES, "environment RATE_LIMIT_REDIS_PORT: invalid value \"12x\": expected an "
                      "integer in 1..65535");
    unsetenv("RATE_LIMIT_REDIS_PORT");
    setenv("RATE_LIMIT_REDIS_DB", "-1", 1);
    load_fails(RULES, "environment RATE_LIMIT_REDIS_DB: invalid value \"-1\": expected an "
                      "integer in 0..1000000");
    unsetenv("RATE_LIMIT_REDIS_DB");
    setenv("RATE_LIMIT_FALLBACK_MEMORY", "si", 1);
    load_fails(RULES, "environment RATE_LIMIT_FALLBACK_MEMORY: invalid value \"si\": expected "
                      "true, false, 1, 0, yes or no");
    unsetenv("RATE_LIMIT_FALLBACK_MEMORY");
    setenv("RATE_LIMIT_REQUESTS", "ten", 1);
    rl_error err;
    write_conf(RULES);
    cr_assert_null(settings_load(path, &err));
    cr_assert(strncmp(err.text, "environment RATE_LIMIT_REQUESTS: invalid value \"ten\": ", 52) ==
                  0,
              "%s", err.text);
}

/* A variable goes through the file's checks between the redis keys (the section's finish
 * hook), not only its own row: on a cluster, db must stay 0 and host/port are refused. */
#define CLUSTER "redis: { enabled = true; cluster = [ \"127.0.0.1:7000\" ]; };\n"
#define SENTINELS                                                                                  \
    "redis: { enabled = true; sentinels = [ \"127.0.0.1:26379\" ]; master_name = \"m\"; };\n"

Test(config_env, redis_variables_pass_the_files_cross_key_checks)
{
    setenv("RATE_LIMIT_REDIS_DB", "2", 1);
    load_fails(CLUSTER RULES, "environment RATE_LIMIT_REDIS_DB: invalid value \"2\": a cluster "
                              "has only db 0 (db is 2)");
    rl_config *cfg = load_ok(SENTINELS RULES);
    cr_assert_eq(cfg->redis.db, 2, "sentinels: a db is fine");
    rl_config_free(cfg);
    setenv("RATE_LIMIT_REDIS_DB", "0", 1);
    cfg = load_ok(CLUSTER RULES);
    cr_assert_eq(cfg->redis.ncluster, 1);
    cr_assert_eq(cfg->redis.db, 0);
    rl_config_free(cfg);
    unsetenv("RATE_LIMIT_REDIS_DB");

    setenv("RATE_LIMIT_REDIS_HOST", "10.0.0.1", 1);
    load_fails(CLUSTER RULES, "environment RATE_LIMIT_REDIS_HOST: invalid value \"10.0.0.1\": "
                              "cluster and host exclude each other");
    unsetenv("RATE_LIMIT_REDIS_HOST");
    setenv("RATE_LIMIT_REDIS_PORT", "6380", 1);
    load_fails(SENTINELS RULES, "environment RATE_LIMIT_REDIS_PORT: invalid value \"6380\": "
                                "sentinels and port exclude each other");
}

Test(config_env, fallback_memory_sets_every_rule)
{
    setenv("RATE_LIMIT_FALLBACK_MEMORY", "false", 1);
    rl_config *cfg = load_ok(RULES);
    for (size_t i = 0; i < cfg->nrules; i++)
        cr_assert_eq(cfg->rules[i].on_redis_down, RL_REDIS_DOWN_OPEN);
    rl_config_free(cfg);
    setenv("RATE_LIMIT_FALLBACK_MEMORY", "true", 1);
    cfg = load_ok("rules = ( { name = \"a\"; limit = \"1/s\"; on_redis_down = \"closed\"; } );");
    cr_assert_eq(cfg->rules[0].on_redis_down, RL_REDIS_DOWN_SHM);
    rl_config_free(cfg);
}

Test(config_env, requests_sets_the_global_rule)
{
    setenv("RATE_LIMIT_REQUESTS", "250", 1);
    rl_config *cfg = load_ok(RULES);
    cr_assert_eq(cfg->rules[1].count, 250, "a bare count is per minute");
    cr_assert_eq(cfg->rules[1].period_ms, 60000);
    cr_assert_eq(cfg->rules[1].burst, 250, "a burst equal to the count follows it");
    cr_assert_str_eq(cfg->rules[1].limit_text, "250/m");
    cr_assert_eq(cfg->rules[0].count, 5);
    rl_config_free(cfg);

    setenv("RATE_LIMIT_REQUESTS", "7/10s", 1);
    cfg = load_ok("rules = ( { name = \"api\"; path_prefix = \"/api\"; limit = \"5/s\"; },"
                  "{ name = \"all\"; limit = \"1/s\"; }, { name = \"x\"; limit = \"2/s\"; } );");
    cr_assert_eq(cfg->rules[1].count, 7, "no \"global\": the first rule for \"/\"");
    cr_assert_eq(cfg->rules[1].period_ms, 10000);
    cr_assert_eq(cfg->rules[2].count, 2);
    rl_config_free(cfg);

    load_fails("rules = ( { name = \"api\"; path_prefix = \"/api\"; limit = \"5/s\"; } );",
               "environment RATE_LIMIT_REQUESTS: no rule named \"global\" and no rule with "
               "path_prefix \"/\"");
    /* Rules matching by exact path or regex have no prefix at all: skipped, not crashed on. */
    setenv("RATE_LIMIT_REQUESTS", "7/10s", 1);
    cfg = load_ok("rules = ( { name = \"p\"; path = \"/x\"; limit = \"5/s\"; },"
                  "{ name = \"r\"; path_regex = \"^/y\"; limit = \"5/s\"; },"
                  "{ name = \"all\"; limit = \"1/s\"; } );");
    cr_assert_eq(cfg->rules[2].count, 7);
    rl_config_free(cfg);
}

Test(config_env, chat_sets_the_chat_rule)
{
    setenv("RATE_LIMIT_CHAT", "20/h", 1);
    rl_config *cfg = load_ok(RULES);
    cr_assert_eq(cfg->rules[2].count, 20);
    cr_assert_eq(cfg->rules[2].period_ms, 3600000);
    cr_assert_eq(cfg->rules[2].burst, 3, "an explicit smaller burst is kept");
    rl_config_free(cfg);
    load_fails("rules = ( { name = \"global\"; limit = \"5/s\"; } );",
               "environment RATE_LIMIT_CHAT: no rule named \"chat\"");
}

Test(config_env, a_sliding_log_keeps_its_bounds)
{
    const char *rules = "rules = ( { name = \"chat\"; limit = \"10/m\"; "
                        "algorithm = \"sliding_log\"; } );";
    setenv("RATE_LIMIT_CHAT", "100", 1); /* the seed's defaults: 100/min chat, 200/min */
    rl_config *cfg = load_ok(rules);
    cr_assert_eq(cfg->rules[0].count, 100);
    rl_config_free(cfg);
    setenv("RATE_LIMIT_CHAT", "200", 1);
    cfg = load_ok(rules);
    cr_assert_eq(cfg->rules[0].count, 200);
    rl_config_free(cfg);
    setenv("RATE_LIMIT_CHAT", "100000/h", 1);
    cfg = load_ok(rules);
    cr_assert_eq(cfg->rules[0].count, 100000);
    rl_config_free(cfg);
    setenv("RATE_LIMIT_CHAT", "100001", 1);
    load_fails(rules, "environment RATE_LIMIT_CHAT: invalid value \"100001\": sliding_log keeps "
                      "one timestamp per request: count must be <= 100000 (use "
                      "\"sliding_window\" or \"gcra\" for larger limits)");
    setenv("RATE_LIMIT_CHAT", "5/50d", 1);
    load_fails(rules, "environment RATE_LIMIT_CHAT: invalid value \"5/50d\": sliding_log keeps "
                      "timestamps as 32-bit offsets: the period must be at most 4294967295 ms "
                      "(49.7 days; use \"sliding_window\" for longer periods)");
}

/* One validation path: each invalid limit, written in the file or given as RATE_LIMIT_REQUESTS
 * over a valid file, is refused with the same reason (rule_check.c). */
Test(config_env, env_and_file_refuse_alike)
{
    static const struct {
        const char *extra; /* the rule's other keys */
        const char *limit; /* the invalid limit */
    } cases[] = {
        {"cost = 5;", "3/s"},                                 /* cost above the burst */
        {"algorithm = \"fixed_window\"; cost = 5;", "4/s"},   /* cost above the count */
        {"", "1000000000/366d"},                              /* count x period > 2^50 */
        {"algorithm = \"sliding_window\";", "1000000000/2d"}, /* division by zero before */
        {"burst = 1000000000;", "1/366d"},                    /* burst x period > 2^50 */
        {"algorithm = \"sliding_log\";", "100001/h"},
        {"algorithm = \"sliding_log\";", "5/50d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], file_err[sizeof(((rl_error *)0)->text)], env_prefix[128];
        rl_error err;

        unsetenv("RATE_LIMIT_REQUESTS");
        snprintf(text, sizeof text, "rules = ( { name = \"global\"; %s limit = \"%s\"; } );\n",
                 cases[i].extra, cases[i].limit);
        write_conf(text);
        cr_assert_null(settings_load(path, &err), "case %zu: the file loaded", i);
        snprintf(file_err, sizeof file_err, "%s", err.text);

        snprintf(text, sizeof text, "rules = ( { name = \"global\"; %s limit = \"10/m\"; } );\n",
                 cases[i].extra);
        write_conf(text);
        rl_config *cfg = settings_load(path, &err);
        cr_assert_not_null(cfg, "case %zu: base config: %s", i, err.text);
        rl_config_free(cfg);
        setenv("RATE_LIMIT_REQUESTS", cases[i].limit, 1);
        cr_assert_null(settings_load(path, &err), "case %zu: the override loaded", i);
        int n = snprintf(env_prefix, sizeof env_prefix,
                         "environment RATE_LIMIT_REQUESTS: invalid value \"%s\": ", cases[i].limit);
        cr_assert(strncmp(err.text, env_prefix, (size_t)n) == 0, "case %zu: %s", i, err.text);
        const char *why = err.text + n;
        size_t wl = strlen(why), fl = strlen(file_err);
        cr_assert(wl > 0 && fl >= wl && strcmp(file_err + fl - wl, why) == 0,
                  "case %zu: file says `%s`, environment says `%s`", i, file_err, why);
    }
}

/* An override that changes a rule's numbers changes its key identity too: the rule counts
 * under the fingerprint of the limit it enforces (keys.c), exactly as if the file had said
 * it, and never under the file's own limit (whose states another pool may be writing). */
Test(config_env, an_override_moves_the_rule_to_its_own_key_identity)
{
    char file_id[sizeof(((rl_rule *)0)->key_id)], env_id[sizeof file_id];

    unsetenv("RATE_LIMIT_REQUESTS");
    rl_config *cfg = load_ok("rules = ( { name = \"global\"; limit = \"3/h\"; } );\n");
    snprintf(file_id, sizeof file_id, "%s", cfg->rules[0].key_id);
    rl_config_free(cfg);

    setenv("RATE_LIMIT_REQUESTS", "10/h", 1);
    cfg = load_ok("rules = ( { name = \"global\"; limit = \"3/h\"; } );\n");
    snprintf(env_id, sizeof env_id, "%s", cfg->rules[0].key_id);
    cr_assert_eq(cfg->rules[0].key_id_len, strlen(env_id));
    rl_config_free(cfg);
    cr_assert_str_neq(env_id, file_id, "the override kept the 3/h identity");

    unsetenv("RATE_LIMIT_REQUESTS");
    cfg = load_ok("rules = ( { name = \"global\"; limit = \"10/h\"; } );\n");
    cr_assert_str_eq(cfg->rules[0].key_id, env_id, "10/h from the file and from the environment");
    rl_config_free(cfg);
}

/* Loads text, which must be refused with a message ending in want. */
static void load_fails_with(const char *text, const char *want)
{
    rl_error err;
    write_conf(text);
    rl_config *cfg = settings_load(path, &err);
    cr_assert_null(cfg, "loaded, expected: %s", want);
    size_t n = strlen(err.text), w = strlen(want);
    cr_assert(n >= w && strcmp(err.text + n - w, want) == 0, "%s", err.text);
    cr_assert_null(strstr(err.text, "pw-xyz"), "the password is shown: %s", err.text);
}

/* The sentinels' credentials: only with sentinels, a user only with a password, and never in
 * the message that refuses them. */
Test(config_env, sentinel_credentials_need_sentinels)
{
    load_fails_with("redis: { enabled = true; sentinel_password = \"pw-xyz\"; };\n" RULES,
                    ":1: redis.sentinel_password: sentinel_password needs sentinels");
    load_fails_with("redis: { enabled = true; sentinels = [ \"127.0.0.1:26379\" ]; master_name = "
                    "\"m\"; sentinel_user = \"u\"; };\n" RULES,
                    ":1: redis.sentinel_user: sentinel_user needs sentinel_password");
    rl_config *cfg = load_ok("redis: { enabled = true; sentinels = [ \"127.0.0.1:26379\" ]; "
                             "master_name = \"m\"; sentinel_user = \"u\"; sentinel_password = "
                             "\"pw-xyz\"; };\n" RULES);
    cr_assert_str_eq(cfg->redis.sentinel_user, "u");
    cr_assert_str_eq(cfg->redis.sentinel_password, "pw-xyz");
    cr_assert_null(cfg->redis.password, "the master's password is another key");
    rl_config_free(cfg);
}
