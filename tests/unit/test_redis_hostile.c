/* test_redis_hostile.c -- one deadline per decision and replies of bounded size, against a
 * hostile fake Redis (lib_redis_fake.c)
 *
 * Every hostile answer (silence, a reply that drips forever, huge array and bulk headers, an
 * endless line, a too-long string, nesting, garbage, extra bytes, a close mid-reply or before
 * it, an error) is given in turn to each step of a decision: AUTH, SELECT, FUNCTION LOAD, SCRIPT
 * LOAD, EVALSHA, and the EVALSHA retried after NOSCRIPT (the fake is a server before Redis 7:
 * its FUNCTION LOAD answer is an error, after which the client uses SCRIPT LOAD and EVALSHA).
 * Each decision must fail (-1, the caller falls back) with the reason the mode calls for -- but
 * an error reply to FUNCTION LOAD, which is the fallback to EVALSHA. Silence and a drip must be
 * ended by a short command_timeout_ms from the decision's start (plus scheduling slack on a
 * loaded machine); the other modes run under a generous deadline, so that a slow schedule of the
 * fake is not taken for its hostility, and their reason shows they were not waited out. The
 * worst time per mode is printed as a FIGURE line.
 */
#include "fmacros.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "backend.h"
#include "keys.h"
#include "leakcheck.h"
#include "lib_redis_fake.h"
#include "lib_redis_server.h"

#define TIMEOUT_MS 100
/* Scheduling slack: the machine is shared and loaded; a decision held by the server would
 * take seconds (drip) or forever (silence, per-read timeouts). */
#define SLACK_MS 2500
/* The deadline of a decision whose failure is not a timeout (a refused reply, a close, an
 * error) or which must succeed: the fake is a forked process that a loaded machine may not
 * schedule for tens of ms, and a decision is up to 7 round trips; the reason in errstr (not
 * "timed out") is what proves such a failure was not waited for. */
#define GENEROUS_MS 2000

static rlt_fake fake;
static char host[] = "127.0.0.1";
static char prefix[] = "t-hostile:";
static char password[] = "pw";
static char client[] = "192.0.2.9";
static rl_rule rule = {.name = "r", .count = 10, .period_ms = 1000, .burst = 10};

static void fini(void)
{
    rlt_fake_stop(&fake);
    rl_test_leak_check();
}

TestSuite(hostile, .fini = fini, .timeout = 120);

/* One decision through a new handle: its result, errstr into err, its duration in *ms. */
static int decide_once(const rl_redis_config *cfg, char *err, size_t errsize, long long *ms)
{
    rl_rule_result res;
    rl_item item = {.rule = &rule, .client = client, .cost = 1, .res = &res};
    rl_redis *r = rl_redis_new(cfg);
    long long t;
    int ret;

    cr_assert_not_null(r);
    rule.key_id_len = rl_keys_rule_id(&rule, rule.key_id);
    t = rlt_now_ms();
    ret = rl_redis_decide(r, &item, 1, -1);
    *ms = rlt_now_ms() - t;
    snprintf(err, errsize, "%s", rl_redis_errstr(r));
    rl_redis_free(r);
    return ret;
}

/* timeout_ms: TIMEOUT_MS where the deadline is what a case tests, GENEROUS_MS elsewhere. */
static rl_redis_config config_for(const char *target, int timeout_ms)
{
    rl_redis_config c = {
        .enabled = 1,
        .host = host,
        .port = fake.port,
        .prefix = prefix,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = timeout_ms,
    };
    if (strcmp(target, "AUTH") == 0)
        c.password = password;
    if (strcmp(target, "SELECT") == 0)
        c.db = 1;
    return c;
}

Test(hostile, the_fake_answers_like_redis)
{
    char err[RL_ERRSTR_MAX];
    long long ms;
    rl_redis_config cfg;

    fake = (rlt_fake){.mode = RLT_FAKE_OK, .target = "*", .noscript = 1};
    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg = config_for("AUTH", GENEROUS_MS);
    cfg.db = 1;
    cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), 1, "%s", err);
}

/* What each mode must be reported as. */
static const char *expected(rlt_fake_mode m)
{
    switch (m) {
    case RLT_FAKE_SILENT:
    case RLT_FAKE_DRIP:
    case RLT_FAKE_SLOW: return "timed out";
    case RLT_FAKE_HUGE_ARRAY: return "reply refused: an array of 2147483647 elements";
    case RLT_FAKE_HUGE_BULK:
    case RLT_FAKE_LONG_LINE: return "reply refused: more than";
    case RLT_FAKE_BIG_STRING: return "reply refused: a string of 5000 bytes";
    case RLT_FAKE_NESTED: return "reply refused: a nested array";
    case RLT_FAKE_GARBAGE: return "protocol error";
    case RLT_FAKE_EXTRA: return "after the reply";
    case RLT_FAKE_CLOSE_MID: return "closed the connection after";
    case RLT_FAKE_CLOSE: return "closed the connection";
    case RLT_FAKE_ERROR: return "ERR hostile";
    default: return "?";
    }
}

Test(hostile, every_mode_at_every_step_fails_by_the_deadline)
{
    static const struct {
        const char *name, *target;
        int noscript;
    } steps[] = {
        {"AUTH", "AUTH", 0},
        {"SELECT", "SELECT", 0},
        {"FUNCTION LOAD", "FUNCTION", 0},
        {"SCRIPT LOAD", "SCRIPT", 0},
        {"EVALSHA", "EVALSHA", 0},
        {"EVALSHA after NOSCRIPT", "EVALSHA", 1},
    };
    char err[RL_ERRSTR_MAX];

    for (int m = RLT_FAKE_SILENT; m < RLT_FAKE_MODES; m++) {
        long long worst = 0, ms;
        char at_evalsha[RL_ERRSTR_MAX] = "";
        /* Only silence and a drip are ended by the deadline; every other mode must fail on
         * what it sent, long before a generous one. */
        int timeout_ms = m == RLT_FAKE_SILENT || m == RLT_FAKE_DRIP ? TIMEOUT_MS : GENEROUS_MS;

        if (m == RLT_FAKE_SLOW)
            continue; /* below: a delay is hostile only summed over the steps */
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            rl_redis_config cfg;

            fake = (rlt_fake){.mode = (rlt_fake_mode)m,
                              .target = steps[s].target,
                              .drip_ms = 30,
                              .noscript = steps[s].noscript};
            cr_assert_eq(rlt_fake_start(&fake), 0);
            cfg = config_for(steps[s].target, timeout_ms);
            if (m == RLT_FAKE_ERROR && strcmp(steps[s].target, "FUNCTION") == 0) {
                /* Any error reply to FUNCTION LOAD means "no functions here": EVALSHA. */
                cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), 1, "%s", err);
                rlt_fake_stop(&fake);
                continue;
            }
            cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), -1, "%s at %s: decided",
                         rlt_fake_mode_name(m), steps[s].name);
            cr_assert_not_null(strstr(err, expected(m)), "%s at %s: \"%s\", expected \"%s\"",
                               rlt_fake_mode_name(m), steps[s].name, err, expected(m));
            cr_assert_lt(ms, timeout_ms + SLACK_MS, "%s at %s: %lld ms (%s)", rlt_fake_mode_name(m),
                         steps[s].name, ms, err);
            if (ms > worst)
                worst = ms;
            if (strcmp(steps[s].name, "EVALSHA") == 0)
                snprintf(at_evalsha, sizeof at_evalsha, "%s", err);
            rlt_fake_stop(&fake);
        }
        fprintf(stderr,
                "FIGURE: hostile redis: %s at each of AUTH, SELECT, FUNCTION LOAD, SCRIPT LOAD, "
                "EVALSHA and "
                "EVALSHA after NOSCRIPT: failed in at most %lld ms (command_timeout_ms %d); at "
                "EVALSHA: %s\n",
                rlt_fake_mode_name(m), worst, timeout_ms, at_evalsha);
    }
}

/* Each step answered just in time for a per-command timeout: the sum is what must not pass. */
Test(hostile, slow_steps_sum_to_one_deadline)
{
    char err[RL_ERRSTR_MAX];
    rl_redis_config cfg;
    long long ms;

    fake = (rlt_fake){
        .mode = RLT_FAKE_SLOW, .target = "*", .delay_ms = TIMEOUT_MS * 2 / 5, .noscript = 1};
    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg = config_for("AUTH", TIMEOUT_MS);
    cfg.db = 1;
    /* AUTH, SELECT, FUNCTION LOAD, SCRIPT LOAD, EVALSHA (NOSCRIPT), SCRIPT LOAD, EVALSHA: 7 x
     * 40 ms. */
    cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), -1, "decided after %lld ms", ms);
    cr_assert_not_null(strstr(err, "timed out"), "%s", err);
    cr_assert_lt(ms, TIMEOUT_MS + SLACK_MS, "%lld ms", ms);
    fprintf(stderr,
            "FIGURE: hostile redis: 7 steps each answered after %d ms: refused after %lld ms "
            "(command_timeout_ms %d)\n",
            TIMEOUT_MS * 2 / 5, ms, TIMEOUT_MS);
    rlt_fake_stop(&fake);

    /* The same steps well inside the deadline decide. */
    fake.delay_ms = 5;
    cr_assert_eq(rlt_fake_start(&fake), 0);
    cfg.port = fake.port;
    cfg.command_timeout_ms = 5000;
    cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), 1, "%s", err);
}

/* A listener that never accepts, its accept queue filled: the kernel drops further SYNs, so a
 * connect to it never completes. fills[] keep the queue full; the caller closes all. */
static int full_listener(int *port, int *fills, int nfills)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(lfd, 0), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    for (int i = 0; i < nfills; i++) {
        fills[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cr_assert_geq(fills[i], 0);
        connect(fills[i], (struct sockaddr *)&sa, sizeof sa); /* EINPROGRESS, or hangs */
    }
    rlt_sleep_ms(100);
    return lfd;
}

/* The connect step is bounded by connect_timeout_ms and by the decision's deadline, whichever
 * ends first. */
Test(hostile, a_connect_that_never_completes)
{
    char err[RL_ERRSTR_MAX];
    int fills[4], lfd = full_listener(&fake.port, fills, 4);
    rl_redis_config cfg = config_for("EVALSHA", TIMEOUT_MS);
    long long ms, ms2;

    cfg.connect_timeout_ms = 60;
    cfg.command_timeout_ms = 5000;
    cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms), -1, "connected");
    cr_assert_not_null(strstr(err, "connect: timed out"), "%s", err);
    cr_assert(ms >= 55 && ms < 60 + SLACK_MS, "connect_timeout_ms 60: %lld ms", ms);
    cfg.connect_timeout_ms = 5000;
    cfg.command_timeout_ms = TIMEOUT_MS;
    cr_assert_eq(decide_once(&cfg, err, sizeof err, &ms2), -1, "connected");
    cr_assert_not_null(strstr(err, "connect: timed out"), "%s", err);
    cr_assert(ms2 >= TIMEOUT_MS - 5 && ms2 < TIMEOUT_MS + SLACK_MS,
              "command_timeout_ms %d: %lld ms", TIMEOUT_MS, ms2);
    fprintf(stderr,
            "FIGURE: hostile redis: a connect that never completes: failed after %lld ms "
            "(connect_timeout_ms 60) and %lld ms (command_timeout_ms %d)\n",
            ms, ms2, TIMEOUT_MS);
    for (int i = 0; i < 4; i++)
        close(fills[i]);
    close(lfd);
}
