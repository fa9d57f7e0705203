/* test_stats.c -- the pool-wide counters: per-rule and global counts, slots across reloads
 * and processes, the latency histogram, the sandbox limiter never counted or shared, and an
 * upgrade's limiter replacing another build's statistics (the table kept) with a note, as -t's
 * plan says it will */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "leakcheck.h"
#include "ratelimit.h"
#include "stats.h"

static char conf_path[256];
static char shm_name[64];

static void fini(void)
{
    if (conf_path[0] != '\0')
        unlink(conf_path);
    if (shm_name[0] != '\0') {
        shm_unlink(shm_name);
        rl_stats_unlink(shm_name);
    }
    rl_test_leak_check();
}

TestSuite(stats, .fini = fini);

static rl_config *load(const char *rules)
{
    rl_error err;
    snprintf(conf_path, sizeof conf_path, "/tmp/rl-stats-%d.conf", (int)getpid());
    snprintf(shm_name, sizeof shm_name, "/rl-stats-%d", (int)getpid());
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"%s\"; capacity = 1000; };\n"
               "access: { allow = [\"192.0.2.0/24\"]; deny = [\"198.51.100.0/24\"]; };\n"
               "rules = ( %s );\n", shm_name, rules);
    fclose(f);
    rl_config *cfg = rl_config_load(conf_path, &err);
    cr_assert_not_null(cfg, "%s", err.text);
    return cfg;
}

static rl_limiter *open_lim(const rl_config *cfg)
{
    rl_error err;
    rl_limiter *lim = rl_limiter_open(cfg, &err);
    cr_assert_not_null(lim, "%s", err.text);
    return lim;
}

static void decide_n(rl_limiter *lim, const char *client, const char *path, int n)
{
    for (int i = 0; i < n; i++) {
        rl_decision d;
        rl_request req = {.remote_addr = client, .path = path, .method = "GET"};
        cr_assert_eq(rl_decide(lim, &req, &d), 0);
    }
}

static int64_t latency_total(const rl_stats *s)
{
    int64_t t = 0;
    for (int i = 0; i < RL_STATS_BUCKETS; i++)
        t += s->latency[i];
    return t;
}

Test(stats, burst_counts_exactly)
{
    static rl_stats s;
    rl_config *cfg = load("{ name = \"five\"; limit = \"5/m\"; },"
                          "{ name = \"dry\"; path_prefix = \"/d\"; limit = \"1/m\"; dry_run = true; }");
    rl_limiter *lim = open_lim(cfg);

    decide_n(lim, "203.0.113.1", "/x", 7);
    decide_n(lim, "192.0.2.9", "/x", 2);    /* allow-listed */
    decide_n(lim, "198.51.100.3", "/x", 3); /* deny-listed */
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.nrules, 2);
    cr_assert_eq(s.rules[0].rule, &cfg->rules[0]);
    cr_assert(s.rules[0].slotted);
    cr_assert_eq(s.rules[0].c[RL_STAT_ALLOWED], 5);
    cr_assert_eq(s.rules[0].c[RL_STAT_REFUSED], 2);
    cr_assert_eq(s.rules[0].c[RL_STAT_FALLBACK], 0);
    cr_assert_eq(s.global[RL_STAT_REQUESTS], 12);
    cr_assert_eq(s.global[RL_STAT_ACCESS_ALLOWED], 2);
    cr_assert_eq(s.global[RL_STAT_ACCESS_DENIED], 3);
    cr_assert_eq(latency_total(&s), 12);

    /* A dry-run refusal: counted as such, and the request, admitted, as allowed. */
    decide_n(lim, "203.0.113.2", "/d", 2);
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.rules[1].c[RL_STAT_ALLOWED], 2);
    cr_assert_eq(s.rules[1].c[RL_STAT_DRY_RUN_REFUSED], 1);
    cr_assert_eq(s.rules[1].c[RL_STAT_REFUSED], 0);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(stats, shared_by_processes_and_kept_by_name)
{
    static rl_stats s;
    rl_config *cfg = load("{ name = \"a\"; limit = \"100/m\"; }");
    rl_limiter *lim = open_lim(cfg);

    for (int p = 0; p < 3; p++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            rl_error err;
            rl_limiter *l2 = rl_limiter_open(cfg, &err);
            if (l2 == NULL)
                _exit(1);
            for (int i = 0; i < 10; i++) {
                rl_decision d;
                char client[32];
                snprintf(client, sizeof client, "203.0.113.%d", 10 + p);
                rl_request req = {.remote_addr = client, .path = "/"};
                if (rl_decide(l2, &req, &d) != 0)
                    _exit(1);
            }
            rl_limiter_close(l2);
            _exit(0);
        }
    }
    for (int p = 0; p < 3; p++) {
        int st;
        wait(&st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.rules[0].c[RL_STAT_ALLOWED], 30);
    rl_limiter_close(lim);
    rl_config_free(cfg);

    /* A reload with a new rule before it: "a" keeps its counts, "b" starts at 0. */
    cfg = load("{ name = \"b\"; path_prefix = \"/b\"; limit = \"1/m\"; },"
               "{ name = \"a\"; limit = \"100/m\"; }");
    lim = open_lim(cfg);
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.rules[0].c[RL_STAT_ALLOWED], 0);
    cr_assert_eq(s.rules[1].c[RL_STAT_ALLOWED], 30);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(stats, sandbox_is_private_and_uncounted)
{
    static rl_stats s;
    rl_config *cfg = load("{ name = \"one\"; limit = \"1/m\"; }");
    rl_limiter *lim = open_lim(cfg);
    rl_error err;
    rl_limiter *sb = rl_limiter_open_sandbox(cfg, &err);
    cr_assert_not_null(sb, "%s", err.text);
    rl_decision d;
    rl_request req = {.remote_addr = "203.0.113.7", .path = "/"};

    cr_assert_eq(rl_decide(sb, &req, &d), 0);
    cr_assert(d.allowed);
    cr_assert_eq(rl_decide(sb, &req, &d), 0);
    cr_assert_not(d.allowed, "the sandbox keeps its own state");
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert(d.allowed, "the real table was not touched by the sandbox");
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.global[RL_STAT_REQUESTS], 1);
    cr_assert_eq(s.rules[0].c[RL_STAT_ALLOWED], 1);
    rl_limiter_stats(sb, &s);
    cr_assert_eq(s.nrules, 0, "a sandbox has no statistics");
    rl_limiter_close(sb);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(stats, slots_and_histogram)
{
    rl_error err;
    char name[64];
    snprintf(shm_name, sizeof shm_name, "/rl-stats-%d", (int)getpid());
    rl_stats_unlink(shm_name);
    rl_stats_seg *st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    int first = rl_stats_slot(st, "x");
    cr_assert_geq(first, 0);
    cr_assert_eq(rl_stats_slot(st, "x"), first, "one name, one slot");
    for (int i = 1; i < RL_STATS_SLOTS; i++) {
        snprintf(name, sizeof name, "r%d", i);
        cr_assert_geq(rl_stats_slot(st, name), 0);
    }
    cr_assert_eq(rl_stats_slot(st, "one-too-many"), -1);
    cr_assert_eq(rl_stats_slot(st, "x"), first);

    rl_stats_latency(st, 0);
    rl_stats_latency(st, 1);
    rl_stats_latency(st, 3);
    rl_stats_latency(st, 65536);
    rl_stats_latency(st, 65537);
    static rl_stats s;
    rl_stats_read(st, &s);
    cr_assert_eq(s.latency[0], 2);
    cr_assert_eq(s.latency[2], 1);
    cr_assert_eq(s.latency[16], 1);
    cr_assert_eq(s.latency[17], 1);
    cr_assert_eq(s.global[RL_STAT_LATENCY_SUM_US], 1 + 3 + 65536 + 65537);
    rl_stats_close(st);
    cr_assert_eq(rl_stats_unlink(shm_name), 0);
    cr_assert_eq(rl_stats_unlink(shm_name), -1);
    shm_name[0] = '\0';
}

/* A catastrophic path_regex against a long non-matching path: the match stops at its limit
 * (RL_REGEX_MATCH_LIMIT), the rule does not match, the decision is made, and regex_limit
 * counts it. No timing is asserted: without the limit this would not return. */
Test(stats, regex_match_limit_is_a_non_match_and_counted)
{
    static char path[4096];
    static rl_stats s;
    rl_config *cfg = load("{ name = \"evil\"; path_regex = \"^/(a+)+$\"; limit = \"1/h\"; },"
                          "{ name = \"ok\"; path_regex = \"^/a+$\"; limit = \"1/h\"; }");
    rl_limiter *lim = open_lim(cfg);
    path[0] = '/';
    memset(path + 1, 'a', 3000);
    path[3001] = 'b';
    path[3002] = '\0';
    for (int i = 0; i < 3; i++) {
        rl_decision d;
        rl_request req = {.remote_addr = "203.0.113.7", .path = path, .method = "GET"};
        cr_assert_eq(rl_decide(lim, &req, &d), 0);
        cr_assert_eq(d.allowed, 1, "no rule matched, so the request passes");
        cr_assert_eq(d.nresults, 0);
    }
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.global[RL_STAT_REGEX_LIMIT], 3);
    /* An ordinary match on the same rule set still works, and is not counted. */
    decide_n(lim, "203.0.113.7", "/aaa", 1);
    rl_limiter_stats(lim, &s);
    cr_assert_eq(s.global[RL_STAT_REGEX_LIMIT], 3);
    cr_assert_eq(s.rules[1].c[RL_STAT_ALLOWED] + s.rules[0].c[RL_STAT_ALLOWED], 2); /* both */
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

/* After an upgrade: the statistics of another version are replaced when the limiter opens
 * (the counters restart, the open's note says so) while the table is kept (a spent client
 * stays spent); the plan (-t) said so beforehand and says nothing of it afterwards. */
Test(stats, upgrade_replaces_statistics_keeps_the_table)
{
    static rl_stats s;
    rl_config *cfg = load("{ name = \"one\"; limit = \"1/m\"; }");
    rl_limiter *lim = open_lim(cfg);
    char seg[80], plan[1024], want[200];
    uint32_t v = 2;
    rl_decision d;
    rl_request req = {.remote_addr = "203.0.113.7", .path = "/"};
    int fd;

    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert(d.allowed);
    cr_expect_str_eq(rl_limiter_shm_note(lim), "");
    rl_limiter_close(lim);
    snprintf(seg, sizeof seg, "%s-stats", shm_name);
    fd = shm_open(seg, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, &v, sizeof v, 8), (ssize_t)sizeof v); /* the version field */
    close(fd);

    cr_assert_eq(rl_limiter_shm_plan(cfg, plan, sizeof plan), RL_SHM_PLAN_KEEP, "%s", plan);
    snprintf(want, sizeof want,
             "; shm \"%s\": statistics of another version: replaced, counters restart "
             "(version 2, this build's 3)",
             seg);
    cr_expect(strstr(plan, want) != NULL, "%s", plan);
    cr_expect(strstr(plan, "fits") != NULL, "%s", plan);

    lim = open_lim(cfg);
    cr_expect(strncmp(rl_limiter_shm_note(lim), "shm \"", 5) == 0, "%s", rl_limiter_shm_note(lim));
    cr_expect(strstr(rl_limiter_shm_note(lim), "-stats\": statistics of another version (version 2, "
                                               "this build's 3) replaced: the counters restart") != NULL,
              "%s", rl_limiter_shm_note(lim));
    rl_limiter_stats(lim, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 0);
    cr_expect_eq(s.rules[0].c[RL_STAT_ALLOWED], 0);
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_expect_not(d.allowed, "the table kept the client's state");
    rl_limiter_stats(lim, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 1);
    cr_expect_eq(s.rules[0].c[RL_STAT_REFUSED], 1);
    rl_limiter_close(lim);
    cr_assert_eq(rl_limiter_shm_plan(cfg, plan, sizeof plan), RL_SHM_PLAN_KEEP, "%s", plan);
    cr_expect(strstr(plan, "statistics") == NULL, "%s", plan);
    rl_config_free(cfg);
}
