/* test_config.c -- the configuration loader: golden files and rl_parse_limit
 *
 * tests/data/config/good/<case>.conf must load. tests/data/config/bad/<case>.error holds the
 * one-line message that loading <case>.conf must give (the .conf may be missing on purpose),
 * with @FILE@ standing for the path the test passed, built from $RL_TEST_DATA. Adding a case
 * is adding files; the tests count what they found so they cannot pass on an empty directory.
 */
#include "fmacros.h"

#include "leakcheck.h"
#include "../../filter/settings.h"
#include "config_types.h"
#include "ratelimit.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_BAD_CASES 60
#define MIN_GOOD_CASES 3

TestSuite(config, .fini = rl_test_leak_check);

static const char *data_dir(void)
{
    const char *d = getenv("RL_TEST_DATA");
    return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* The whole file, NUL-terminated, trailing newlines removed; the caller frees it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}

/* Replaces every "@FILE@" in text with file; the caller frees the result. */
static char *expand(const char *text, const char *file)
{
    static const char mark[] = "@FILE@";
    size_t size = strlen(text) + 1;
    char *out, *o;

    for (const char *p = strstr(text, mark); p != NULL; p = strstr(p + 1, mark))
        size += strlen(file);
    out = o = malloc(size);
    cr_assert_not_null(out);
    while (*text != '\0') {
        if (strncmp(text, mark, sizeof mark - 1) == 0) {
            o = stpcpy(o, file);
            text += sizeof mark - 1;
        } else {
            *o++ = *text++;
        }
    }
    *o = '\0';
    return out;
}

/* snprintf that fails the test instead of truncating a path. */
static void fmt(char *buf, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t size, const char *format, ...)
{
    va_list ap;
    int n;

    va_start(ap, format);
    n = vsnprintf(buf, size, format, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < size, "path too long");
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

Test(config, bad_cases)
{
    char dir[PATH_MAX], conf[PATH_MAX], errfile[PATH_MAX];
    int cases = 0;
    DIR *d;
    struct dirent *e;

    fmt(dir, sizeof dir, "%s/config/bad", data_dir());
    d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t stem;
        rl_error err;
        rl_config *cfg;
        char *want_raw, *want;

        if (!has_suffix(e->d_name, ".error"))
            continue;
        stem = strlen(e->d_name) - strlen(".error");
        fmt(conf, sizeof conf, "%s/%.*s.conf", dir, (int)stem, e->d_name);
        fmt(errfile, sizeof errfile, "%s/%s", dir, e->d_name);
        want_raw = slurp(errfile);
        want = expand(want_raw, conf);

        cfg = settings_load(conf, &err);
        cr_expect_null(cfg, "%s: loaded, expected: %s", conf, want);
        if (cfg == NULL)
            cr_expect_str_eq(err.text, want, "%s:\n  got:      %s\n  expected: %s", conf,
                             err.text, want);
        rl_config_free(cfg);
        free(want_raw);
        free(want);
        cases++;
    }
    closedir(d);
    cr_assert_geq(cases, MIN_BAD_CASES, "only %d bad cases found in %s", cases, dir);
}

Test(config, good_cases)
{
    char dir[PATH_MAX], conf[PATH_MAX];
    int cases = 0;
    DIR *d;
    struct dirent *e;

    fmt(dir, sizeof dir, "%s/config/good", data_dir());
    d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        rl_error err;
        rl_config *cfg;

        if (!has_suffix(e->d_name, ".conf"))
            continue;
        fmt(conf, sizeof conf, "%s/%s", dir, e->d_name);
        cfg = settings_load(conf, &err);
        cr_expect_not_null(cfg, "%s: %s", conf, err.text);
        if (cfg != NULL)
            cr_expect_geq(cfg->nrules, 1);
        rl_config_free(cfg);
        cases++;
    }
    closedir(d);
    cr_assert_geq(cases, MIN_GOOD_CASES, "only %d good cases found in %s", cases, dir);
}

static rl_config *load_good(const char *name, char *path, size_t size)
{
    rl_error err;
    rl_config *cfg;

    snprintf(path, size, "%s/config/good/%s", data_dir(), name);
    cfg = settings_load(path, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

Test(config, full_keys)
{
    char path[PATH_MAX];
    rl_config *cfg = load_good("full.conf", path, sizeof path);

    cr_expect_str_eq(cfg->path, path);
    cr_expect_str_eq(cfg->shm.name, "/rl-test-full");
    cr_expect_eq(cfg->shm.capacity, 2000000);
    cr_expect_eq(cfg->redis.enabled, 1);
    cr_expect_str_eq(cfg->redis.host, "redis.example");
    cr_expect_eq(cfg->redis.port, 6380);
    cr_expect_str_eq(cfg->redis.socket, "/run/redis/redis.sock");
    cr_expect_eq(cfg->redis.db, 3);
    cr_expect_str_eq(cfg->redis.password, "s3cret");
    cr_expect_str_eq(cfg->redis.prefix, "");
    cr_expect_eq(cfg->redis.connect_timeout_ms, 250);
    cr_expect_eq(cfg->redis.command_timeout_ms, 75);
    cr_expect_eq(settings_get_headers(cfg)->x_ratelimit, 0);

    cr_assert_eq(cfg->nrules, 3);
    cr_expect_str_eq(cfg->rules[0].name, "global");
    cr_expect_eq(cfg->rules[0].line, 21);
    cr_expect_str_eq(cfg->rules[0].path_prefix, "/");
    cr_expect_eq(cfg->rules[0].count, 100);
    cr_expect_eq(cfg->rules[0].period_ms, 90000);
    cr_expect_eq(cfg->rules[0].burst, 150);
    cr_expect_str_eq(cfg->rules[0].limit_text, "100/90s");
    cr_expect_eq(cfg->rules[0].algo, RL_ALGO_GCRA);

    cr_expect_str_eq(cfg->rules[1].name, "api.v2-login_");
    cr_expect_eq(cfg->rules[1].line, 28);
    cr_expect_str_eq(cfg->rules[1].path_prefix, "/api/login");
    cr_expect_eq(cfg->rules[1].count, 5);
    cr_expect_eq(cfg->rules[1].period_ms, 1500);
    cr_expect_eq(cfg->rules[1].burst, 5);

    cr_expect_str_eq(cfg->rules[2].name, "daily");
    cr_expect_eq(cfg->rules[2].line, 33);
    cr_expect_eq(cfg->rules[2].period_ms, 86400000);
    cr_expect_eq(cfg->rules[2].burst, 1000);
    rl_config_free(cfg);
}

/* The default segment name, computed here independently of the loader. */
static void expected_shm_name(const char *path, char *out, size_t size)
{
    char *real = realpath(path, NULL);
    uint64_t h = 0xcbf29ce484222325ULL;

    cr_assert_not_null(real);
    for (const unsigned char *p = (const unsigned char *)real; *p != '\0'; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    free(real);
    snprintf(out, size, "/ratelimit-%016" PRIx64, h);
}

Test(config, minimal_defaults)
{
    char path[PATH_MAX], name[64];
    rl_config *cfg = load_good("minimal.conf", path, sizeof path);

    expected_shm_name(path, name, sizeof name);
    cr_expect_str_eq(cfg->shm.name, name);
    cr_expect_eq(strlen(cfg->shm.name), strlen("/ratelimit-") + 16);
    cr_expect_eq(cfg->shm.capacity, 100000);
    cr_expect_eq(cfg->redis.enabled, 0);
    cr_expect_str_eq(cfg->redis.host, "127.0.0.1");
    cr_expect_eq(cfg->redis.port, 6379);
    cr_expect_null(cfg->redis.socket);
    cr_expect_eq(cfg->redis.db, 0);
    cr_expect_null(cfg->redis.password);
    cr_expect_str_eq(cfg->redis.prefix, "rl:");
    cr_expect_eq(cfg->redis.connect_timeout_ms, 100);
    cr_expect_eq(cfg->redis.command_timeout_ms, 50);
    cr_expect_eq(settings_get_headers(cfg)->x_ratelimit, 1);
    cr_assert_eq(cfg->nrules, 1);
    cr_expect_str_eq(cfg->rules[0].name, "all");
    cr_expect_eq(cfg->rules[0].line, 1);
    cr_expect_str_eq(cfg->rules[0].path_prefix, "/");
    cr_expect_eq(cfg->rules[0].count, 10);
    cr_expect_eq(cfg->rules[0].period_ms, 60000);
    cr_expect_eq(cfg->rules[0].burst, 10);
    cr_expect_eq(cfg->rules[0].algo, RL_ALGO_GCRA);
    rl_config_free(cfg);
}

Test(config, default_shm_name_follows_the_real_path)
{
    char path[PATH_MAX], other[PATH_MAX], dotted[PATH_MAX + 16];
    rl_config *a = load_good("minimal.conf", path, sizeof path);
    rl_config *b = load_good("full.conf", other, sizeof other);
    rl_config *c, *d;
    rl_error err;

    /* The same file by another name: same segment. Another file: another segment. */
    fmt(dotted, sizeof dotted, "%s/config/good/./minimal.conf", data_dir());
    c = settings_load(dotted, &err);
    cr_assert_not_null(c, "%s", err.text);
    cr_expect_str_eq(a->shm.name, c->shm.name);
    fmt(other, sizeof other, "%s/config/good/colon_syntax.conf", data_dir());
    d = settings_load(other, &err);
    cr_assert_not_null(d, "%s", err.text);
    cr_expect_str_neq(a->shm.name, d->shm.name);
    rl_config_free(a);
    rl_config_free(b);
    rl_config_free(c);
    rl_config_free(d);
}

Test(config, libconfig_spellings_and_bounds)
{
    char path[PATH_MAX];
    rl_config *cfg = load_good("colon_syntax.conf", path, sizeof path);

    cr_expect_eq(cfg->shm.capacity, 0x10000);
    cr_expect_eq(cfg->redis.port, 65535);
    cr_expect_eq(cfg->redis.db, 1000000);
    cr_expect_eq(cfg->rules[0].count * cfg->rules[0].period_ms, 1125899000000000LL);
    cr_expect_eq(cfg->rules[1].period_ms, RL_PERIOD_MAX_MS);
    cr_expect_eq(cfg->rules[1].burst, 35604);
    rl_config_free(cfg);
}

/* shm.user, shm.group, shm.mode: resolved once at load; the group and mode defaults. */
Test(config, shm_owner_keys)
{
    char path[PATH_MAX];
    struct passwd *nobody = getpwnam("nobody");
    struct group *nogroup = getgrnam("nogroup");
    rl_config *cfg;

    cr_assert_not_null(nobody, "no user nobody on this system");
    cr_assert_not_null(nogroup, "no group nogroup on this system");

    cfg = load_good("minimal.conf", path, sizeof path);
    cr_expect_eq(cfg->shm.uid_set, 0, "no shm.user: the creating process's user");
    cr_expect_eq(cfg->shm.gid_set, 0);
    cr_expect_eq(cfg->shm.mode, 0600);
    rl_config_free(cfg);

    cfg = load_good("shm_owner.conf", path, sizeof path);
    cr_expect_eq(cfg->shm.uid_set, 1);
    cr_expect_eq(cfg->shm.uid, (uint32_t)nobody->pw_uid);
    cr_expect_eq(cfg->shm.gid_set, 1, "shm.user's primary group by default");
    cr_expect_eq(cfg->shm.gid, (uint32_t)nobody->pw_gid);
    cr_expect_eq(cfg->shm.mode, 0600);
    rl_config_free(cfg);

    cfg = load_good("shm_owner_group.conf", path, sizeof path);
    cr_expect_eq(cfg->shm.uid_set, 1);
    cr_expect_eq(cfg->shm.uid, 4242);
    cr_expect_eq(cfg->shm.gid_set, 1);
    cr_expect_eq(cfg->shm.gid, (uint32_t)nogroup->gr_gid);
    cr_expect_eq(cfg->shm.mode, 0660, "a group given: 0660 by default");
    rl_config_free(cfg);

    cfg = load_good("shm_owner_mode.conf", path, sizeof path);
    cr_expect_eq(cfg->shm.uid_set, 1);
    cr_expect_eq(cfg->shm.uid, 0);
    cr_expect_eq(cfg->shm.gid_set, 1);
    cr_expect_eq(cfg->shm.gid, 4243, "shm.group wins over shm.user's primary group");
    cr_expect_eq(cfg->shm.mode, 0640);
    rl_config_free(cfg);
}

/* The sample shipped in etc/ (tests run from the repository's root). */
Test(config, sample_config_loads)
{
    rl_error err;
    rl_config *cfg = settings_load("etc/ratelimit.conf", &err);

    cr_assert_not_null(cfg, "%s", err.text);
    cr_expect_geq(cfg->nrules, 1);
    rl_config_free(cfg);
}

Test(config, a_directory_is_not_a_file)
{
    char dir[PATH_MAX], want[PATH_MAX + 64];
    rl_error err;

    fmt(dir, sizeof dir, "%s/config", data_dir());
    fmt(want, sizeof want, "%s: cannot read: Is a directory", dir);
    cr_expect_null(settings_load(dir, &err));
    cr_expect_str_eq(err.text, want);
}

Test(config, nul_byte_is_an_error)
{
    static const char text[] = "rules = ( { name = \"a\"; limit = \"1/s\"; } );\n# x\0y\n";
    char path[] = "/tmp/rl-test-config-XXXXXX", want[64];
    int fd = mkstemp(path);
    rl_error err;

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    fmt(want, sizeof want, "%s:2: NUL byte in the file", path);
    cr_expect_null(settings_load(path, &err));
    cr_expect_str_eq(err.text, want);
    unlink(path);
}

Test(config, free_accepts_null_and_err_may_be_null)
{
    rl_config_free(NULL);
    cr_expect_null(settings_load("/nonexistent/ratelimit.conf", NULL));
    cr_expect_null(settings_load(NULL, NULL));
}

/* ---- rl_parse_limit ------------------------------------------------------------------------ */

Test(config, parse_limit_good)
{
    static const struct {
        const char *text;
        int64_t count, period_ms;
    } cases[] = {
        {"100/90s", 100, 90000},
        {"10/m", 10, 60000},
        {"5/1500ms", 5, 1500},
        {"1000/d", 1000, 86400000},
        {"1/h", 1, 3600000},
        {"3/s", 3, 1000},
        {"1/1ms", 1, 1},
        {"1/ms", 1, 1},
        {"007/010s", 7, 10000},
        {"1000000000/s", RL_COUNT_MAX, 1000},
        {"1/366d", 1, RL_PERIOD_MAX_MS},
        {"1/8784h", 1, RL_PERIOD_MAX_MS},
        {"1/31622400000ms", 1, RL_PERIOD_MAX_MS},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t count = -1, period = -1;
        rl_error err = {{0}};
        int rc = rl_parse_limit(cases[i].text, &count, &period, &err);

        cr_expect_eq(rc, 0, "\"%s\": %s", cases[i].text, err.text);
        cr_expect_eq(count, cases[i].count, "\"%s\": count %" PRId64, cases[i].text, count);
        cr_expect_eq(period, cases[i].period_ms, "\"%s\": period %" PRId64, cases[i].text,
                     period);
    }
}

Test(config, parse_limit_bad)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"", "invalid limit \"\": expected COUNT/PERIOD, e.g. \"100/90s\""},
        {"100", "invalid limit \"100\": expected COUNT/PERIOD, e.g. \"100/90s\""},
        {"/s", "invalid count \"\": expected a decimal integer"},
        {"0/s", "invalid count \"0\": must be 1..1000000000"},
        {"1000000001/s", "invalid count \"1000000001\": must be 1..1000000000"},
        {"18446744073709551617/s", "invalid count \"18446744073709551617\": must be 1..1000000000"},
        {"-1/s", "invalid count \"-1\": expected a decimal integer"},
        {"+1/s", "invalid count \"+1\": expected a decimal integer"},
        {" 1/s", "invalid count \" 1\": expected a decimal integer"},
        {"1.5/s", "invalid count \"1.5\": expected a decimal integer"},
        {"1/", "invalid period \"\": expected [N]UNIT with UNIT ms, s, m, h or d, e.g. \"90s\""},
        {"1/90", "invalid period \"90\": missing unit (ms, s, m, h or d)"},
        {"1/90 s", "invalid period \"90 s\": expected [N]UNIT with UNIT ms, s, m, h or d, "
                   "e.g. \"90s\""},
        {"1/s ", "invalid period \"s \": expected [N]UNIT with UNIT ms, s, m, h or d, "
                 "e.g. \"90s\""},
        {"1/+5s", "invalid period \"+5s\": expected [N]UNIT with UNIT ms, s, m, h or d, "
                  "e.g. \"90s\""},
        {"1/2/s", "invalid period \"2/s\": expected [N]UNIT with UNIT ms, s, m, h or d, "
                  "e.g. \"90s\""},
        {"1/5S", "invalid period \"5S\": expected [N]UNIT with UNIT ms, s, m, h or d, "
                 "e.g. \"90s\""},
        {"1/5sec", "invalid period \"5sec\": unknown unit \"sec\" (expected ms, s, m, h or d)"},
        {"1/w", "invalid period \"w\": unknown unit \"w\" (expected ms, s, m, h or d)"},
        {"1/0s", "invalid period \"0s\": must be > 0"},
        {"1/0ms", "invalid period \"0ms\": must be > 0"},
        {"1/367d", "invalid period \"367d\": must be at most 366d"},
        {"1/8785h", "invalid period \"8785h\": must be at most 366d"},
        {"1/31622400001ms", "invalid period \"31622400001ms\": must be at most 366d"},
        {"1/99999999999999999999999999d", "invalid period \"99999999999999999999999999d\": "
                                          "must be at most 366d"},
        {"1/\n", "invalid period \"\\x0a\": expected [N]UNIT with UNIT ms, s, m, h or d, "
                 "e.g. \"90s\""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t count = -7, period = -7;
        rl_error err = {{0}};
        int rc = rl_parse_limit(cases[i].text, &count, &period, &err);

        cr_expect_eq(rc, -1, "\"%s\" parsed", cases[i].text);
        cr_expect_str_eq(err.text, cases[i].error, "\"%s\": %s", cases[i].text, err.text);
        cr_expect_eq(count, -7, "\"%s\": count written on failure", cases[i].text);
        cr_expect_eq(period, -7, "\"%s\": period written on failure", cases[i].text);
    }
    cr_expect_eq(rl_parse_limit(NULL, &(int64_t){0}, &(int64_t){0}, NULL), -1);
}

Test(config, rules_identity_access_keys)
{
    char path[PATH_MAX];
    rl_config *cfg = load_good("rules.conf", path, sizeof path);
    const rl_rule *r = cfg->rules;

    cr_expect_eq(cfg->identity.ntrusted, 3);
    cr_expect_eq(cfg->identity.header, RL_FORWARD_FORWARDED);
    cr_expect_eq(cfg->identity.ipv6_prefix, 56);
    cr_expect_eq(cfg->access.nallow, 2);
    cr_expect_eq(cfg->access.ndeny, 2);
    cr_expect_eq(cfg->access.allow[1].bits, 128);
    cr_expect_eq(cfg->access.allow[0].bits, 96 + 24);

    cr_expect_str_eq(r[0].path, "/login");
    cr_expect_null(r[0].path_prefix, "no default prefix when path is given");
    cr_expect_eq(r[0].nmethods, 1);
    cr_expect_str_eq(r[0].methods[0], "POST");
    cr_expect_eq(r[0].status, 503);
    cr_expect_str_eq(r[0].body, "slow down\n");
    cr_expect_eq(r[0].nkey, 1);
    cr_expect_eq(r[0].key[0].kind, RL_KEY_CLIENT);
    cr_expect_eq(r[0].on_missing_key, RL_MISSING_SKIP);
    cr_expect_eq(r[0].cost, 1);
    cr_expect_not(r[0].dry_run);

    cr_expect_str_eq(r[1].path_regex_text, "^/u/[0-9]+$");
    cr_expect_not_null(r[1].path_regex);
    cr_expect_str_eq(r[1].hosts[0], "example.com");
    cr_expect_eq(r[1].cost, 20);
    cr_expect(r[1].dry_run);

    cr_expect_eq(r[2].nkey, 2);
    cr_expect_eq(r[2].key[1].kind, RL_KEY_HEADER);
    cr_expect_str_eq(r[2].key[1].name, "x-api-key");
    cr_expect_eq(r[2].on_missing_key, RL_MISSING_REFUSE);
    cr_expect_eq(r[2].missing_key_status, 401);

    cr_expect_eq(r[3].key[0].kind, RL_KEY_COOKIE);
    cr_expect_str_eq(r[3].key[0].name, "session");
    cr_expect_eq(r[3].on_missing_key, RL_MISSING_SHARED);
    cr_expect_str_eq(r[3].path_prefix, "/");
    rl_config_free(cfg);
}

Test(config, proxy_keys_and_defaults)
{
    char path[PATH_MAX];
    rl_config *cfg = load_good("proxy.conf", path, sizeof path);

    cr_expect_str_eq(settings_get_proxy(cfg)->backend, "http://[::1]:8081");
    cr_expect_eq(settings_get_proxy(cfg)->connect_timeout_ms, 250);
    cr_expect_eq(settings_get_proxy(cfg)->timeout_ms, 3600000);
    rl_config_free(cfg);

    cfg = load_good("minimal.conf", path, sizeof path);
    cr_expect_null(settings_get_proxy(cfg)->backend, "no proxy group: not proxying");
    cr_expect_eq(settings_get_proxy(cfg)->connect_timeout_ms, 1000);
    cr_expect_eq(settings_get_proxy(cfg)->timeout_ms, 30000);
    rl_config_free(cfg);
}

Test(config, fastcgi_keys_and_defaults)
{
    char path[PATH_MAX];
    rl_config *cfg = load_good("fastcgi.conf", path, sizeof path);

    cr_expect_eq(settings_get_fastcgi(cfg)->read_timeout_ms, 60000);
    cr_expect_eq(settings_get_fastcgi(cfg)->idle_timeout_ms, 1);
    cr_expect_eq(settings_get_fastcgi(cfg)->max_connections, 65536);
    rl_config_free(cfg);

    cfg = load_good("minimal.conf", path, sizeof path);
    cr_expect_eq(settings_get_fastcgi(cfg)->read_timeout_ms, 5000);
    cr_expect_eq(settings_get_fastcgi(cfg)->idle_timeout_ms, 30000);
    cr_expect_eq(settings_get_fastcgi(cfg)->max_connections, 256);
    rl_config_free(cfg);
}

/* The four admin endpoint paths of a loaded config, in the order the MANUAL lists them. */
static void expect_admin_paths(rl_config *cfg, const char *health, const char *stats,
                               const char *test, const char *metrics)
{
    const settings_admin *ac = settings_get_admin(cfg);

    cr_assert_str_eq(ac->health_path, health);
    cr_assert_str_eq(ac->stats_path, stats);
    cr_assert_str_eq(ac->test_path, test);
    cr_assert_str_eq(ac->metrics_path, metrics);
}

Test(config, admin_keys_and_defaults)
{
    char path[512];
    rl_config *cfg = load_good("admin.conf", path, sizeof path);
    cr_assert_eq(settings_get_admin(cfg)->enabled, 1);
    cr_assert_eq(settings_get_headers(cfg)->problem_json, 1);
    cr_assert_eq(settings_get_admin(cfg)->nallow, 2);
    expect_admin_paths(cfg, "/h", "/h/stats", "/h/test", "/h/metrics");
    rl_config_free(cfg);

    cfg = load_good("minimal.conf", path, sizeof path);
    cr_assert_eq(settings_get_admin(cfg)->enabled, 1);
    cr_assert_eq(settings_get_headers(cfg)->problem_json, 0);
    expect_admin_paths(cfg, "/api/health/rate-limiter", "/api/health/rate-limiter/stats",
                       "/api/health/rate-limiter/test", "/metrics");
    cr_assert_eq(settings_get_admin(cfg)->nallow, 2, "loopback by default");
    rl_request req = {.remote_addr = "127.0.0.1"};
    cr_assert(rl_client_in(cfg, &req, settings_get_admin(cfg)->allow, settings_get_admin(cfg)->nallow));
    req.remote_addr = "::1";
    cr_assert(rl_client_in(cfg, &req, settings_get_admin(cfg)->allow, settings_get_admin(cfg)->nallow));
    req.remote_addr = "127.0.0.2";
    cr_assert_not(rl_client_in(cfg, &req, settings_get_admin(cfg)->allow, settings_get_admin(cfg)->nallow));
    req.remote_addr = "not-an-address";
    cr_assert_not(rl_client_in(cfg, &req, settings_get_admin(cfg)->allow, settings_get_admin(cfg)->nallow));
    rl_config_free(cfg);
}
