/* test_redis_cluster.c -- the Redis Cluster router (redis_cluster.c) against recorded replies
 *
 * CRC16 and key slots against the vectors of the Redis Cluster specification and of the
 * CLUSTER KEYSLOT documentation; a recorded CLUSTER SLOTS reply (Redis 7, with its metadata
 * element) parsed into the slot map, and malformed ones refused; MOVED and ASK lines parsed;
 * then MOVED and ASK followed against two fake nodes (lib_redis_fake.c): a MOVED moves the
 * slot and the decision goes on on the target, an ASK is retried there after ASKING (the
 * target refuses a command that was not asked), a redirect loop ends by HOPS_MAX, and an
 * error that is no redirect fails the decision; each node's counts go to its own row of the
 * pool's statistics (a redirect on the node that sent it, decisions and a failure on its
 * target). A real cluster is in
 * tests/integration/test_redis_cluster.sh.
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "backend.h"
#include "keys.h"
#include "leakcheck.h"
#include "lib_redis_fake.h"
#include "lib_redis_server.h"
#include "redis_cluster.h"
#include "stats.h"

static rlt_fake fa, fb, src; /* fa: the seed; src: the map's owner; fb: a redirect's target */
static char stname[64];      /* the statistics segment of the per-node test, when made */

static void fini(void)
{
    if (stname[0] != '\0')
        rl_stats_unlink(stname);
    rlt_fake_stop(&fa);
    rlt_fake_stop(&fb);
    rlt_fake_stop(&src);
    rl_test_leak_check();
}

TestSuite(cluster, .fini = fini, .timeout = 60);

Test(cluster, crc16_and_key_slots_match_the_spec)
{
    /* The specification's check value of CRC16-CCITT (XModem). */
    cr_assert_eq(rl_cluster_crc16("123456789", 9), 0x31c3);
    /* CLUSTER KEYSLOT's documented examples. */
    cr_assert_eq(rl_cluster_key_slot("somekey", 7), 11058);
    cr_assert_eq(rl_cluster_key_slot("foo{hash_tag}", 13), 2515);
    /* Hash tags as the specification defines them. */
    cr_assert_eq(rl_cluster_key_slot("{user1000}.following", 20),
                 rl_cluster_key_slot("{user1000}.followers", 20));
    cr_assert_eq(rl_cluster_key_slot("{user1000}.following", 20),
                 rl_cluster_key_slot("user1000", 8));
    cr_assert_eq(rl_cluster_key_slot("foo{}{bar}", 10),
                 rl_cluster_crc16("foo{}{bar}", 10) % 16384); /* empty tag: whole key */
    cr_assert_eq(rl_cluster_key_slot("foo{{bar}}zap", 13), rl_cluster_crc16("{bar", 4) % 16384);
    cr_assert_eq(rl_cluster_key_slot("foo{bar}{zap}", 13), rl_cluster_key_slot("bar", 3));
    /* The filter's keys: the client's hash tag decides. */
    cr_assert_eq(rl_cluster_key_slot("rl:{192.0.2.7}:login:86edc1d6", 29),
                 rl_cluster_key_slot("192.0.2.7", 9));
}

Test(cluster, redirect_lines)
{
    char host[64];
    int ask = -1, port = 0;
    unsigned slot = 0;

    cr_assert_eq(rl_cluster_parse_redirect("MOVED 3999 127.0.0.1:6381", &ask, &slot, host,
                                           sizeof host, &port),
                 0);
    cr_assert(ask == 0 && slot == 3999 && port == 6381 && strcmp(host, "127.0.0.1") == 0);
    cr_assert_eq(rl_cluster_parse_redirect("ASK 16383 10.0.0.2:7000", &ask, &slot, host,
                                           sizeof host, &port),
                 0);
    cr_assert(ask == 1 && slot == 16383 && port == 7000 && strcmp(host, "10.0.0.2") == 0);
    static const char *const bad[] = {
        "MOVED 16384 127.0.0.1:1", "MOVED 1 127.0.0.1:0",     "MOVED 1 127.0.0.1:65536",
        "MOVED 1 :6379",           "MOVED x 127.0.0.1:6379",  "MOVED 1 127.0.0.1",
        "ASK 1  127.0.0.1:1x",     "TRYAGAIN Multiple keys",  "ERR MOVED 1 127.0.0.1:1",
        "MOVED -1 127.0.0.1:1",    "MOVED 1 127.0.0.1:6379 ", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(rl_cluster_parse_redirect(bad[i], &ask, &slot, host, sizeof host, &port), -1,
                     "accepted \"%s\"", bad[i]);
}

/* A reply read from raw RESP bytes, as hiredis builds it. */
static redisReply *reply_of(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *obj = NULL;

    cr_assert_not_null(rd);
    cr_assert_eq(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &obj), REDIS_OK);
    cr_assert_not_null(obj);
    redisReaderFree(rd);
    return obj;
}

static char seed0[] = "127.0.0.1:1";
static char *seeds[] = {seed0};
static char prefix[] = "t-cluster:";

static rl_redis_config config_with(char **s, size_t n)
{
    rl_redis_config c = {
        .enabled = 1,
        .prefix = prefix,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 2000,
        .breaker_failures = 3,
        .breaker_open_ms = 250,
        .breaker_open_max_ms = 1000,
        .cluster = s,
        .ncluster = n,
    };
    return c;
}

/* Recorded from redis-server 7.0 (3 masters, one replica of the first; node ids shortened). */
#define NODE(host, port, id) "*4\r\n$9\r\n" host "\r\n:" port "\r\n$2\r\n" id "\r\n*0\r\n"
static const char recorded_slots[] = "*3\r\n"
                                     "*4\r\n:0\r\n:5460\r\n" NODE("127.0.0.1", "7000", "a1")
                                         NODE("127.0.0.1", "7003", "a2") "*3\r\n:5461\r\n:10922\r\n" NODE(
                                             "127.0.0.1", "7001", "b1") "*3\r\n:10923\r\n:16383\r\n"
                                             NODE("127.0.0.1", "7002", "c1");

Test(cluster, a_recorded_slot_map)
{
    rl_redis_config cfg = config_with(seeds, 1);
    rl_cluster *c = rl_cluster_new(&cfg);
    redisReply *r = reply_of(recorded_slots);
    char hp[64];

    cr_assert_not_null(c);
    cr_assert_eq(rl_cluster_slot_node(c, 0, hp, sizeof hp), -1, "no map before one is taken");
    cr_assert_eq(rl_cluster_take_map(c, r, NULL), 0, "%s", rl_cluster_errstr(c));
    cr_assert_eq(rl_cluster_slot_node(c, 0, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, "127.0.0.1:7000");
    cr_assert_eq(rl_cluster_slot_node(c, 5460, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, "127.0.0.1:7000", "the replica is not a master");
    cr_assert_eq(rl_cluster_slot_node(c, 5461, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, "127.0.0.1:7001");
    cr_assert_eq(rl_cluster_slot_node(c, 16383, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, "127.0.0.1:7002");
    cr_assert_eq(rl_cluster_slot_node(c, 16384, hp, sizeof hp), -1);
    freeReplyObject(r);

    /* Malformed maps are refused and leave the map as it was. */
    static const char *const bad[] = {
        "+OK\r\n",
        "*0\r\n",
        "*1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n*3\r\n:5\r\n:4\r\n" NODE("127.0.0.1", "7000", "a1"),
        "*1\r\n*3\r\n:0\r\n:16384\r\n" NODE("127.0.0.1", "7000", "a1"),
        "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$9\r\n127.0.0.1\r\n",
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$9\r\n127.0.0.1\r\n:0\r\n",
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:7000\r\n",
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$0\r\n\r\n:7000\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = reply_of(bad[i]);
        cr_assert_eq(rl_cluster_take_map(c, r, NULL), -1, "accepted map %zu", i);
        freeReplyObject(r);
        cr_assert_eq(rl_cluster_slot_node(c, 5461, hp, sizeof hp), 0);
        cr_assert_str_eq(hp, "127.0.0.1:7001");
    }

    /* A node alone answers with an empty host: the node asked. */
    r = reply_of("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$0\r\n\r\n:7005\r\n");
    cr_assert_eq(rl_cluster_take_map(c, r, "10.0.0.9"), 0, "%s", rl_cluster_errstr(c));
    freeReplyObject(r);
    cr_assert_eq(rl_cluster_slot_node(c, 5461, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, "10.0.0.9:7005");
    rl_cluster_free(c);
}

/* ---- redirects, against fake nodes ---- */

static rl_rule rule = {.name = "r", .count = 10, .period_ms = 1000, .burst = 10};
static char client[] = "192.0.2.9";
static char map[256], seed[32], redirect[64];
static char *seeds_f[] = {seed};

/* The slot of the test's one key. */
static unsigned key_slot(void)
{
    char key[128];
    size_t len;

    rule.key_id_len = rl_keys_rule_id(&rule, rule.key_id);
    len = (size_t)(rl_keys_redis(key, prefix, strlen(prefix), client, strlen(client), rule.key_id,
                                 rule.key_id_len) -
                   key);
    return rl_cluster_key_slot(key, len);
}

/* Starts fa, the seed, whose CLUSTER SLOTS gives every slot to the fake on port `owner`, and
 * a router on it (free it). */
static rl_cluster *router_with_owner(int owner, rl_redis_config *cfg)
{
    rl_cluster *c;

    snprintf(map, sizeof map, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
             owner);
    fa.cluster_reply = map;
    cr_assert_eq(rlt_fake_start(&fa), 0);
    snprintf(seed, sizeof seed, "127.0.0.1:%d", fa.port);
    *cfg = config_with(seeds_f, 1);
    c = rl_cluster_new(cfg);
    cr_assert_not_null(c);
    return c;
}

static int decide(rl_cluster *c)
{
    rl_rule_result res;
    rl_item item = {.rule = &rule, .client = client, .cost = 1, .res = &res};
    return rl_cluster_decide(c, &item, 1, -1);
}

static void assert_owner(const rl_cluster *c, unsigned slot, int port, const char *why)
{
    char hp[64], want[64];

    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    cr_assert_eq(rl_cluster_slot_node(c, slot, hp, sizeof hp), 0);
    cr_assert_str_eq(hp, want, "%s", why);
}

Test(cluster, moved_moves_the_slot_and_the_decision_goes_on)
{
    unsigned slot = key_slot();
    rl_redis_config cfg;
    rl_cluster *c;

    cr_assert_eq(rlt_fake_start(&fb), 0); /* the new owner: answers like Redis */
    snprintf(redirect, sizeof redirect, "MOVED %u 127.0.0.1:%d", slot, fb.port);
    src.eval_error = redirect; /* the map's owner moved the slot to fb */
    cr_assert_eq(rlt_fake_start(&src), 0);
    c = router_with_owner(src.port, &cfg);
    cr_assert_eq(decide(c), 1, "%s", rl_cluster_errstr(c));
    assert_owner(c, slot, fb.port, "MOVED moves the slot to its target");
    rl_cluster_free(c);
}

Test(cluster, ask_is_retried_on_the_target_after_asking)
{
    unsigned slot = key_slot();
    rl_redis_config cfg;
    rl_cluster *c;

    fb.asking_only = 1; /* the target runs only an asked command */
    cr_assert_eq(rlt_fake_start(&fb), 0);
    snprintf(redirect, sizeof redirect, "ASK %u 127.0.0.1:%d", slot, fb.port);
    src.eval_error = redirect;
    cr_assert_eq(rlt_fake_start(&src), 0);
    c = router_with_owner(src.port, &cfg);
    cr_assert_eq(decide(c), 1, "%s", rl_cluster_errstr(c));
    assert_owner(c, slot, src.port, "an ASK does not move the slot");
    cr_assert_eq(decide(c), 1, "again, asked again: %s", rl_cluster_errstr(c));
    rl_cluster_free(c);
}

Test(cluster, a_target_not_asked_refuses_and_the_decision_fails)
{
    rl_redis_config cfg;
    rl_cluster *c;

    /* The map's owner itself only runs asked commands: it answers MOVED 0 to port 1, where
     * nothing listens; the decision fails (and falls back), it never loops. */
    fb.asking_only = 1;
    cr_assert_eq(rlt_fake_start(&fb), 0);
    c = router_with_owner(fb.port, &cfg);
    cr_assert_eq(decide(c), -1);
    rl_cluster_free(c);
}

Test(cluster, a_redirect_loop_ends)
{
    unsigned slot = key_slot();
    rl_redis_config cfg;
    rl_cluster *c;
    long long t;

    snprintf(redirect, sizeof redirect, "MOVED %u 127.0.0.1:SELF", slot);
    src.eval_error = redirect; /* moved to itself, forever */
    cr_assert_eq(rlt_fake_start(&src), 0);
    c = router_with_owner(src.port, &cfg);
    t = rlt_now_ms();
    cr_assert_eq(decide(c), -1);
    cr_assert(strstr(rl_cluster_errstr(c), "redirects") != NULL, "%s", rl_cluster_errstr(c));
    cr_assert_lt(rlt_now_ms() - t, 2000 + 900, "within the deadline (plus slack)");
    rl_cluster_free(c);
}

Test(cluster, clusterdown_fails_the_decision)
{
    rl_redis_config cfg;
    rl_cluster *c;

    src.eval_error = "CLUSTERDOWN The cluster is down";
    cr_assert_eq(rlt_fake_start(&src), 0);
    c = router_with_owner(src.port, &cfg);
    cr_assert_eq(decide(c), -1);
    cr_assert(strstr(rl_cluster_errstr(c), "CLUSTERDOWN") != NULL, "%s", rl_cluster_errstr(c));
    rl_cluster_free(c);
}

/* Counts on the rows of the nodes: the map's owner sent the MOVEDs, the target decided, then
 * failed once it died (with the time of the error); the seed, only asked for the map, counted
 * nothing and took no row. */
Test(cluster, each_node_counts_on_its_own_row)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    unsigned slot = key_slot();
    rl_redis_config cfg;
    rl_cluster *c;
    rl_stats_seg *st;
    rl_error err;
    char want[64];
    size_t count;

    snprintf(stname, sizeof stname, "/rl-clnodes-%d", (int)getpid());
    st = rl_stats_open(stname, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    cr_assert_eq(rlt_fake_start(&fb), 0);
    snprintf(redirect, sizeof redirect, "MOVED %u 127.0.0.1:%d", slot, fb.port);
    src.eval_error = redirect;
    cr_assert_eq(rlt_fake_start(&src), 0);
    c = router_with_owner(src.port, &cfg);
    rl_cluster_set_stats(c, st);
    cr_assert_eq(decide(c), 1, "%s", rl_cluster_errstr(c));
    cr_assert_eq(decide(c), 1, "%s", rl_cluster_errstr(c)); /* the map again: src, MOVED */
    count = rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(count, 2, "src and fb; the seed counted nothing");
    snprintf(want, sizeof want, "127.0.0.1:%d", src.port);
    size_t is = strcmp(n[0].node, want) == 0 ? 0 : 1, ib = 1 - is;
    cr_assert_str_eq(n[is].node, want);
    cr_assert_eq(n[is].redirects, 2);
    cr_assert_eq(n[is].decisions, 0);
    cr_assert_eq(n[ib].decisions, 2);
    cr_assert_eq(n[ib].failures, 0);
    cr_assert_str_eq(n[ib].kind, "cluster");
    rlt_fake_stop(&fb);
    cr_assert_eq(decide(c), -1);
    rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(n[ib].failures, 1, "%s", rl_cluster_errstr(c));
    cr_assert_gt(n[ib].last_error_ms, 0);
    cr_assert_eq(n[is].redirects, 3);
    rl_cluster_free(c);
    rl_stats_close(st);
}
