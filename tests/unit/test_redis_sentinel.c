/* test_redis_sentinel.c -- the master from Redis Sentinel, and never a write to a replica
 *
 * Real redis-servers (lib_redis_server.c): a master and a replica of it. Fake sentinels
 * (lib_redis_fake.c) name one or the other. Named the master, decisions are made there;
 * named the replica, every decision fails (the caller falls back) with the ROLE reason and
 * nothing is written anywhere; a sentinel that does not know the name, or answers nonsense,
 * fails the decision with its reason; the next sentinel in the list is asked when one fails;
 * a master demoted while the filter was connected to it (a sentinel still naming it) is
 * never written to again; and a new answer of the sentinels is followed within a second
 * although the connection to the old master is fine.
 * A real failover is in tests/integration/test_redis_sentinel.sh.
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "backend.h"
#include "keys.h"
#include "leakcheck.h"
#include "lib_redis_fake.h"
#include "lib_redis_server.h"
#include "redis_sentinel.h"

static rlt_redis master, replica;
static rlt_fake s1, s2;

static void fini(void)
{
    rlt_fake_stop(&s1);
    rlt_fake_stop(&s2);
    rlt_redis_stop(&replica);
    rlt_redis_stop(&master);
    rl_test_leak_check();
}

TestSuite(sentinel, .fini = fini, .timeout = 60);

static rl_rule rule = {.name = "r", .count = 10, .period_ms = 60000, .burst = 10};
static char client[] = "192.0.2.9";
static char prefix[] = "t-sentinel:";
static char name[] = "mymaster";
#define ADDR_LEN 32
static char addr1[ADDR_LEN], addr2[ADDR_LEN];
static char *sentinels[] = {addr1, addr2};
static char answer1[128], answer2[128];

static rl_redis_config config_of(size_t n)
{
    rl_redis_config c = {
        .enabled = 1,
        .prefix = prefix,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 2000,
        .sentinels = sentinels,
        .nsentinels = n,
        .master_name = name,
    };
    return c;
}

static const char *addr_answer(char *buf, size_t size, int port)
{
    char p[16];

    snprintf(p, sizeof p, "%d", port);
    snprintf(buf, size, "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n", strlen(p), p);
    return buf;
}

/* Starts fake sentinel s answering SENTINEL with reply, its address into addr (ADDR_LEN). */
static void start_sentinel(rlt_fake *s, char *addr, const char *reply)
{
    s->sentinel_reply = reply;
    cr_assert_eq(rlt_fake_start(s), 0);
    snprintf(addr, ADDR_LEN, "127.0.0.1:%d", s->port);
}

static int decide(rl_redis *r)
{
    rl_rule_result res;
    rl_item item = {.rule = &rule, .client = client, .cost = 1, .res = &res};

    rule.key_id_len = rl_keys_rule_id(&rule, rule.key_id);
    return rl_redis_decide(r, &item, 1, -1);
}

static long long keys_on(const rlt_redis *s)
{
    redisContext *c = rlt_redis_client(s);
    redisReply *reply;
    long long n;

    cr_assert_not_null(c);
    reply = redisCommand(c, "DBSIZE");
    cr_assert(reply != NULL && reply->type == REDIS_REPLY_INTEGER);
    n = reply->integer;
    freeReplyObject(reply);
    redisFree(c);
    return n;
}

static void start_pair(void)
{
    redisContext *c;
    redisReply *reply;

    cr_assert_eq(rlt_redis_start(&master, NULL), 0);
    cr_assert_eq(rlt_redis_start(&replica, NULL), 0);
    c = rlt_redis_client(&replica);
    cr_assert_not_null(c);
    reply = redisCommand(c, "REPLICAOF 127.0.0.1 %d", master.port);
    cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(c);
}

Test(sentinel, the_master_it_names_decides_a_replica_never_written)
{
    rl_redis_config cfg;
    rl_redis *r;

    start_pair();
    /* Named the replica: refused by its ROLE, nothing written. */
    start_sentinel(&s1, addr1, addr_answer(answer1, sizeof answer1, replica.port));
    cfg = config_of(1);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(decide(r), -1);
        cr_assert(strstr(rl_redis_errstr(r), "ROLE: \"slave\", not the master") != NULL, "%s",
                  rl_redis_errstr(r));
    }
    cr_assert_eq(keys_on(&master), 0);
    cr_assert_eq(keys_on(&replica), 0);
    rl_redis_free(r);
    rlt_fake_stop(&s1);

    /* Named the master: decided there. */
    start_sentinel(&s1, addr1, addr_answer(answer1, sizeof answer1, master.port));
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(keys_on(&master), 1);
    rl_redis_free(r);
}

Test(sentinel, a_failing_sentinel_then_the_next_one)
{
    rl_redis_config cfg;
    rl_redis *r;

    cr_assert_eq(rlt_redis_start(&master, NULL), 0);
    start_sentinel(&s1, addr1, "*-1\r\n"); /* does not know the name */
    cfg = config_of(1);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), -1);
    cr_assert(strstr(rl_redis_errstr(r), "no master named \"mymaster\"") != NULL, "%s",
              rl_redis_errstr(r));
    rl_redis_free(r);

    start_sentinel(&s2, addr2, addr_answer(answer2, sizeof answer2, master.port));
    cfg = config_of(2);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), 1, "%s", rl_redis_errstr(r));
    rl_redis_free(r);

    /* Nonsense from the only sentinel. */
    rlt_fake_stop(&s1);
    start_sentinel(&s1, addr1, "*2\r\n$9\r\n127.0.0.1\r\n$5\r\nabcde\r\n");
    cfg = config_of(1);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), -1);
    cr_assert(strstr(rl_redis_errstr(r), "bad port") != NULL, "%s", rl_redis_errstr(r));
    rl_redis_free(r);
}

Test(sentinel, a_demoted_master_is_never_written_to_again)
{
    rl_redis_config cfg;
    rl_redis *r;
    redisContext *c;
    redisReply *reply;

    start_pair();
    /* Names the master, and stays so. */
    start_sentinel(&s1, addr1, addr_answer(answer1, sizeof answer1, master.port));
    cfg = config_of(1);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), 1, "%s", rl_redis_errstr(r));
    /* The master becomes a replica of the other server (which first stops replicating). */
    c = rlt_redis_client(&replica);
    reply = redisCommand(c, "REPLICAOF NO ONE");
    freeReplyObject(reply);
    redisFree(c);
    c = rlt_redis_client(&master);
    reply = redisCommand(c, "REPLICAOF 127.0.0.1 %d", replica.port);
    cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(c);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(decide(r), -1, "decision %d written to a replica", i);
        cr_assert(strstr(rl_redis_errstr(r), "READONLY") != NULL ||
                      strstr(rl_redis_errstr(r), "not the master") != NULL,
                  "%s", rl_redis_errstr(r));
    }
    rl_redis_free(r);
}

Test(sentinel, a_new_answer_is_followed_while_connected)
{
    rl_redis_config cfg;
    rl_redis *r;

    /* Two independent masters; s1 names the first, s2 the second. */
    cr_assert_eq(rlt_redis_start(&master, NULL), 0);
    cr_assert_eq(rlt_redis_start(&replica, NULL), 0);
    start_sentinel(&s1, addr1, addr_answer(answer1, sizeof answer1, master.port));
    start_sentinel(&s2, addr2, addr_answer(answer2, sizeof answer2, replica.port));
    cfg = config_of(2);
    r = rl_redis_new(&cfg);
    cr_assert_not_null(r);
    cr_assert_eq(decide(r), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(keys_on(&master), 1);
    /* The first sentinel goes away; the second names the other master. The connection to
     * the first master is fine, but within a second of the change the filter asks again and
     * follows the answer. */
    rlt_fake_stop(&s1);
    rlt_sleep_ms(RL_SENTINEL_RECHECK_MS + 100);
    cr_assert_eq(decide(r), 1, "%s", rl_redis_errstr(r));
    cr_assert_eq(keys_on(&replica), 1, "the decision was made on the master named now");
    rl_redis_free(r);
}
