/* test_rule.c -- which rules a request meets and the key each builds (rule.c, http.c)
 *
 * Rules come from real config text (so regexes are compiled as in production); requests are
 * rl_request values with a header table. Table-driven, with hostile values: control bytes,
 * the 0x1f separator, over-long material, values that look like digests.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_types.h"
#include "http.h"
#include "keys.h"
#include "leakcheck.h"
#include "rule.h"

TestSuite(rule, .fini = rl_test_leak_check);

static rl_config *load(const char *rules)
{
    char path[64];
    rl_error err;
    snprintf(path, sizeof path, "/tmp/rl-rule-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "rules = ( %s );\n", rules);
    fclose(f);
    rl_config *cfg = rl_config_load(path, &err);
    unlink(path);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

/* Headers as "name: value" lines in one string, names lowercase. */
typedef struct hdrs {
    const char *names[4], *values[4];
} hdrs;

static const char *get_header(void *ud, const char *name)
{
    const hdrs *h = ud;
    for (int i = 0; i < 4 && h->names[i] != NULL; i++)
        if (strcmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

Test(rule, matching)
{
    rl_config *cfg = load(
        "{ name = \"exact\"; path = \"/login\"; limit = \"1/s\"; },"
        "{ name = \"prefix\"; path_prefix = \"/api/\"; limit = \"1/s\"; },"
        "{ name = \"regex\"; path_regex = \"^/u/[0-9]+/avatar$\"; limit = \"1/s\"; },"
        "{ name = \"post\"; methods = [\"POST\", \"PUT\"]; limit = \"1/s\"; },"
        "{ name = \"host\"; hosts = [\"Example.COM\", \"::1\"]; limit = \"1/s\"; },"
        "{ name = \"all3\"; path_prefix = \"/api/\"; methods = [\"GET\"]; hosts = [\"a.test\"];"
        "  path_regex = \"/v[12]/\"; limit = \"1/s\"; },"
        "{ name = \"any\"; limit = \"1/s\"; }");
    static const struct {
        const char *method, *host, *path, *want; /* want: names of matching rules */
    } t[] = {
        {"GET", NULL, "/login", "exact any"},
        {"GET", NULL, "/login/", "exact any"}, /* an exact path also matches it + "/" */
        {"GET", NULL, "/Login", "any"},
        {"GET", NULL, "/api/x", "prefix any"},
        {"GET", NULL, "/api", "any"},
        {"GET", NULL, "/u/42/avatar", "regex any"},
        {"GET", NULL, "/u/42/avatar/", "any"},
        {"GET", NULL, "/u/x/avatar", "any"},
        {"POST", NULL, "/", "post any"},
        {"post", NULL, "/", "any"}, /* methods are case-sensitive */
        {"POS", NULL, "/", "any"},   /* a method or host matches whole, never a prefix of ... */
        {"POSTX", NULL, "/", "any"}, /* ... an entry, nor an entry a prefix of it */
        {"GET", "example.co", "/", "any"},
        {"GET", "example.comx", "/", "any"},
        {NULL, NULL, "/", "any"},
        {"GET", "example.com", "/", "host any"},
        {"GET", "EXAMPLE.com:8080", "/", "host any"},
        {"GET", "example.com.", "/", "host any"},
        {"GET", "[::1]:80", "/", "host any"},
        {"GET", "example.org", "/", "any"},
        {"GET", "", "/", "any"},
        {"GET", "a.test", "/api/v2/x", "prefix all3 any"},
        {"POST", "a.test", "/api/v2/x", "prefix post any"},
        {"GET", "a.test", "/api/v3/x", "prefix any"},
        {"GET", "b.test", "/api/v1/x", "prefix any"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rl_request req = {.method = t[i].method, .host = t[i].host, .path = t[i].path};
        char got[256] = "";
        for (size_t r = 0; r < cfg->nrules; r++)
            if (rl_rule_matches(&cfg->rules[r], &req, t[i].path)) {
                strcat(got, got[0] ? " " : "");
                strcat(got, cfg->rules[r].name);
            }
        cr_expect_str_eq(got, t[i].want, "%s %s %s", t[i].method, t[i].host, t[i].path);
    }
    rl_config_free(cfg);
}

static char scratch[RL_KEY_SCRATCH];

static const char *key_of(const rl_rule *rule, hdrs *h, const char *client)
{
    static char out[RL_CLIENT_MAX + 1];
    rl_request req = {.path = "/", .header = get_header, .header_ud = h};
    int n = rl_rule_key(rule, &req, client, scratch, out);
    if (n < 0)
        return "(missing)";
    cr_assert_eq((size_t)n, strlen(out));
    cr_assert_leq(n, RL_CLIENT_MAX);
    return out;
}

Test(rule, keys)
{
    rl_config *cfg = load(
        "{ name = \"c\"; limit = \"1/s\"; },"
        "{ name = \"h\"; key = \"header:X-Api-Key\"; limit = \"1/s\"; },"
        "{ name = \"k\"; key = \"cookie:session\"; limit = \"1/s\"; },"
        "{ name = \"ch\"; key = [\"client\", \"header:x-api-key\"]; limit = \"1/s\"; }");
    const rl_rule *c = &cfg->rules[0], *h = &cfg->rules[1], *k = &cfg->rules[2],
                  *ch = &cfg->rules[3];
    char long_value[9000];
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    long_value[RL_KEY_VALUE_MAX] = '\0'; /* exactly the longest value accepted */

    cr_assert_str_eq(h->key[0].name, "x-api-key"); /* header names are lowercased at load */
    struct {
        const rl_rule *rule;
        hdrs h;
        const char *want;
    } t[] = {
        {c, {{NULL}, {NULL}}, "192.0.2.1"},
        {h, {{"x-api-key"}, {"abc"}}, "abc"},
        {h, {{"x-api-key"}, {"  abc \t"}}, "abc"},
        {h, {{NULL}, {NULL}}, "(missing)"},
        {h, {{"x-api-key"}, {""}}, "(missing)"},
        {h, {{"x-api-key"}, {"   "}}, "(missing)"},
        {h, {{"x-api-key"}, {"a\x1f" "b"}}, "(missing)"},
        {h, {{"x-api-key"}, {"a\nb"}}, "(missing)"},
        {h, {{"x-api-key"}, {"a\x7f"}}, "(missing)"},
        {h, {{"x-api-key"}, {"caf\xc3\xa9"}}, "caf\xc3\xa9"}, /* UTF-8 is fine */
        /* "h:" is reserved for digests: a value that looks like one is digested too */
        {h, {{"x-api-key"}, {"h:0123"}}, "h:"},
        {k, {{"cookie"}, {"a=1; session=s1; b=2"}}, "s1"},
        {k, {{"cookie"}, {"session=\"quoted\""}}, "quoted"},
        {k, {{"cookie"}, {"Session=S; session=s2"}}, "s2"}, /* names are case-sensitive */
        {k, {{"cookie"}, {"xsession=1; session2=2"}}, "(missing)"},
        {k, {{"cookie"}, {"session="}}, "(missing)"},
        {k, {{"cookie"}, {"session"}}, "(missing)"},
        {k, {{"cookie"}, {";;; session = s3 ;"}}, "s3"},
        {k, {{"cookie"}, {"session=a\x1f" "b"}}, "(missing)"},
        {k, {{NULL}, {NULL}}, "(missing)"},
        {ch, {{"x-api-key"}, {"abc"}}, "192.0.2.1\x1f" "abc"},
        {ch, {{NULL}, {NULL}}, "(missing)"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *got = key_of(t[i].rule, &t[i].h, "192.0.2.1");
        if (strcmp(t[i].want, "h:") == 0)
            cr_expect(strncmp(got, "h:", 2) == 0 && strlen(got) == 34, "case %zu: %s", i, got);
        else
            cr_expect_str_eq(got, t[i].want, "case %zu", i);
    }

    /* Long material is digested, never truncated: two values alike in their first 64 bytes
     * get different keys, and the same value always the same key. */
    hdrs a = {{"x-api-key"}, {long_value}};
    char first[RL_CLIENT_MAX + 1];
    strcpy(first, key_of(h, &a, "x"));
    cr_assert_eq(strlen(first), 34);
    cr_assert_eq(strncmp(first, "h:", 2), 0);
    cr_assert_str_eq(key_of(h, &a, "x"), first);
    long_value[RL_KEY_VALUE_MAX - 1] = 'w';
    cr_assert_str_neq(key_of(h, &a, "x"), first);
    long_value[RL_KEY_VALUE_MAX] = 'v'; /* one byte over: missing */
    cr_assert_str_eq(key_of(h, &a, "x"), "(missing)");

    /* 64 bytes are kept as they are; 65 are digested. */
    char v64[66];
    memset(v64, 'a', 65);
    v64[64] = '\0';
    hdrs b = {{"x-api-key"}, {v64}};
    cr_assert_str_eq(key_of(h, &b, "x"), v64);
    v64[64] = 'a';
    v64[65] = '\0';
    cr_assert_eq(strlen(key_of(h, &b, "x")), 34);
    /* The composite: client + separator + 54 bytes = 64 kept, one more digested. */
    char v54[56];
    memset(v54, 'b', 55);
    v54[54] = '\0';
    hdrs c2 = {{"x-api-key"}, {v54}};
    cr_assert_eq(strlen(key_of(ch, &c2, "192.0.2.1")), 64);
    v54[54] = 'b';
    v54[55] = '\0';
    cr_assert_eq(strlen(key_of(ch, &c2, "192.0.2.1")), 34);
    rl_config_free(cfg);
}

/* The digest is part of the stored format: every host must compute the same one. */
Test(rule, digest_is_fixed)
{
    char out[35];
    rl_keys_digest("", 0, out);
    cr_assert_eq(strlen(out), 34);
    char again[35];
    rl_keys_digest("", 0, again);
    cr_assert_str_eq(out, again);
    rl_keys_digest("a", 1, again);
    cr_assert_str_neq(out, again);
    for (int i = 2; i < 34; i++)
        cr_assert(strchr("0123456789abcdef", out[i]) != NULL);
}

Test(rule, http_helpers)
{
    static const struct {
        const char *host, *want;
    } t[] = {
        {"example.com", "example.com"}, {"example.com:8080", "example.com"},
        {"[::1]:8080", "::1"},         {"[::1]", "::1"},
        {"[::1", ""},                  {"", ""},
        {" a.test ", "a.test"},        {"a.test.", "a.test"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *s;
        size_t n = rl_http_host(t[i].host, &s);
        cr_expect_eq(n, strlen(t[i].want), "%s", t[i].host);
        cr_expect(strncmp(s, t[i].want, n) == 0, "%s", t[i].host);
    }
    const char *s;
    cr_expect_eq(rl_http_host(NULL, &s), 0);
    const char *v;
    size_t n;
    cr_expect_eq(rl_http_cookie(NULL, "a", &v, &n), 0);
    cr_expect_eq(rl_http_cookie("a=\"\"", "a", &v, &n), 1);
    cr_expect_eq(n, 0);
    cr_expect_eq(rl_http_cookie("a=\"", "a", &v, &n), 1);
    cr_expect_eq(n, 1);
    rl_request req = {.path = "/"};
    cr_expect_null(rl_http_header(&req, "x"));
}

/* What a program reads of an opaque rule (rule_access.c) and the headers the rules' keys
 * read (rl_config_key_header: each name once, in rule order, "cookie" for every cookie). */
Test(rule, accessors_and_key_headers)
{
    rl_config *cfg = load(
        "{ name = \"plain\"; limit = \"1/s\"; },"
        "{ name = \"apikey\"; path_prefix = \"/api/\"; key = [\"header:X-Api-Key\"];"
        "  status = 503; body = \"slow down\"; limit = \"1/s\"; },"
        "{ name = \"exact\"; path = \"/login\"; key = [\"client\", \"cookie:sid\","
        "  \"header:x-api-key\", \"header:X-Tenant\"]; limit = \"1/s\"; },"
        "{ name = \"cookies\"; path_regex = \"^/x\"; key = [\"cookie:other\"]; limit = \"1/s\"; }");
    static const struct {
        const char *name, *body, *prefix;
    } want[] = {
        {"plain", NULL, "/"},
        {"apikey", "slow down", "/api/"},
        {"exact", NULL, NULL},
        {"cookies", NULL, NULL},
    };
    cr_assert_eq(rl_config_nrules(cfg), 4);
    for (size_t i = 0; i < 4; i++) {
        const rl_rule *r = rl_config_rule(cfg, i);
        cr_assert_str_eq(rl_rule_name(r), want[i].name);
        if (want[i].body == NULL)
            cr_assert_null(rl_rule_body(r), "%s", want[i].name);
        else
            cr_assert_str_eq(rl_rule_body(r), want[i].body);
        if (want[i].prefix == NULL)
            cr_assert_null(rl_rule_path_prefix(r), "%s", want[i].name);
        else
            cr_assert_str_eq(rl_rule_path_prefix(r), want[i].prefix);
    }
    static const char *const headers[] = {"x-api-key", "cookie", "x-tenant"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(rl_config_key_header(cfg, i), headers[i], "header %zu", i);
    cr_assert_null(rl_config_key_header(cfg, 3));
    cr_assert_null(rl_config_key_header(cfg, 100));
    rl_config_free(cfg);

    cfg = load("{ name = \"plain\"; limit = \"1/s\"; }");
    cr_assert_null(rl_config_key_header(cfg, 0), "a client key reads no header");
    rl_config_free(cfg);
}
