/* test_admin_nodes.c -- the statistics JSON (admin_json.c) and Prometheus text
 * (admin_metrics.c) over a pool segment whose every Redis node row is taken (RL_STATS_NODES)
 * plus the "other" row and a Sentinel master: the JSON parses with every row, the addresses
 * (quotes, backslashes, newlines: a slot map or a sentinel names them) escaped in both */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "../../filter/admin.h"
#include "../../filter/settings.h"
#include "leakcheck.h"
#include "ratelimit.h"
#include "stats.h"

static char shm_name[64], conf[128];

static void fini(void)
{
    if (shm_name[0] != '\0') {
        rl_stats_unlink(shm_name);
        shm_unlink(shm_name); /* the limiter's table */
    }
    if (conf[0] != '\0')
        unlink(conf);
    rl_test_leak_check();
}

TestSuite(admin_nodes, .fini = fini);

/* A limiter on the table shm_name, and the segment's node rows filled through a second
 * handle, as other processes of the pool would. */
static void open_pool(rl_config **cfg, rl_limiter **lim, rl_stats_seg **st)
{
    rl_error err;
    FILE *f;
    char addr[64];

    snprintf(shm_name, sizeof shm_name, "/rl-admnodes-%d", (int)getpid());
    snprintf(conf, sizeof conf, "/tmp/rl-admnodes-%d.conf", (int)getpid());
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "shm: { name = \"%s\"; capacity = 100; };\n"
            "rules = ( { name = \"r\"; path_prefix = \"/\"; limit = \"5/m\"; } );\n",
            shm_name);
    fclose(f);
    *cfg = settings_load(conf, &err);
    cr_assert_not_null(*cfg, "%s", err.text);
    *lim = rl_limiter_open(*cfg, &err);
    cr_assert_not_null(*lim, "%s", err.text);
    *st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(*st, "%s", err.text);
    for (int i = 0; i < RL_STATS_NODES; i++) {
        if (i == 0)
            snprintf(addr, sizeof addr, "q\"b\\n\nx:%d", i);
        else
            snprintf(addr, sizeof addr, "10.0.0.%d:6379", i);
        int row = rl_stats_node(*st, addr, i % 2 ? RL_STAT_NODE_CLUSTER : RL_STAT_NODE_SENTINEL);
        cr_assert_lt(row, RL_STATS_NODES);
        rl_stats_node_add(*st, row, RL_STAT_NODE_DECISIONS);
        if (i % 3 == 0)
            rl_stats_node_failed(*st, row);
        if (i % 5 == 0)
            rl_stats_node_breaker(*st, row, 1);
        if (i == 0)
            rl_stats_node_master(*st, row);
    }
    int other = rl_stats_node(*st, "10.0.9.9:6379", RL_STAT_NODE_CLUSTER);
    cr_assert_eq(other, RL_STATS_NODE_OTHER);
    rl_stats_node_add(*st, other, RL_STAT_NODE_DECISIONS);
}

Test(admin_nodes, stats_json_parses_with_every_row)
{
    rl_config *cfg;
    rl_limiter *lim;
    rl_stats_seg *st;
    admin_out o = {0};
    json_error_t jerr;

    open_pool(&cfg, &lim, &st);
    handle_ctx ctx = {.cfg = cfg, .lim = lim};
    admin_stats(&ctx, &o);
    cr_assert(!o.failed);
    json_t *doc = json_loadb(o.buf, o.len, 0, &jerr);
    cr_assert_not_null(doc, "invalid JSON: %s at %d: %.200s", jerr.text, jerr.position, o.buf);
    json_t *nodes = json_object_get(json_object_get(doc, "redis"), "nodes");
    cr_assert_eq(json_array_size(nodes), RL_STATS_NODES + 1, "%zu rows", json_array_size(nodes));
    int seen_odd = 0, seen_other = 0;
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(nodes, i), "node"));
        cr_assert_not_null(n);
        seen_odd += strcmp(n, "q\"b\\n\nx:0") == 0;
        seen_other += strcmp(n, "other") == 0;
    }
    cr_assert_eq(seen_odd, 1);
    cr_assert_eq(seen_other, 1);
    json_t *sen = json_object_get(json_object_get(doc, "redis"), "sentinel");
    cr_assert_str_eq(json_string_value(json_object_get(sen, "master")), "q\"b\\n\nx:0");
    json_decref(doc);
    admin_out_free(&o);
    rl_stats_close(st);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}

Test(admin_nodes, metrics_escape_every_label)
{
    rl_config *cfg;
    rl_limiter *lim;
    rl_stats_seg *st;
    admin_out o = {0};
    size_t samples = 0;

    open_pool(&cfg, &lim, &st);
    handle_ctx ctx = {.cfg = cfg, .lim = lim};
    admin_metrics(&ctx, &o);
    cr_assert(!o.failed);
    cr_assert_not_null(
        strstr(o.buf, "ratelimit_redis_node_decisions_total{node=\"q\\\"b\\\\n\\nx:0\"} 1\n"), "%s",
        o.buf);
    cr_assert_not_null(strstr(o.buf, "ratelimit_redis_node_decisions_total{node=\"other\"} 1\n"));
    cr_assert_not_null(
        strstr(o.buf, "ratelimit_redis_sentinel_master{node=\"q\\\"b\\\\n\\nx:0\"} 1\n"));
    /* Every line a comment or NAME{...} VALUE: no raw newline or quote broke one. */
    for (char *line = o.buf; *line != '\0';) {
        char *end = strchr(line, '\n');
        cr_assert_not_null(end, "the text ends without a newline");
        *end = '\0';
        if (line[0] != '#') {
            char *sp = strrchr(line, ' ');
            cr_assert_not_null(sp, "a sample without a value: %s", line);
            char *brace = strchr(line, '{');
            if (brace != NULL && brace < sp) {
                cr_assert_eq(sp[-1], '}', "a label set cut: %s", line);
                size_t q = 0;
                for (char *p = brace; p < sp; p++) {
                    if (*p == '\\')
                        p++;
                    else if (*p == '"')
                        q++;
                }
                cr_assert_eq(q % 2, 0, "unbalanced quotes: %s", line);
            }
            if (strncmp(line, "ratelimit_redis_node_decisions_total{", 37) == 0)
                samples++;
        }
        line = end + 1;
    }
    cr_assert_eq(samples, RL_STATS_NODES + 1);
    admin_out_free(&o);
    rl_stats_close(st);
    rl_limiter_close(lim);
    rl_config_free(cfg);
}
