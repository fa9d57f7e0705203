/* test_keys.c -- the exact bytes of every store key (keys.c, format version 2); keys of
 * different rules or clients never collide; a flood of distinct clients keeps memory bounded
 *
 * Keys (keys.c):  shared memory  RULE ":" FP "\x1f" CLIENT
 *                 refusal cache  RULE ":" FP "\x1e" CLIENT
 *                 Redis          PREFIX "{" CLIENT "}:" RULE ":" FP
 * (FP: 8 hex digits fingerprinting the rule's algorithm, count, period and burst)
 * A rule name is 1..63 of [A-Za-z0-9_.-] (config.c), so it never holds 0x1f, '{', '}' or ':':
 * in shared memory the first 0x1f ends the rule name; in Redis the prefix is fixed and the
 * rule name is what follows the last "}:". Either way the key splits back into exactly one
 * (rule, client), whatever bytes the client holds: two different pairs cannot share a key.
 * The tests below prove it on the stores themselves with clients crafted to collide under a
 * naive concatenation, and check that the config refuses names that would break it.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "keys.h"
#include "leakcheck.h"
#include "lib_redis_server.h"
#include "ratelimit.h"
#include "test_clock.h"

static char conf_path[256];
static char shm_name[64];
static rlt_redis srv;

static void fini(void)
{
    rlt_redis_stop(&srv);
    if (conf_path[0] != '\0')
        unlink(conf_path);
    if (shm_name[0] != '\0') {
        shm_unlink(shm_name);
        rl_stats_unlink(shm_name);
    }
    rl_test_leak_check();
}

TestSuite(keys, .fini = fini);

static rl_config *load_text(const char *text, rl_error *err)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/rl-keys-%d.conf", (int)getpid());
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return rl_config_load(conf_path, err);
}

static rl_config *load(int64_t capacity, const char *redis, const char *rules)
{
    char text[2048];
    rl_error err;

    snprintf(shm_name, sizeof shm_name, "/rl-keys-%d", (int)getpid());
    snprintf(text, sizeof text, "shm: { name = \"%s\"; capacity = %lld; };\nredis: { %s };\n"
             "rules = ( %s );\n", shm_name, (long long)capacity, redis, rules);
    rl_config *cfg = load_text(text, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

/* Golden values: a change here changes what every host and Redis store under, so it must
 * come with a new RL_KEYS_VERSION and a rollout note in MANUAL.md. */
Test(keys, format_version_2_is_pinned)
{
    char out[RL_KEY_MAX + 1], ref[RL_KEY_MAX + 1];
    size_t n;

    cr_assert_eq(RL_KEYS_VERSION, 2);
    cr_assert_eq(RL_KEYS_PART_SEP, 0x1f);
    cr_assert_eq(RL_KEYS_RULE_SEP, 0x1f);
    cr_assert_eq(RL_KEYS_REFUSAL_SEP, 0x1e);

    rl_keys_digest("", 0, out);
    cr_assert_str_eq(out, "h:2ec7ab42b903770ed10f25cb92f55028");
    rl_keys_digest("192.0.2.1\x1f" "abc", 13, out);
    cr_assert_str_eq(out, "h:150bf915d4903651852827d7291e57ae");
    cr_assert_eq(strlen(out), RL_KEYS_DIGEST_LEN);

    cr_assert_eq(rl_keys_needs_digest("h:x", 3), 1);
    cr_assert_eq(rl_keys_needs_digest("h", 1), 0);
    cr_assert_eq(rl_keys_needs_digest("hx:", 3), 0);
    memset(ref, 'a', RL_CLIENT_MAX + 1);
    cr_assert_eq(rl_keys_needs_digest(ref, RL_CLIENT_MAX), 0);
    cr_assert_eq(rl_keys_needs_digest(ref, RL_CLIENT_MAX + 1), 1);

    /* The rule identity: NAME ":" 8 hex of SipHash("ALGO|COUNT|PERIOD_MS|BURST"). */
    rl_rule r = {.name = "api", .algo = RL_ALGO_GCRA, .count = 3, .period_ms = 3600000,
                 .burst = 3};
    char id[RL_RULE_ID_MAX];
    cr_assert_eq(rl_keys_rule_id(&r, id), 12);
    cr_assert_str_eq(id, "api:86edc1d6");
    r.count = r.burst = 10; /* a looser limit is another identity, so another state */
    rl_keys_rule_id(&r, id);
    cr_assert_str_eq(id, "api:10f8ffb4");
    r.algo = RL_ALGO_FIXED_WINDOW;
    rl_keys_rule_id(&r, id);
    cr_assert_str_eq(id, "api:568a9fa0");
    r.burst = 11;
    rl_keys_rule_id(&r, id);
    cr_assert_str_eq(id, "api:2ca739cc");
    r.period_ms = 1;
    rl_keys_rule_id(&r, id);
    cr_assert_str_eq(id, "api:332c87d6");

    n = rl_keys_shm("api:86edc1d6", 12, "192.0.2.1", 9, out);
    cr_assert_eq(n, 22);
    cr_assert_eq(memcmp(out, "api:86edc1d6\x1f" "192.0.2.1", 23), 0); /* with the NUL */
    cr_assert_eq(rl_keys_shm_max(12), 12 + 1 + RL_CLIENT_MAX);

    cr_assert_eq(rl_keys_refusal(out, n, 12, ref), 0);
    cr_assert_eq(memcmp(ref, "api:86edc1d6\x1e" "192.0.2.1", 23), 0);
    cr_assert_eq(rl_keys_refusal(out, n, 3, ref), -1, "the identity must end at the separator");
    cr_assert_eq(rl_keys_refusal(out, 12, 12, ref), -1);

    cr_assert_eq(rl_keys_redis_len(4, 9, 12), 4 + 1 + 9 + 2 + 12);
    char *end = rl_keys_redis(out, "rl1:", 4, "192.0.2.1", 9, "api:86edc1d6", 12);
    cr_assert_eq((size_t)(end - out), rl_keys_redis_len(4, 9, 12));
    cr_assert_eq(memcmp(out, "rl1:{192.0.2.1}:api:86edc1d6", 28), 0);
}

Test(keys, rule_names_cannot_hold_a_separator)
{
    static const char *const bad[] = {"a\\x1fb", "a}:b", "a{b", "a:b", "a}b", "a b", "a/b"};
    char text[512];
    rl_error err;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "rules = ( { name = \"%s\"; limit = \"1/s\"; } );\n", bad[i]);
        rl_config *cfg = load_text(text, &err);
        cr_expect_null(cfg, "rule name \"%s\" was accepted", bad[i]);
        rl_config_free(cfg);
    }
}

/* Clients crafted so that naive keys would collide: with rule "a" vs rule "ab" ("a"+"bc" =
 * "ab"+"c"), with the shm separator inside the client, with Redis' "}:" and braces inside. */
static const char *const crafted[] = {
    "bc", "c", "b\x1f" "c", "\x1f" "c", "a\x1f" "b", "\x1f",
    "x}:a", "x", "x}", "{x}", "x}:ab", "}:", "x:a", "{", "b\x1f" "c}:a",
};
#define NCRAFTED (sizeof crafted / sizeof crafted[0])

static int64_t fixed_clock(void *ud)
{
    return *(const int64_t *)ud;
}

/* Every (rule, client) pair gets its own allowance of 1: each first request is admitted
 * (a collision would find the key already spent), each second one refused. */
static void no_collisions(rl_limiter *lim, rl_backend_kind want)
{
    static const char *const paths[] = {"/a", "/b"}; /* rule "a", rule "ab" */
    rl_decision d;

    for (int round = 0; round < 2; round++)
        for (size_t p = 0; p < 2; p++)
            for (size_t i = 0; i < NCRAFTED; i++) {
                rl_request req = {.remote_addr = crafted[i], .path = paths[p], .cost = 1};
                cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
                if (strchr(crafted[i], '\x1f') != NULL) {
                    /* Key material never holds a control byte (rule.c): such an identity
                     * gives no key, and the rule is skipped (on_missing_key's default). */
                    cr_assert_eq(d.nresults, 0, "client #%zu was keyed", i);
                    continue;
                }
                cr_assert_eq(d.nresults, 1);
                cr_assert_eq(d.backend, want, "client %zu: backend %d (%s)", i, d.backend,
                             rl_limiter_errstr(lim));
                cr_assert_eq(d.allowed, round == 0,
                             "round %d, rule %s, client #%zu: allowed %d (keys collided)",
                             round, paths[p], i, d.allowed);
            }
}

#define KEY_RULES                                                                            \
    "{ name = \"a\"; path_prefix = \"/a\"; limit = \"1/h\"; },"                                \
    "{ name = \"ab\"; path_prefix = \"/b\"; limit = \"1/h\"; }"

Test(keys, crafted_clients_never_share_a_key_in_shm)
{
    int64_t now = 1700000000000;
    rl_error err;
    rl_config *cfg = load(1000, "enabled = false;", KEY_RULES);
    rl_limiter *lim = rl_limiter_open(cfg, &err);

    cr_assert_not_null(lim, "%s", err.text);
    rl_limiter_set_clock(lim, fixed_clock, &now);
    no_collisions(lim, RL_BACKEND_SHM);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(keys, crafted_clients_never_share_a_key_in_redis)
{
    char redis[256];
    rl_error err;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    snprintf(redis, sizeof redis, "enabled = true; port = %d; prefix = \"k%d:\"; "
             "command_timeout_ms = 2000;", srv.port, (int)getpid());
    rl_config *cfg = load(1000, redis, KEY_RULES);
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    no_collisions(lim, RL_BACKEND_REDIS);

    /* And Redis holds exactly one key per pair. */
    redisContext *c = rlt_redis_client(&srv);
    cr_assert_not_null(c);
    redisReply *r = redisCommand(c, "DBSIZE");
    cr_assert_not_null(r);
    size_t keyed = 0; /* identities with a control byte get no key (see no_collisions) */
    for (size_t i = 0; i < NCRAFTED; i++)
        keyed += strchr(crafted[i], '\x1f') == NULL;
    cr_expect_eq(r->integer, (long long)(2 * keyed), "%lld keys in Redis for %zu pairs",
                 r->integer, 2 * keyed);
    freeReplyObject(r);
    redisFree(c);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One million distinct clients through rl_decide on a table of 10000 keys: every decision is
 * made (all admitted: each client is new), the segment keeps its size, the process' RSS stops
 * growing once the table is full, and the evictions are counted. */
Test(keys, a_million_clients_keep_memory_bounded, .timeout = 60)
{
    enum { CLIENTS = 1000000, CAPACITY = 10000 };
    rl_error err;
    struct stat st0, st1;
    char client[32];
    rl_decision d;
    rl_config *cfg = load(CAPACITY, "enabled = false;",
                          "{ name = \"f\"; path_prefix = \"/\"; limit = \"10/h\"; }");
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);

    int fd = shm_open(shm_name, O_RDONLY, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(fstat(fd, &st0), 0);
    long rss_warm = 0;
    long admitted = 0;
    double t0 = mono_s();
    for (long i = 0; i < CLIENTS; i++) {
        /* Distinct IPv4 addresses in 10.0.0.0/8 (IPv6 would be grouped by /64). */
        snprintf(client, sizeof client, "10.%lu.%lu.%lu", (unsigned long)(i >> 16),
                 (unsigned long)((i >> 8) & 0xff), (unsigned long)(i & 0xff));
        rl_request req = {.remote_addr = client, .path = "/", .cost = 1};
        cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
        cr_assert_eq(d.backend, RL_BACKEND_SHM, "decision %ld: no store decided (%s)", i,
                     rl_limiter_errstr(lim));
        admitted += d.allowed;
        if (i == 4 * CAPACITY)
            rss_warm = rss_kb(); /* the table is full and every slot touched */
    }
    double secs = mono_s() - t0;
    long rss_end = rss_kb();
    cr_assert_eq(fstat(fd, &st1), 0);
    close(fd);

    /* A second handle on the same segment reads its counters. */
    rl_shm *shm = rl_shm_open(shm_name, CAPACITY, rl_keys_shm_max(cfg->rules[0].key_id_len), 2, &err);
    cr_assert_not_null(shm, "%s", err.text);
    rl_shm_stat s;
    cr_assert_eq(rl_shm_stats(shm, &s), 0);
    rl_shm_close(shm);

    fprintf(stderr,
            "FIGURE: flood: %d distinct clients on a %d-key table: %ld admitted, %.2f s "
            "(%.0f decisions/s), segment %lld -> %lld bytes, RSS %ld -> %ld KiB after the "
            "table filled, %lld entries, %lld evictions, %lld expired reclaimed, %lld insert "
            "failures\n",
            CLIENTS, CAPACITY, admitted, secs, CLIENTS / secs, (long long)st0.st_size,
            (long long)st1.st_size, rss_warm, rss_end, (long long)s.entries,
            (long long)s.evictions, (long long)s.expired_reclaimed,
            (long long)s.insert_failures);
    cr_expect_eq(admitted, CLIENTS, "every new client is admitted");
    cr_expect_eq(st0.st_size, st1.st_size, "the segment keeps its size");
    cr_expect_leq(rss_end - rss_warm, 2048, "RSS grew by %ld KiB after the table filled",
                  rss_end - rss_warm);
    cr_expect_leq(s.entries, CAPACITY);
    cr_expect_geq(s.evictions + s.expired_reclaimed, CLIENTS - CAPACITY,
                  "every insert past the capacity evicted or reclaimed a key");
    cr_expect_eq(s.insert_failures, 0);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}
