/* test_failover.c -- the circuit breaker, alone and through rl_decide with a real Redis
 *
 * The breaker's state machine is tested with an injected clock; everything else goes through
 * the public API with config files, against a redis-server that is killed, stopped (SIGSTOP)
 * or replaced by a socket that never answers, and checks what a client would see: no error,
 * a decision from the configured fallback, bounded latency, the health string, and Redis
 * taking over again.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "failover.h"
#include "leakcheck.h"
#include "lib_redis_fake.h"
#include "lib_redis_server.h"
#include "config_types.h"
#include "ratelimit.h"

static char conf_path[256];
static char shm_name[64];
static rlt_redis srv;
static rlt_fake fake;

static void fini(void)
{
    rlt_fake_stop(&fake);
    if (srv.pid > 0)
        kill(srv.pid, SIGCONT);
    rlt_redis_stop(&srv);
    if (conf_path[0] != '\0')
        unlink(conf_path);
    if (shm_name[0] != '\0') {
        shm_unlink(shm_name);
        rl_stats_unlink(shm_name);
    }
    rl_test_leak_check();
}

TestSuite(failover, .fini = fini, .timeout = 60);

/* ---- the state machine ------------------------------------------------------------------ */

Test(failover, breaker_opens_after_n_failures_and_half_opens_after_t)
{
    rl_breaker b;

    rl_breaker_init(&b, 3, 1000, 1000);
    cr_assert(rl_breaker_allow(&b, 0));
    rl_breaker_failure(&b, 0);
    rl_breaker_failure(&b, 1);
    cr_assert(rl_breaker_allow(&b, 2), "two failures do not open it");
    rl_breaker_success(&b);
    rl_breaker_failure(&b, 3);
    rl_breaker_failure(&b, 4);
    cr_assert(rl_breaker_allow(&b, 5), "a success resets the count");
    rl_breaker_failure(&b, 10);
    cr_assert_eq(b.state, RL_BREAKER_OPEN);
    cr_assert_not(rl_breaker_allow(&b, 10));
    cr_assert_eq(rl_breaker_remaining(&b, 10), 1000);
    cr_assert_not(rl_breaker_allow(&b, 1009));
    cr_assert_eq(rl_breaker_remaining(&b, 1009), 1);
    cr_assert(rl_breaker_allow(&b, 1010), "half-open: one probe");
    cr_assert_eq(b.state, RL_BREAKER_HALF_OPEN);
    rl_breaker_failure(&b, 1015);
    cr_assert_eq(b.state, RL_BREAKER_OPEN, "a failed probe re-opens at once");
    cr_assert_not(rl_breaker_allow(&b, 2014));
    cr_assert(rl_breaker_allow(&b, 2015));
    rl_breaker_success(&b);
    cr_assert_eq(b.state, RL_BREAKER_CLOSED);
    cr_assert_eq(rl_breaker_remaining(&b, 2016), 0);
    cr_assert_eq(b.opened, 2);
}

Test(failover, failed_probes_back_off_exponentially_up_to_the_cap)
{
    rl_breaker b;

    rl_breaker_init(&b, 1, 100, 400);
    rl_breaker_failure(&b, 0);
    cr_assert_eq(rl_breaker_remaining(&b, 0), 100, "first open: open_ms");
    cr_assert(rl_breaker_allow(&b, 100));
    rl_breaker_failure(&b, 100);
    cr_assert_eq(rl_breaker_remaining(&b, 100), 200, "a failed probe doubles it");
    cr_assert_not(rl_breaker_allow(&b, 299));
    cr_assert(rl_breaker_allow(&b, 300));
    rl_breaker_failure(&b, 300);
    cr_assert_eq(rl_breaker_remaining(&b, 300), 400);
    cr_assert(rl_breaker_allow(&b, 700));
    rl_breaker_failure(&b, 700);
    cr_assert_eq(rl_breaker_remaining(&b, 700), 400, "capped at open_max_ms");
    cr_assert(rl_breaker_allow(&b, 1100));
    rl_breaker_success(&b);
    rl_breaker_failure(&b, 1200);
    cr_assert_eq(rl_breaker_remaining(&b, 1200), 100, "a success resets the back-off");
}

/* ---- through the limiter ---------------------------------------------------------------- */

static rl_config *load(const char *redis, const char *rules)
{
    rl_error err;
    FILE *f;

    snprintf(conf_path, sizeof(conf_path), "/tmp/rl-failover-%d.conf", (int)getpid());
    snprintf(shm_name, sizeof(shm_name), "/rl-failover-%d", (int)getpid());
    f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "shm: { name = \"%s\"; capacity = 1000; };\n", shm_name);
    fprintf(f, "redis: { enabled = true; prefix = \"t%d:\"; %s };\nrules = ( %s );\n",
            (int)getpid(), redis, rules);
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

static rl_decision ask(rl_limiter *lim, const char *client)
{
    rl_decision d;
    rl_request req = {.remote_addr = client, .path = "/", .cost = 1};
    cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
    return d;
}

/* command_ms: short only where a test is about the timeout; elsewhere generous, so that a
 * loaded machine (ASan, 2 shared cores) does not turn a slow answer into a fallback. */
static void redis_section(char *buf, size_t size, int command_ms, const char *extra)
{
    snprintf(buf, size, "port = %d; command_timeout_ms = %d; connect_timeout_ms = 2000; %s",
             srv.port, command_ms, extra);
}

/* A killed server refuses at once: no deadline is involved, only the breaker. */
Test(failover, killed_mid_burst_then_back_once_the_breaker_closes)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    long long t, seen_degraded = -1, killed, restarted;
    int admitted = 0;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    redis_section(redis, sizeof(redis), 2000, "breaker_open_ms = 800;");
    cfg = load(redis, "{ name = \"global\"; limit = \"1000/m\"; }");
    lim = open_lim(cfg);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(ask(lim, "c1").backend, RL_BACKEND_REDIS);
    cr_assert_str_eq(rl_limiter_health(lim), "ok");

    rlt_redis_kill(&srv);
    killed = rlt_now_ms();
    for (int i = 0; i < 200; i++) {
        rl_decision d = ask(lim, "c1");
        cr_assert_eq(d.backend, RL_BACKEND_SHM, "request %d", i);
        admitted += d.allowed;
        if (seen_degraded < 0 && strcmp(rl_limiter_health(lim), "degraded") == 0)
            seen_degraded = rlt_now_ms() - killed;
    }
    cr_assert_eq(admitted, 200, "shm decides with the same rule");
    cr_assert(seen_degraded >= 0 && seen_degraded < 3000, "degraded after %lld ms",
              seen_degraded);

    cr_assert_eq(rlt_redis_restart(&srv), 0);
    restarted = rlt_now_ms();
    t = restarted;
    while (ask(lim, "c1").backend != RL_BACKEND_REDIS) {
        /* breaker_open_ms 800, plus a generous margin for a loaded machine. */
        cr_assert_lt(rlt_now_ms() - restarted, 800 + 2500, "not back on Redis within 3.3 s");
        rlt_sleep_ms(5);
    }
    cr_assert_str_eq(rl_limiter_health(lim), "ok");
    (void)t;
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(failover, stopped_server_no_decision_waits_longer_than_the_timeout)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    long long worst = 0;
    int slow = 0;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    redis_section(redis, sizeof(redis), 50, "breaker_failures = 3; breaker_open_ms = 400;");
    cfg = load(redis, "{ name = \"global\"; limit = \"100000/m\"; }");
    lim = open_lim(cfg);
    /* Up once within a generous bound: a loaded machine may miss the 50 ms of a first try (a
     * success closes the breaker again). */
    long long start = rlt_now_ms();
    while (ask(lim, "c2").backend != RL_BACKEND_REDIS && rlt_now_ms() - start < 10000)
        rlt_sleep_ms(50);
    cr_assert_eq(ask(lim, "c2").backend, RL_BACKEND_REDIS);
    cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
    start = rlt_now_ms();
    while (rlt_now_ms() - start < 2000) {
        long long t = rlt_now_ms();
        rl_decision d = ask(lim, "c2");
        long long took = rlt_now_ms() - t;
        cr_assert_eq(d.backend, RL_BACKEND_SHM);
        if (took > worst)
            worst = took;
        slow += took >= 40;
    }
    /* 50 ms command timeout (+ generous scheduling slack on a loaded machine: a stuck decision
     * would take forever); only the first 3 calls and one probe per 400 ms open wait at all:
     * ~3 + 4 in 2 s, against ~40 if every decision waited. The upper bound leaves room for
     * decisions that a loaded machine descheduled for 40 ms. */
    cr_assert_lt(worst, 50 + 2500, "a decision took %lld ms", worst);
    cr_assert(slow >= 3 && slow <= 20, "%d decisions waited for the timeout", slow);
    cr_assert_str_eq(rl_limiter_health(lim), "degraded");
    cr_assert_eq(kill(srv.pid, SIGCONT), 0);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

/* A reply that drips forever, one byte every 30 ms under a 50 ms timeout (a per-read timeout
 * would never fire): each decision ends by the timeout as a failure the breaker counts, and
 * after breaker_failures of them Redis is skipped. */
Test(failover, dripping_reply_is_a_timeout_the_breaker_counts)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    long long t, worst = 0;

    fake = (rlt_fake){.mode = RLT_FAKE_DRIP, .target = "EVALSHA", .drip_ms = 30};
    cr_assert_eq(rlt_fake_start(&fake), 0);
    snprintf(redis, sizeof(redis), "port = %d; command_timeout_ms = 50; breaker_failures = 3; "
             "breaker_open_ms = 60000;", fake.port);
    cfg = load(redis, "{ name = \"global\"; limit = \"100000/m\"; }");
    lim = open_lim(cfg);
    for (int i = 0; i < 3; i++) {
        t = rlt_now_ms();
        cr_assert_eq(ask(lim, "c4").backend, RL_BACKEND_SHM, "decision %d", i);
        t = rlt_now_ms() - t;
        worst = t > worst ? t : worst;
    }
    cr_assert_lt(worst, 50 + 2500, "a decision took %lld ms", worst);
    /* Held until the deadline: a decision that failed sooner failed before the drip (e.g. at
     * SCRIPT LOAD) and tested nothing. */
    cr_assert_geq(worst, 40, "no decision waited for the drip (%lld ms)", worst);
    cr_assert_str_eq(rl_limiter_health(lim), "degraded");
    /* Open: 100 decisions that would each wait 50 ms if Redis were still asked. */
    t = rlt_now_ms();
    for (int i = 0; i < 100; i++)
        cr_assert_eq(ask(lim, "c4").backend, RL_BACKEND_SHM);
    cr_assert_lt(rlt_now_ms() - t, 2000, "the breaker did not open");
    fprintf(stderr,
            "FIGURE: dripping Redis reply (1 byte / 30 ms, command_timeout_ms 50): 3 decisions "
            "of at most %lld ms each, then the breaker skips Redis\n",
            worst);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

/* A socket that listens but never accepts: connects succeed (the kernel's backlog) and then
 * every command times out. Counting what is queued counts the connection attempts. */
static int silent_listener(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 64), 0);
    cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int count_attempts(int lfd)
{
    int n = 0, fd;

    while ((fd = accept(lfd, NULL, NULL)) >= 0 ||
           (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
        close(fd);
        n++;
    }
    return n;
}

Test(failover, open_breaker_does_no_network_io_then_probes_once)
{
    char redis[256];
    int port, lfd = silent_listener(&port);
    rl_config *cfg;
    rl_limiter *lim;
    long long t;

    /* Open for 3 s: what runs while open (150 decisions) must not outlast it on a loaded
     * machine, or a probe would be counted. */
    snprintf(redis, sizeof(redis), "port = %d; command_timeout_ms = 100; breaker_failures = 2; "
             "breaker_open_ms = 3000;", port);
    cfg = load(redis, "{ name = \"global\"; limit = \"100000/m\"; }");
    lim = open_lim(cfg);
    ask(lim, "c3");
    ask(lim, "c3");
    cr_assert_eq(count_attempts(lfd), 2, "each closed-breaker failure reconnects");
    t = rlt_now_ms();
    for (int i = 0; i < 100; i++)
        cr_assert_eq(ask(lim, "c3").backend, RL_BACKEND_SHM);
    /* 100 x 100 ms if each waited; the count below is the exact proof. */
    cr_assert_lt(rlt_now_ms() - t, 2000, "decisions while open waited");
    cr_assert_eq(count_attempts(lfd), 0, "a decision while open touched the network");
    rlt_sleep_ms(3010);
    ask(lim, "c3"); /* the probe */
    for (int i = 0; i < 50; i++)
        ask(lim, "c3");
    cr_assert_eq(count_attempts(lfd), 1, "half-open lets exactly one probe through");
    close(lfd);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

static int free_port(void)
{
    int port = rlt_free_port();
    cr_assert_gt(port, 0);
    return port;
}

Test(failover, fail_open_and_fail_closed_rules)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    rl_decision d;

    snprintf(redis, sizeof(redis), "port = %d; breaker_failures = 1; breaker_open_ms = 5000;",
             free_port());
    cfg = load(redis, "{ name = \"global\"; limit = \"2/m\"; on_redis_down = \"open\"; },"
                      "{ name = \"api\"; path_prefix = \"/api\"; limit = \"100/m\";"
                      "  on_redis_down = \"closed\"; }");
    lim = open_lim(cfg);
    for (int i = 0; i < 5; i++) {
        d = ask(lim, "c4");
        cr_assert_eq(d.allowed, 1, "fail open admits everything");
        cr_assert_eq(d.backend, RL_BACKEND_FAIL_OPEN);
        cr_assert_eq(d.nresults, 1);
        cr_assert_eq(d.results[0].remaining, 2);
    }
    cr_assert_str_eq(rl_limiter_health(lim), "down");

    rl_request req = {.remote_addr = "c4", .path = "/api/x", .cost = 1};
    cr_assert_eq(rl_decide(lim, &req, &d), 0);
    cr_assert_eq(d.allowed, 0, "fail closed refuses");
    cr_assert_eq(d.backend, RL_BACKEND_FAIL_CLOSED);
    cr_assert_eq(d.nresults, 1, "only the refusing rule is listed");
    cr_assert_str_eq(d.results[0].rule->name, "api");
    /* What is left of breaker_open_ms 5000 (a loaded machine may take a while to get here),
     * well above the 1000 ms floor. */
    cr_assert(d.retry_after_ms > 2000 && d.retry_after_ms <= 5000, "retry %lld",
              (long long)d.retry_after_ms);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(failover, fail_closed_says_at_least_one_second)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    rl_decision d;

    snprintf(redis, sizeof(redis), "port = %d; breaker_failures = 1; breaker_open_ms = 100;",
             free_port());
    cfg = load(redis, "{ name = \"global\"; limit = \"2/m\"; on_redis_down = \"closed\"; }");
    lim = open_lim(cfg);
    d = ask(lim, "c5");
    cr_assert_eq(d.allowed, 0);
    cr_assert_eq(d.retry_after_ms, 1000);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(failover, shm_fallback_decides_this_hosts_share)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *lim;
    int admitted = 0;

    snprintf(redis, sizeof(redis), "port = %d; hosts = 4;", free_port());
    cfg = load(redis, "{ name = \"global\"; limit = \"10/m\"; },"
                      "{ name = \"tiny\"; limit = \"3/m\"; burst = 2; }");
    lim = open_lim(cfg);
    for (int i = 0; i < 10; i++) {
        rl_decision d = ask(lim, "c6");
        cr_assert_eq(d.backend, RL_BACKEND_SHM);
        cr_assert_eq(d.results[0].rule, &cfg->rules[0], "results name the config's rules");
        cr_assert_eq(d.results[0].limit, 2, "10 / 4 hosts");
        cr_assert_eq(d.results[1].limit, 1, "3 / 4 hosts, at least 1");
        admitted += d.allowed;
    }
    cr_assert_eq(admitted, 1, "burst 2 / 4 hosts -> 1");
    cr_assert_str_eq(rl_limiter_health(lim), "degraded");
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

/* The seed's defaults as sliding logs through an outage, two hosts: this host's share, 100 of
 * the general 200 and 50 of chat's 100; one host: the whole 200 (bucketed) and 100. The
 * general rule alone at two hosts: its share, an exact log of 100, keeps more state words
 * than the bucketed 200 (the table is sized for both). Each case its own clients: a state is
 * kept under the configured rule's identity, whatever the share. */
Test(failover, sliding_log_fallback_decides_this_hosts_share)
{
#define GENERAL "{ name = \"general\"; limit = \"200/m\"; algorithm = \"sliding_log\"; }"
    static const char both[] = "{ name = \"chat\"; path_prefix = \"/chat\"; limit = \"100/m\"; "
                               "algorithm = \"sliding_log\"; }," GENERAL;
    static const struct {
        int hosts;
        const char *rules;
        int64_t general, chat;
    } cases[] = {{2, both, 100, 50}, {1, both, 200, 100}, {2, GENERAL, 100, 100}};
#undef GENERAL

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char redis[256], general[16], chatter[16];
        snprintf(redis, sizeof(redis), "port = %d; hosts = %d;", free_port(), cases[c].hosts);
        snprintf(general, sizeof general, "g%zu", c);
        snprintf(chatter, sizeof chatter, "c%zu", c);
        rl_config *cfg = load(redis, cases[c].rules);
        rl_limiter *lim = open_lim(cfg);
        int64_t admitted = 0, chat = 0;
        for (int i = 0; i < 300; i++) {
            rl_decision d = ask(lim, general);
            cr_assert_eq(d.backend, RL_BACKEND_SHM, "%s", rl_limiter_errstr(lim));
            cr_assert_eq(d.results[0].limit, cases[c].general);
            admitted += d.allowed;
        }
        cr_assert_eq(admitted, cases[c].general, "%d host(s): %lld admitted", cases[c].hosts,
                     (long long)admitted);
        for (int i = 0; i < 300; i++) {
            rl_request req = {.remote_addr = chatter, .path = "/chat", .cost = 1};
            rl_decision d;
            cr_assert_eq(rl_decide(lim, &req, &d), 0, "%s", rl_limiter_errstr(lim));
            cr_assert_eq(d.backend, RL_BACKEND_SHM);
            chat += d.allowed;
        }
        cr_assert_eq(chat, cases[c].chat, "%d host(s): %lld chat admitted", cases[c].hosts,
                     (long long)chat);
        rl_limiter_close(lim);
        rl_config_free(cfg);
    }
}

Test(failover, two_limiters_sharing_redis_admit_exactly_the_allowance)
{
    char redis[256];
    rl_config *cfg;
    rl_limiter *a, *b;
    int admitted = 0;

    cr_assert_eq(rlt_redis_start(&srv, NULL), 0);
    redis_section(redis, sizeof(redis), 2000, "");
    cfg = load(redis, "{ name = \"global\"; limit = \"25/h\"; algorithm = \"sliding_window\"; },"
                      "{ name = \"gcra\"; limit = \"40/h\"; }");
    a = open_lim(cfg);
    /* A second limiter with its own shm segment: only Redis is shared. */
    rl_config *cfg2 = load(redis, "{ name = \"global\"; limit = \"25/h\"; algorithm = "
                                  "\"sliding_window\"; }, { name = \"gcra\"; limit = \"40/h\"; }");
    free(cfg2->shm.name);
    cfg2->shm.name = strdup("/rl-failover-other");
    b = open_lim(cfg2);
    for (int i = 0; i < 60; i++) {
        rl_decision d = ask(i % 2 ? a : b, "shared-client");
        cr_assert_eq(d.backend == RL_BACKEND_REDIS || d.backend == RL_BACKEND_REFUSAL_CACHE, 1);
        admitted += d.allowed;
    }
    cr_assert_eq(admitted, 25);
    rl_limiter_close(a);
    rl_limiter_close(b);
    rl_config_free(cfg);
    rl_config_free(cfg2);
    shm_unlink("/rl-failover-other");
    rl_stats_unlink("/rl-failover-other");
}
