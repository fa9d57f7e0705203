/* test_path.c -- the canonical request path (path.c) and what is matched on it
 *
 * A table of targets and their canonical forms or refusals, hostile ones included (encoded
 * slashes and NULs, bad escapes, climbing above the root, overlong paths, absolute-form
 * targets); the form is stable (canonicalising it again as a decoded path gives it back);
 * rule and admin paths that no request could have are refused at load; a table of aliases of
 * "/login" is charged to one counter through rl_decide; path_case_insensitive.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "leakcheck.h"
#include "../../filter/settings.h"
#include "config_types.h"
#include "ratelimit.h"
#include "test_clock.h"
#include "rule.h"

TestSuite(path, .fini = rl_test_leak_check);

static const struct {
    const char *in;
    rl_path_status st;
    const char *out;
} canon_table[] = {
    {"/", RL_PATH_OK, "/"},
    {"", RL_PATH_OK, "/"},
    {"/login", RL_PATH_OK, "/login"},
    {"/login/", RL_PATH_OK, "/login/"},
    {"//login", RL_PATH_OK, "/login"},
    {"///login//x///", RL_PATH_OK, "/login/x/"},
    {"/./login", RL_PATH_OK, "/login"},
    {"/login/.", RL_PATH_OK, "/login/"},
    {"/a/../login", RL_PATH_OK, "/login"},
    {"/a/b/../../login", RL_PATH_OK, "/login"},
    {"/../login", RL_PATH_OK, "/login"},
    {"/../../../../login", RL_PATH_OK, "/login"},
    {"/a/b/..", RL_PATH_OK, "/a/"},
    {"/a/..", RL_PATH_OK, "/"},
    {"/..", RL_PATH_OK, "/"},
    {"/.", RL_PATH_OK, "/"},
    {"/...", RL_PATH_OK, "/..."},
    {"/..a/.b/a..", RL_PATH_OK, "/..a/.b/a.."},
    {"/%2e%2e/login", RL_PATH_OK, "/login"},
    {"/%2E/login", RL_PATH_OK, "/login"},
    {"/a/%2e%2E/login", RL_PATH_OK, "/login"},
    {"/.%2e/login", RL_PATH_OK, "/login"},
    {"/%6cogin", RL_PATH_OK, "/login"},
    {"/%6C%6F%67%69%6E", RL_PATH_OK, "/login"},
    {"/login?x=1", RL_PATH_OK, "/login"},
    {"/login?x=/../a%zz", RL_PATH_OK, "/login"},
    {"/login#frag", RL_PATH_OK, "/login"},
    {"/login%3fx", RL_PATH_OK, "/login?x"},
    {"/login%23x", RL_PATH_OK, "/login#x"},
    {"/login;x", RL_PATH_OK, "/login;x"},
    {"/a%20b", RL_PATH_OK, "/a b"},
    {"/a+b", RL_PATH_OK, "/a+b"},
    {"/%25", RL_PATH_OK, "/%"},
    {"/%2541", RL_PATH_OK, "/%41"},
    {"/caf%C3%A9", RL_PATH_OK, "/caf\xc3\xa9"},
    {"/\xff\xfe", RL_PATH_OK, "/\xff\xfe"},  /* not UTF-8: kept as bytes */
    {"/%c0%af", RL_PATH_OK, "/\xc0\xaf"},    /* an overlong '/': a byte pair, not a slash */
    {"/a\\..\\login", RL_PATH_OK, "/a\\..\\login"}, /* '\' is no separator on POSIX servers */
    {"/LOGIN", RL_PATH_OK, "/LOGIN"},
    {"http://example.com/login", RL_PATH_OK, "/login"},
    {"HTTPS://example.com:8443//./login?q", RL_PATH_OK, "/login"},
    {"http://example.com", RL_PATH_OK, "/"},
    {"http://example.com?x", RL_PATH_OK, "/"},
    {"?x", RL_PATH_NOT_ABSOLUTE, ""},
    {"login", RL_PATH_NOT_ABSOLUTE, ""},
    {"*", RL_PATH_NOT_ABSOLUTE, ""},
    {"http:/login", RL_PATH_NOT_ABSOLUTE, ""},
    {"/%2flogin", RL_PATH_ENCODED_SLASH, ""},
    {"/login%2F..%2F", RL_PATH_ENCODED_SLASH, ""},
    {"/a%00", RL_PATH_NUL, ""},
    {"/a%0a", RL_PATH_CONTROL, ""},
    {"/a%7F", RL_PATH_CONTROL, ""},
    {"/a\tb", RL_PATH_CONTROL, ""},
    {"/a%", RL_PATH_BAD_ESCAPE, ""},
    {"/a%4", RL_PATH_BAD_ESCAPE, ""},
    {"/a%zz", RL_PATH_BAD_ESCAPE, ""},
    {"/a%4g", RL_PATH_BAD_ESCAPE, ""},
    {"/a%%41", RL_PATH_BAD_ESCAPE, ""},
};

Test(path, canonical_table)
{
    char out[RL_PATH_MAX], again[RL_PATH_MAX];

    for (size_t i = 0; i < sizeof canon_table / sizeof canon_table[0]; i++) {
        size_t len = 99;
        rl_path_status st = rl_path_canon(canon_table[i].in, 0, out, &len);
        cr_expect_eq(st, canon_table[i].st, "\"%s\": status %d (%s), want %d", canon_table[i].in,
                     (int)st, rl_path_strerror(st), (int)canon_table[i].st);
        cr_expect_str_eq(out, canon_table[i].out, "\"%s\"", canon_table[i].in);
        cr_expect_eq(len, strlen(out), "\"%s\"", canon_table[i].in);
        cr_expect_eq(rl_path_http_status(st) == 400 || st == RL_PATH_OK, 1);
        if (st != RL_PATH_OK)
            continue;
        /* Stable: the canonical form, read as a decoded path, is its own canonical form. */
        cr_expect_eq(rl_path_canon(out, RL_PATH_DECODED, again, NULL), RL_PATH_OK);
        cr_expect_str_eq(again, out, "\"%s\" is not stable", canon_table[i].in);
    }
}

Test(path, decoded_input_is_not_decoded_again)
{
    char out[RL_PATH_MAX];

    cr_expect_eq(rl_path_canon("/a%2541//./b?c#d", RL_PATH_DECODED, out, NULL), RL_PATH_OK);
    cr_expect_str_eq(out, "/a%2541/b?c#d");
    cr_expect_eq(rl_path_canon("/a%zz/%2f", RL_PATH_DECODED, out, NULL), RL_PATH_OK);
    cr_expect_str_eq(out, "/a%zz/%2f");
    cr_expect_eq(rl_path_canon("a", RL_PATH_DECODED, out, NULL), RL_PATH_NOT_ABSOLUTE);
    cr_expect_eq(rl_path_canon("/a\x01", RL_PATH_DECODED, out, NULL), RL_PATH_CONTROL);
}

Test(path, lengths)
{
    static char in[2 * RL_PATH_MAX], out[RL_PATH_MAX];
    size_t len;

    /* The longest path that fits, with a long query after it: the query does not count. */
    memset(in, 'a', sizeof in - 1);
    in[0] = '/';
    in[RL_PATH_MAX - 1] = '?';
    cr_expect_eq(rl_path_canon(in, 0, out, &len), RL_PATH_OK);
    cr_expect_eq(len, (size_t)RL_PATH_MAX - 1);
    in[RL_PATH_MAX - 1] = 'a';
    in[RL_PATH_MAX] = '?';
    cr_expect_eq(rl_path_canon(in, 0, out, &len), RL_PATH_TOO_LONG);
    cr_expect_str_eq(out, "");
    cr_expect_eq(rl_path_http_status(RL_PATH_TOO_LONG), 414);
    /* Long to begin with is too long, even when it would shrink to "/". */
    for (size_t i = 0; i + 1 < sizeof in; i++)
        in[i] = "/."[i % 2];
    cr_expect_eq(rl_path_canon(in, 0, out, &len), RL_PATH_TOO_LONG);
    /* ... and below the bound it does shrink, without a byte past the buffer. */
    in[RL_PATH_MAX - 1] = '\0';
    cr_expect_eq(rl_path_canon(in, 0, out, &len), RL_PATH_OK);
    cr_expect_str_eq(out, "/");
    /* Only escapes: 3 bytes in, 1 out. */
    size_t n = (RL_PATH_MAX - 2) / 3;
    for (size_t i = 0; i < n; i++)
        memcpy(in + 1 + 3 * i, "%41", 3);
    in[0] = '/';
    in[1 + 3 * n] = '\0';
    cr_expect_eq(rl_path_canon(in, 0, out, &len), RL_PATH_OK);
    cr_expect_eq(len, 1 + n);
}

static char conf[64];

static rl_config *load(const char *text, rl_error *err)
{
    snprintf(conf, sizeof conf, "/tmp/rl-path-%d.conf", (int)getpid());
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"/rl-path-%d\"; capacity = 100; };\n%s\n", (int)getpid(), text);
    fclose(f);
    rl_config *cfg = settings_load(conf, err);
    unlink(conf);
    return cfg;
}

Test(path, rule_and_admin_paths_must_be_canonical)
{
    static const struct {
        const char *text, *error; /* a part of the message */
    } t[] = {
        {"rules = ({ name = \"a\"; path_prefix = \"/login//x\"; limit = \"1/s\"; });",
         "write \"/login/x\""},
        {"rules = ({ name = \"a\"; path = \"/a/../login\"; limit = \"1/s\"; });",
         "write \"/login\""},
        {"rules = ({ name = \"a\"; path = \"/./login\"; limit = \"1/s\"; });", "write \"/login\""},
        {"rules = ({ name = \"a\"; path_prefix = \"/%6cogin\"; limit = \"1/s\"; });",
         "write the byte that %6c stands for"},
        {"rules = ({ name = \"a\"; path = \"login\"; limit = \"1/s\"; });", "must start with '/'"},
        {"rules = ({ name = \"a\"; path = \"/a\\tb\"; limit = \"1/s\"; });", "control byte"},
        {"rules = ({ name = \"a\"; path_case_insensitive = 1; limit = \"1/s\"; });",
         "path_case_insensitive"},
        {"admin = { health_path = \"/api//health\"; };\nrules = ({ name = \"a\"; limit = "
         "\"1/s\"; });",
         "write \"/api/health\""},
        {"admin = { metrics_path = \"/m/.\"; };\nrules = ({ name = \"a\"; limit = \"1/s\"; });",
         "write \"/m/\""},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rl_error err;
        rl_config *cfg = load(t[i].text, &err);
        cr_expect_null(cfg, "%s loaded", t[i].text);
        rl_config_free(cfg);
        cr_expect(strstr(err.text, t[i].error) != NULL, "%s: \"%s\" does not say \"%s\"",
                  t[i].text, err.text, t[i].error);
    }
}

static int64_t now_ms = 1000000;
static int64_t clock_fn(void *ud)
{
    (void)ud;
    return now_ms;
}

static void drop(rl_limiter *lim, rl_config *cfg)
{
    char name[64];
    snprintf(name, sizeof name, "/rl-path-%d", (int)getpid());
    rl_limiter_close(lim);
    rl_config_free(cfg);
    shm_unlink(name);
    rl_stats_unlink(name);
}

/* The aliases a server serves as /login: after two, every one of them is refused. */
Test(path, aliases_share_one_limit)
{
    static const char *const aliases[] = {
        "/login",   "//login",  "/./login",  "/a/../login", "/%6cogin",  "/%6C%6f%67%69%6e",
        "/login/",  "/login?x", "/login#f",  "/../login",   "/%2e/login", "http://h/login",
        "/login;x", "/login/.", "/x/%2e%2e/login",
    };
    rl_error err;
    rl_config *cfg =
        load("rules = ({ name = \"login\"; path_prefix = \"/login\"; limit = \"2/m\"; },"
             "{ name = \"exact\"; path = \"/login\"; limit = \"2/m\"; key = \"header:x\";"
             "  on_missing_key = \"shared\"; });",
             &err);
    cr_assert_not_null(cfg, "%s", err.text);
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    rl_limiter_set_clock(lim, clock_fn, NULL);

    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        rl_decision d;
        rl_request req = {.remote_addr = "192.0.2.9", .path = aliases[i], .method = "GET"};
        cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
        cr_expect_eq(d.allowed, i < 2, "%s: allowed %d", aliases[i], d.allowed);
        cr_expect_geq(d.nresults, 1, "%s matched no rule", aliases[i]);
    }
    /* Refused forms never reach a rule, and are not charged. */
    static const char *const refused[] = {"/%2flogin", "/login%00", "/log%zzin", "*"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        rl_decision d;
        rl_request req = {.remote_addr = "192.0.2.10", .path = refused[i]};
        cr_assert_eq(rl_decide(lim, &req, &d), 0);
        cr_expect_eq(d.verdict, RL_VERDICT_BAD_PATH, "%s", refused[i]);
        cr_expect_eq(d.status, 400);
        cr_expect_eq(d.nresults, 0);
    }
    /* A caller that canonicalised already is taken at its word (not decoded twice). */
    rl_decision d;
    rl_request req = {.remote_addr = "192.0.2.11", .path = "/%6cogin", .path_canonical = 1};
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_expect_eq(d.nresults, 0);
    drop(lim, cfg);
}

Test(path, case_insensitive_rules)
{
    rl_error err;
    rl_config *cfg =
        load("rules = ({ name = \"p\"; path_prefix = \"/Login\"; path_case_insensitive = true;"
             "  limit = \"1/s\"; },"
             "{ name = \"e\"; path = \"/ADMIN\"; path_case_insensitive = true; limit = \"1/s\"; },"
             "{ name = \"r\"; path_regex = \"^/user/[a-z]+$\"; path_case_insensitive = true;"
             "  limit = \"1/s\"; },"
             "{ name = \"s\"; path_prefix = \"/login\"; limit = \"1/s\"; });",
             &err);
    cr_assert_not_null(cfg, "%s", err.text);
    static const struct {
        const char *path, *want;
    } t[] = {
        {"/login", "p s"},     {"/LOGIN", "p"},       {"/LoGiN/x", "p"}, {"/admin", "e"},
        {"/Admin/", "e"},      {"/admin/x", ""},      {"/USER/Bob", "r"}, {"/user/bob", "r"},
        {"/user/b0b", ""},     {"/l\xc3\xb6gin", ""}, /* no folding beyond ASCII */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rl_request req = {.path = t[i].path};
        char got[64] = "";
        for (size_t r = 0; r < cfg->nrules; r++)
            if (rl_rule_matches(&cfg->rules[r], &req, t[i].path) == 1) {
                strcat(got, got[0] ? " " : "");
                strcat(got, cfg->rules[r].name);
            }
        cr_expect_str_eq(got, t[i].want, "%s", t[i].path);
    }
    rl_config_free(cfg);
}
