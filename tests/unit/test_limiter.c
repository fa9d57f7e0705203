/* test_limiter.c -- the whole core through its public API: config file in, decisions out
 *
 * Rules are written as real config files, decided through rl_decide with an injected clock,
 * on shared memory and on a real redis-server; Redis going away must change the backend, not
 * the answers.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "leakcheck.h"
#include "lib_redis_server.h"
#include "ratelimit.h"
#include "test_clock.h"

static char conf_path[256];
static rlt_redis srv;

static int64_t fixed_clock(void *ud)
{
    return *(const int64_t *)ud;
}

static void fini(void)
{
    rlt_redis_stop(&srv);
    if (conf_path[0] != '\0')
        unlink(conf_path);
    rl_test_leak_check();
}

TestSuite(limiter, .fini = fini);

/* Writes a config with the given rules and redis section; returns the loaded config. */
static rl_config *load(const char *redis, const char *rules)
{
    rl_error err;
    snprintf(conf_path, sizeof(conf_path), "/tmp/rl-limiter-%d.conf", (int)getpid());
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"/rl-limiter-%d\"; capacity = 1000; };\n", (int)getpid());
    fprintf(f, "redis: { %s };\nrules = ( %s );\n", redis, rules);
    fclose(f);
    rl_config *cfg = rl_config_load(conf_path, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

static rl_limiter *open_lim(const rl_config *cfg, int64_t *now)
{
    rl_error err;
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    rl_limiter_set_clock(lim, fixed_clock, now);
    return lim;
}

static void close_all(rl_limiter *lim, rl_config *cfg)
{
    char name[64];
    snprintf(name, sizeof(name), "/rl-limiter-%d", (int)getpid());
    rl_limiter_close(lim);
    rl_config_free(cfg);
    shm_unlink(name);
    rl_stats_unlink(name);
}

static rl_decision ask(rl_limiter *lim, const char *client, const char *path)
{
    rl_decision d;
    rl_request req = { .remote_addr = client, .path = path, .method = "GET", .cost = 1 };
    cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
    return d;
}

#define TWO_RULES                                                                            \
    "{ name = \"global\"; limit = \"10/m\"; },"                                              \
    "{ name = \"login\"; path_prefix = \"/login\"; limit = \"2/m\"; }"

Test(limiter, multi_rule_atomic_and_reported)
{
    int64_t now = 1700000000000;
    rl_config *cfg = load("enabled = false;", TWO_RULES);
    rl_limiter *lim = open_lim(cfg, &now);
    rl_decision d;

    d = ask(lim, "192.0.2.1", "/login");
    cr_assert(d.allowed);
    cr_assert_eq(d.nresults, 2);
    cr_assert_eq(d.backend, RL_BACKEND_SHM);
    cr_assert_str_eq(d.results[d.decider].rule->name, "login"); /* fewest remaining */
    ask(lim, "192.0.2.1", "/login");
    /* login is exhausted: refused by login, and global must not be charged for it */
    for (int i = 0; i < 5; i++) {
        d = ask(lim, "192.0.2.1", "/login/x");
        cr_assert_not(d.allowed);
        cr_assert_str_eq(d.results[d.decider].rule->name, "login");
        cr_assert_eq(d.retry_after_ms, 30000);
        cr_assert_eq(d.results[0].remaining, 8, "global charged by a refused request");
    }
    char buf[256];
    cr_assert_gt(rl_format_policy(&d, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "\"global\";q=10;w=60, \"login\";q=2;w=60");
    cr_assert_gt(rl_format_state(&d, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "\"global\";r=8;t=12, \"login\";r=0;t=30");
    cr_assert_eq(rl_format_state(&d, buf, 10), -1);
    /* other paths only see global, which still has 8 */
    for (int i = 0; i < 8; i++)
        cr_assert(ask(lim, "192.0.2.1", "/").allowed);
    cr_assert_not(ask(lim, "192.0.2.1", "/").allowed);
    /* another client is untouched */
    cr_assert(ask(lim, "192.0.2.2", "/login").allowed);
    close_all(lim, cfg);
}

/* The size of this test's segment, as created by the last rl_limiter_open. */
static size_t shm_bytes(void)
{
    char path[80];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/rl-limiter-%d", (int)getpid());
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (size_t)st.st_size;
}

/* Slots keep the most state words any rule needs: 2 for GCRA alone, the log's for a log. */
Test(limiter, slots_sized_by_the_rules_and_a_sliding_log_decides)
{
    int64_t now = 1700000000000;
    rl_config *cfg = load("enabled = false;", "{ name = \"api\"; limit = \"100/s\"; }");
    rl_limiter *lim = open_lim(cfg, &now);
    cr_assert_eq(shm_bytes(), rl_shm_size(1000, 3 + 9 + 1 + RL_CLIENT_MAX, 2)); /* "api:" + 8 hex */
    close_all(lim, cfg);

    cfg = load("enabled = false;", "{ name = \"api\"; limit = \"100/s\"; },"
                                   "{ name = \"login\"; path_prefix = \"/login\"; "
                                   "limit = \"3/s\"; algorithm = \"sliding_log\"; }");
    lim = open_lim(cfg, &now);
    cr_assert_eq(shm_bytes(), rl_shm_size(1000, 5 + 9 + 1 + RL_CLIENT_MAX, 4)); /* 2 + 3/2 up */
    for (int i = 0; i < 3; i++) {
        cr_assert(ask(lim, "192.0.2.1", "/login").allowed);
        now += 100;
    }
    rl_decision d = ask(lim, "192.0.2.1", "/login"); /* at +300: the first leaves at +1000 */
    cr_assert_not(d.allowed);
    cr_assert_eq(d.retry_after_ms, 700);
    cr_assert_eq(d.results[0].remaining, 100, "api (full again) not charged by the refusal");
    now += 699;
    cr_assert_not(ask(lim, "192.0.2.1", "/login").allowed);
    now += 1;
    cr_assert(ask(lim, "192.0.2.1", "/login").allowed);
    close_all(lim, cfg);
}

Test(limiter, no_match_and_bad_input)
{
    int64_t now = 1700000000000;
    rl_config *cfg = load("", "{ name = \"api\"; path_prefix = \"/api\"; limit = \"1/s\"; }");
    rl_limiter *lim = open_lim(cfg, &now);
    rl_decision d = ask(lim, "192.0.2.1", "/static");
    cr_assert(d.allowed);
    cr_assert_eq(d.nresults, 0);
    cr_assert_eq(d.decider, -1);
    cr_assert_eq(d.backend, RL_BACKEND_NONE);

    rl_request req = { .path = "/api" }; /* no remote_addr: no other field stands in for it */
    cr_assert_eq(rl_decide(lim, &req, &d), -1);
    cr_assert_str_eq(rl_limiter_errstr(lim), "no client identity");
    req.remote_addr = "";
    cr_assert_eq(rl_decide(lim, &req, &d), -1);
    cr_assert_str_eq(rl_limiter_errstr(lim), "no client identity");
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req.remote_addr = big; /* not an address: used as given, and digested for being long */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_eq(strlen(d.client), 34);
    cr_assert_eq(strncmp(d.client, "h:", 2), 0);
    req.remote_addr = "192.0.2.1";
    req.path = NULL; /* counts as "/" : no match */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_eq(d.nresults, 0);
    close_all(lim, cfg);
}

Test(limiter, redis_decides_then_shm_takes_over)
{
    int64_t now = 1700000000000;
    char redis[256];
    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    snprintf(redis, sizeof(redis),
             "enabled = true; port = %d; prefix = \"t%d:\"; command_timeout_ms = 2000;",
             srv.port, (int)getpid());
    rl_config *cfg = load(redis, "{ name = \"g\"; limit = \"3/m\"; }");
    rl_limiter *lim = open_lim(cfg, &now);

    rl_decision d = ask(lim, "192.0.2.9", "/");
    cr_assert(d.allowed);
    cr_assert_eq(d.backend, RL_BACKEND_REDIS);
    cr_assert_str_eq(rl_limiter_health(lim), "ok");
    rlt_redis_kill(&srv);
    /* Redis gone: same client, answers from shared memory (a separate store, so it starts
     * with a full bucket there), never an error */
    for (int i = 0; i < 3; i++) {
        d = ask(lim, "192.0.2.9", "/");
        cr_assert(d.allowed, "request %d", i);
        cr_assert_eq(d.backend, RL_BACKEND_SHM);
    }
    d = ask(lim, "192.0.2.9", "/");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.backend, RL_BACKEND_SHM);
    cr_assert_str_eq(rl_limiter_health(lim), "degraded");
    /* Redis back: after the reconnect backoff, decisions return to Redis */
    cr_assert_eq(rlt_redis_restart(&srv), 0);
    int back = 0;
    for (int i = 0; i < 200 && !back; i++) { /* up to 10 s on a loaded machine */
        rlt_sleep_ms(50);
        d = ask(lim, "192.0.2.10", "/");
        back = d.backend == RL_BACKEND_REDIS;
    }
    cr_assert(back, "decisions did not return to Redis");
    cr_assert_str_eq(rl_limiter_health(lim), "ok");
    close_all(lim, cfg);
}

/* A dry-run rule that refuses neither refuses the request nor stops the other rules from
 * being charged; it is reported (dry_run set) and left out of the headers. Same answers from
 * shared memory and from the Lua script. */
static void dry_run_case(const char *redis, rl_backend_kind want)
{
    int64_t now = 1700000000000;
    rl_config *cfg = load(redis, "{ name = \"dry\"; limit = \"1/m\"; dry_run = true; },"
                                 "{ name = \"real\"; limit = \"3/m\"; cost = 1; }");
    rl_limiter *lim = open_lim(cfg, &now);
    rl_decision d;

    for (int i = 0; i < 3; i++) {
        d = ask(lim, "192.0.2.30", "/");
        cr_assert(d.allowed, "request %d", i);
        cr_assert_eq(d.backend, want);
        cr_assert(d.results[0].dry_run);
        cr_assert_eq(d.results[0].allowed, i == 0, "dry-run result of request %d", i);
        cr_assert_eq(d.results[1].remaining, 2 - i, "real charged despite the dry run");
        cr_assert_eq(d.decider, 1);
    }
    char buf[256];
    cr_assert_gt(rl_format_state(&d, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "\"real\";r=0;t=60");
    d = ask(lim, "192.0.2.30", "/");
    cr_assert_not(d.allowed);
    cr_assert_eq(d.verdict, RL_VERDICT_LIMITED);
    cr_assert_eq(d.status, 429);
    cr_assert_str_eq(d.rule->name, "real");
    cr_assert_eq(d.retry_after_ms, 20000);
    close_all(lim, cfg);
}

Test(limiter, dry_run_on_shm)
{
    dry_run_case("enabled = false;", RL_BACKEND_SHM);
}

Test(limiter, dry_run_in_redis)
{
    char redis[256];
    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    /* Not about the deadline: a generous one (the default 50 ms may pass on a loaded machine). */
    snprintf(redis, sizeof(redis),
             "enabled = true; port = %d; prefix = \"dry%d:\"; command_timeout_ms = 2000;",
             srv.port, (int)getpid());
    dry_run_case(redis, RL_BACKEND_REDIS);
}

static const char *hdr_key(void *ud, const char *name)
{
    return strcmp(name, "x-api-key") == 0 ? ud : NULL;
}

Test(limiter, access_lists_missing_keys_and_cost)
{
    int64_t now = 1700000000000;
    char path[300];
    snprintf(path, sizeof path, "/tmp/rl-limiter-acl-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"/rl-limiter-%d\"; capacity = 1000; };\n"
               "access: { allow = [\"192.0.2.0/24\"]; deny = [\"192.0.2.66\", \"2001:db8::/32\"]; };\n"
               "rules = ( { name = \"key\"; path_prefix = \"/api\"; key = \"header:X-Api-Key\";"
               " on_missing_key = \"refuse\"; missing_key_status = 401; limit = \"10/m\"; cost = 4;"
               " status = 503; },"
               " { name = \"shared\"; path_prefix = \"/s\"; key = \"header:x-api-key\";"
               " on_missing_key = \"shared\"; limit = \"2/m\"; } );\n",
            (int)getpid());
    fclose(f);
    rl_error err;
    rl_config *cfg = rl_config_load(path, &err);
    unlink(path);
    cr_assert_not_null(cfg, "%s", err.text);
    rl_limiter *lim = open_lim(cfg, &now);
    rl_decision d;
    rl_request req = {.remote_addr = "192.0.2.66", .path = "/api", .header = hdr_key};

    /* deny wins over allow */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.verdict, RL_VERDICT_DENYLISTED);
    cr_assert_eq(d.status, 403);
    req.remote_addr = "2001:db8::5";
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_eq(d.verdict, RL_VERDICT_DENYLISTED);
    req.remote_addr = "192.0.2.1"; /* allow-listed: no rule consulted */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert(d.allowed);
    cr_assert_eq(d.verdict, RL_VERDICT_ALLOWLISTED);
    cr_assert_eq(d.nresults, 0);

    req.remote_addr = "203.0.113.1"; /* no key: refused with 401, nothing charged */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_not(d.allowed);
    cr_assert_eq(d.verdict, RL_VERDICT_MISSING_KEY);
    cr_assert_eq(d.status, 401);
    cr_assert_str_eq(d.rule->name, "key");

    req.header_ud = (void *)"k1"; /* cost 4 of 10: two admitted, the third refused (503) */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rl_decide(lim, &req, &d), 0);
        cr_assert_eq(d.allowed, i < 2, "request %d", i);
    }
    cr_assert_eq(d.status, 503);
    cr_assert_eq(d.results[0].remaining, 2);
    req.remote_addr = "203.0.113.2"; /* the key, not the address, is counted */
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_not(d.allowed);
    req.header_ud = (void *)"k2";
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert(d.allowed);

    /* shared: every request without a key shares one bucket, whatever its address */
    req.path = "/s";
    req.header_ud = NULL;
    const char *addrs[] = {"203.0.113.10", "203.0.113.11", "203.0.113.12"};
    for (int i = 0; i < 3; i++) {
        req.remote_addr = addrs[i];
        cr_assert_eq(rl_decide(lim, &req, &d), 0);
        cr_assert_eq(d.allowed, i < 2, "request %d", i);
    }
    close_all(lim, cfg);
}

/* --decide, the logs and the statistics name a decision's source with the same words. */
Test(limiter, backend_names_are_the_reported_sources)
{
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_NONE), "none");
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_SHM), "shm");
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_REDIS), "redis");
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_REFUSAL_CACHE), "refusal-cache");
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_FAIL_OPEN), "fail-open");
    cr_expect_str_eq(rl_backend_name(RL_BACKEND_FAIL_CLOSED), "fail-closed");
    cr_expect_str_eq(rl_backend_name((rl_backend_kind)99), "none");
}
