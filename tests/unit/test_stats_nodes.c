/* test_stats_nodes.c -- the Redis node rows of the pool's statistics segment (stats_nodes.c):
 * one row per address however many processes claim it, the "other" row once every row is
 * taken, counts and breaker and Sentinel master read by another process, and a segment of
 * another layout (version 2 had no node table) replaced by one whose rows start empty
 * (test_stats_upgrade.c has the rest of that) */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leakcheck.h"
#include "ratelimit.h"
#include "stats.h"

static char shm_name[64];

static void fini(void)
{
    if (shm_name[0] != '\0')
        rl_stats_unlink(shm_name);
    rl_test_leak_check();
}

TestSuite(stats_nodes, .fini = fini);

static rl_stats_seg *open_seg(void)
{
    rl_error err;
    rl_stats_seg *st;

    snprintf(shm_name, sizeof shm_name, "/rl-stnodes-%d", (int)getpid());
    st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    return st;
}

static const rl_redis_node_stats *find(const rl_redis_node_stats *n, size_t count, const char *node)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(n[i].node, node) == 0)
            return &n[i];
    return NULL;
}

static void wait_children(int n)
{
    for (int i = 0; i < n; i++) {
        int st;
        cr_assert_gt(wait(&st), 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child failed (%d)", st);
    }
}

Test(stats_nodes, one_row_per_address_counted_and_sorted)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    int a = rl_stats_node(st, "127.0.0.1:7002", RL_STAT_NODE_CLUSTER);
    int b = rl_stats_node(st, "127.0.0.1:7001", RL_STAT_NODE_CLUSTER);

    cr_assert(a >= 0 && a < RL_STATS_NODES && b >= 0 && b < RL_STATS_NODES && a != b);
    cr_assert_eq(rl_stats_node(st, "127.0.0.1:7002", RL_STAT_NODE_CLUSTER), a);
    cr_assert_eq(rl_stats_node(NULL, "127.0.0.1:7002", RL_STAT_NODE_CLUSTER), -1);
    rl_stats_node_add(st, a, RL_STAT_NODE_DECISIONS);
    rl_stats_node_add(st, a, RL_STAT_NODE_DECISIONS);
    rl_stats_node_add(st, b, RL_STAT_NODE_REDIRECTS);
    rl_stats_node_failed(st, b);
    rl_stats_node_add(st, -1, RL_STAT_NODE_DECISIONS); /* no row: nothing */
    rl_stats_node_add(NULL, a, RL_STAT_NODE_DECISIONS);

    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), 2);
    cr_assert_str_eq(n[0].node, "127.0.0.1:7001", "sorted by address");
    cr_assert_str_eq(n[1].node, "127.0.0.1:7002");
    cr_assert_str_eq(n[1].kind, "cluster");
    cr_assert_str_eq(n[1].role, "master");
    cr_assert_eq(n[1].decisions, 2);
    cr_assert_eq(n[0].redirects, 1);
    cr_assert_eq(n[0].failures, 1);
    cr_assert_gt(n[0].last_error_ms, 0);
    cr_assert_eq(n[1].last_error_ms, 0);
    cr_assert_eq(n[0].breaker_open, 0);
    cr_assert_eq(n[0].breaker_changed_ms, 0);
    /* A short out array: the count is still all of them. */
    cr_assert_eq(rl_stats_nodes_read(st, n, 1), 2);
    rl_stats_close(st);
}

/* Every row taken: a further address counts in "other", listed last, only once it counted. */
Test(stats_nodes, overflow_goes_to_the_other_row)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    char addr[64];

    for (int i = 0; i < RL_STATS_NODES; i++) {
        snprintf(addr, sizeof addr, "10.0.0.%d:6379", i);
        cr_assert_lt(rl_stats_node(st, addr, RL_STAT_NODE_CLUSTER), RL_STATS_NODES);
    }
    int o = rl_stats_node(st, "10.0.1.1:6379", RL_STAT_NODE_CLUSTER);
    cr_assert_eq(o, RL_STATS_NODE_OTHER);
    cr_assert_eq(rl_stats_node(st, "10.0.1.2:6379", RL_STAT_NODE_SENTINEL), RL_STATS_NODE_OTHER);
    cr_assert_lt(rl_stats_node(st, "10.0.0.5:6379", RL_STAT_NODE_CLUSTER), RL_STATS_NODES,
                 "a known address keeps its row when the table is full");
    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), RL_STATS_NODES,
                 "no \"other\" row before it counted anything");
    rl_stats_node_add(st, o, RL_STAT_NODE_DECISIONS);
    rl_stats_node_add(st, o, RL_STAT_NODE_DECISIONS);
    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), RL_STATS_NODES + 1);
    cr_assert_str_eq(n[RL_STATS_NODES].node, "other");
    cr_assert_str_eq(n[RL_STATS_NODES].kind, "other");
    cr_assert_eq(n[RL_STATS_NODES].decisions, 2);
    rl_stats_close(st);
}

/* Processes claiming one address at once get one row; what each adds is read by another
 * process (which never counted anything itself), breaker and master included. */
Test(stats_nodes, shared_by_processes)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    rl_redis_sentinel_stats sen;

    for (int p = 0; p < 4; p++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            rl_error err;
            rl_stats_seg *s2 = rl_stats_open(shm_name, NULL, &err);
            if (s2 == NULL)
                _exit(1);
            int row = rl_stats_node(s2, "192.0.2.1:6379", RL_STAT_NODE_SENTINEL);
            if (row < 0 || row >= RL_STATS_NODES)
                _exit(2);
            for (int i = 0; i < 250; i++)
                rl_stats_node_add(s2, row, RL_STAT_NODE_DECISIONS);
            rl_stats_node_failed(s2, row);
            if (p == 0) {
                rl_stats_node_breaker(s2, row, 1);
                rl_stats_node_master(s2, row);
            }
            rl_stats_close(s2);
            _exit(0);
        }
    }
    wait_children(4);
    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), 1, "one row for 4 claimers");
    cr_assert_str_eq(n[0].node, "192.0.2.1:6379");
    cr_assert_str_eq(n[0].kind, "sentinel");
    cr_assert_str_eq(n[0].role, "master");
    cr_assert_eq(n[0].decisions, 1000);
    cr_assert_eq(n[0].failures, 4);
    cr_assert_eq(n[0].breaker_open, 1);
    cr_assert_gt(n[0].breaker_changed_ms, 0);
    cr_assert_eq(rl_stats_sentinel_read(st, &sen), 1);
    cr_assert_str_eq(sen.master, "192.0.2.1:6379");
    cr_assert_eq(sen.changes, 0, "the first master known is no change");
    cr_assert_eq(sen.changed_ms, 0);
    rl_stats_close(st);
}

/* The breaker's time moves only when its state does. */
Test(stats_nodes, breaker_written_on_change_only)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    int row = rl_stats_node(st, "127.0.0.1:7001", RL_STAT_NODE_CLUSTER);
    int64_t t;

    rl_stats_node_breaker(st, row, 0);
    rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(n[0].breaker_changed_ms, 0, "closed on a closed row: nothing written");
    rl_stats_node_breaker(st, row, 1);
    rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(n[0].breaker_open, 1);
    t = n[0].breaker_changed_ms;
    cr_assert_gt(t, 0);
    usleep(5000);
    rl_stats_node_breaker(st, row, 1);
    rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(n[0].breaker_changed_ms, t, "open again on an open row: unchanged");
    rl_stats_node_breaker(st, row, 0);
    rl_stats_nodes_read(st, n, RL_STATS_NODES + 1);
    cr_assert_eq(n[0].breaker_open, 0);
    cr_assert_gt(n[0].breaker_changed_ms, t);
    rl_stats_close(st);
}

/* A failover: the new master becomes current once, counted once, the old one a former
 * master; a process connecting again to the current master changes nothing. */
Test(stats_nodes, sentinel_master_changes)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    rl_redis_sentinel_stats sen;
    int m1 = rl_stats_node(st, "127.0.0.1:6380", RL_STAT_NODE_SENTINEL);
    int m2 = rl_stats_node(st, "127.0.0.1:6381", RL_STAT_NODE_SENTINEL);

    cr_assert_eq(rl_stats_sentinel_read(st, &sen), 0, "no master known yet");
    rl_stats_node_master(st, m1);
    rl_stats_node_master(st, m1);
    cr_assert_eq(rl_stats_sentinel_read(st, &sen), 1);
    cr_assert_eq(sen.changes, 0);
    rl_stats_node_master(st, m2);
    rl_stats_node_master(st, m2);
    cr_assert_eq(rl_stats_sentinel_read(st, &sen), 1);
    cr_assert_str_eq(sen.master, "127.0.0.1:6381");
    cr_assert_eq(sen.changes, 1);
    cr_assert_gt(sen.changed_ms, 0);
    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), 2);
    cr_assert_str_eq(find(n, 2, "127.0.0.1:6380")->role, "former master");
    cr_assert_str_eq(find(n, 2, "127.0.0.1:6381")->role, "master");
    rl_stats_close(st);
}

/* A segment of the right size but another version (as a build before the node table would
 * have written, had the sizes matched) is replaced: its rows are gone, and the new segment's
 * start empty; so is one of another size. */
Test(stats_nodes, other_layouts_replaced)
{
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    rl_stats_seg *st = open_seg();
    rl_error err = {{0}};
    char path[128];
    int fd;

    cr_assert_geq(rl_stats_node(st, "127.0.0.1:7001", RL_STAT_NODE_CLUSTER), 0);
    rl_stats_close(st);
    snprintf(path, sizeof path, "%s-stats", shm_name);
    fd = shm_open(path, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    uint32_t v = 2;
    cr_assert_eq(pwrite(fd, &v, sizeof v, 8), (ssize_t)sizeof v); /* the version field */
    close(fd);
    st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    cr_assert(strstr(rl_stats_note(st), "another version (version 2, this build's 3) replaced") !=
                  NULL,
              "%s", rl_stats_note(st));
    cr_assert_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), 0, "the rows start empty");
    rl_stats_close(st);
    fd = shm_open(path, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    close(fd);
    st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    cr_assert(strstr(rl_stats_note(st), "(4096 bytes, this build's ") != NULL, "%s",
              rl_stats_note(st));
    rl_stats_close(st);
}
