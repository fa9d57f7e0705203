/* admin_metrics.c -- the Prometheus text exposition format (version 0.0.4), by hand
 *
 *   ratelimit_requests_total{rule="x",decision="allowed|refused|dry_run_refused"}   counter
 *   ratelimit_store_decisions_total{rule="x",path="fallback|fail_open|fail_closed|refusal_cache"}
 *   ratelimit_decisions_total                        counter: every decision
 *   ratelimit_access_list_total{list="deny|allow"}   counter
 *   ratelimit_missing_key_total, ratelimit_unchecked_total                          counters
 *   ratelimit_regex_limit_total                                                     counter
 *   ratelimit_backend_errors_total{backend="redis|shm"}                             counter
 *   ratelimit_decision_seconds_bucket{le="0.000001"} ... {le="+Inf"}, _sum, _count  histogram
 *   ratelimit_shm_entries, ratelimit_shm_capacity (gauges), ratelimit_shm_evictions_total,
 *   ratelimit_shm_repairs_total (counters)
 *   ratelimit_redis_configured, ratelimit_redis_up   gauges (up: configured and answering)
 *   ratelimit_redis_node_{decisions,failures,redirects}_total{node="HOST:PORT"}   counters,
 *   ratelimit_redis_node_breaker_open{node="HOST:PORT"} gauge, and the gauges
 *   ratelimit_redis_node_{breaker_changed,last_error}_timestamp_seconds{node=...}: per Redis
 *   node row of the pool's segment (cluster masters, Sentinel masters, "other")
 *   ratelimit_redis_sentinel_master{node="HOST:PORT"} 1, ratelimit_redis_sentinel_master_
 *   changes_total, ..._changed_timestamp_seconds: with Sentinel, once a master is known
 * Rule names are [A-Za-z0-9_.-]: they need no escaping in a label value.
 */
#include "../core/fmacros.h"

#include <inttypes.h>
#include <string.h>

#include "admin.h"
#include "config_where.h"

static void admin_head(admin_out *o, const char *name, const char *type, const char *help)
{
    admin_outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One per-rule counter family: name{rule="x",label="<counter name>"} for each of ids. */
static void admin_rule_family(admin_out *o, const rl_stats *s, const char *name, const char *label,
                              const int *ids, size_t nids, const char *help)
{
    admin_head(o, name, "counter", help);
    for (size_t i = 0; i < s->nrules; i++)
        for (size_t k = 0; k < nids; k++)
            admin_outf(o, "%s{rule=\"%s\",%s=\"%s\"} %" PRId64 "\n", name,
                       rl_rule_name(s->rules[i].rule), label, rl_stat_rule_counter_names[ids[k]],
                       s->rules[i].c[ids[k]]);
}

static void admin_rules(admin_out *o, const rl_stats *s)
{
    static const int decisions[] = {RL_STAT_ALLOWED, RL_STAT_REFUSED, RL_STAT_DRY_RUN_REFUSED};
    static const int paths[] = {RL_STAT_FALLBACK, RL_STAT_FAIL_OPEN, RL_STAT_FAIL_CLOSED,
                                RL_STAT_REFUSAL_CACHE};

    admin_rule_family(o, s, "ratelimit_requests_total", "decision", decisions,
                      sizeof decisions / sizeof *decisions,
                      "Requests each rule matched, by outcome: allowed (the request was "
                      "admitted), refused (this rule refused it), dry_run_refused (this dry-run "
                      "rule would have).");
    admin_rule_family(o, s, "ratelimit_store_decisions_total", "path", paths,
                      sizeof paths / sizeof *paths,
                      "Rule decisions Redis did not make: fallback (shared memory), fail_open, "
                      "fail_closed, refusal_cache.");
}

/* A family of one sample: name value. */
static void admin_one(admin_out *o, const char *name, const char *type, const char *help, int64_t v)
{
    admin_head(o, name, type, help);
    admin_outf(o, "%s %" PRId64 "\n", name, v);
}

/* A counter family of two samples: name{label="a"} va, name{label="b"} vb. */
static void admin_two(admin_out *o, const char *name, const char *help, const char *label,
                      const char *a, int64_t va, const char *b, int64_t vb)
{
    admin_head(o, name, "counter", help);
    admin_outf(o, "%s{%s=\"%s\"} %" PRId64 "\n", name, label, a, va);
    admin_outf(o, "%s{%s=\"%s\"} %" PRId64 "\n", name, label, b, vb);
}

static void admin_globals(admin_out *o, const rl_stats *s)
{
    const int64_t *g = s->global;

    admin_one(o, "ratelimit_decisions_total", "counter", "Decisions made.", g[RL_STAT_REQUESTS]);
    admin_two(o, "ratelimit_access_list_total",
              "Clients answered by access.deny (403) or access.allow (no limit).", "list", "deny",
              g[RL_STAT_ACCESS_DENIED], "allow", g[RL_STAT_ACCESS_ALLOWED]);
    admin_one(o, "ratelimit_missing_key_total", "counter",
              "Requests refused for a missing key (on_missing_key = \"refuse\").",
              g[RL_STAT_MISSING_KEY]);
    admin_two(o, "ratelimit_backend_errors_total", "Store calls that failed.", "backend", "redis",
              g[RL_STAT_REDIS_ERRORS], "shm", g[RL_STAT_SHM_ERRORS]);
    admin_one(o, "ratelimit_unchecked_total", "counter",
              "Requests admitted unchecked because no store could decide.", g[RL_STAT_UNCHECKED]);
    admin_one(o, "ratelimit_regex_limit_total", "counter",
              "path_regex matches stopped by their match limit (rule not matched).",
              g[RL_STAT_REGEX_LIMIT]);
}

static void admin_histogram(admin_out *o, const rl_stats *s)
{
    int64_t cum = 0;

    admin_head(o, "ratelimit_decision_seconds", "histogram", "Time one decision took.");
    for (int i = 0; i < RL_STATS_BUCKETS; i++) {
        cum += s->latency[i];
        if (i < RL_STATS_BUCKETS - 1)
            admin_outf(o, "ratelimit_decision_seconds_bucket{le=\"%.6f\"} %" PRId64 "\n",
                       (double)(1LL << i) / 1e6, cum);
        else
            admin_outf(o, "ratelimit_decision_seconds_bucket{le=\"+Inf\"} %" PRId64 "\n", cum);
    }
    admin_outf(o, "ratelimit_decision_seconds_sum %.6f\n",
               (double)s->global[RL_STAT_LATENCY_SUM_US] / 1e6);
    admin_outf(o, "ratelimit_decision_seconds_count %" PRId64 "\n", cum);
}

static void admin_gauges(handle_ctx *ctx, admin_out *o)
{
    rl_table_stats ts;
    rl_redis_where where;
    rl_config_redis_where(ctx->cfg, &where);
    int configured = where.enabled;

    if (rl_limiter_table_stats(ctx->lim, &ts) == 0) {
        admin_one(o, "ratelimit_shm_entries", "gauge", "Keys in the shared-memory table.",
                  ts.entries);
        admin_one(o, "ratelimit_shm_capacity", "gauge", "Keys the shared-memory table holds.",
                  ts.capacity);
        admin_one(o, "ratelimit_shm_evictions_total", "counter",
                  "Live keys evicted from the shared-memory table to make room.", ts.evictions);
        admin_one(o, "ratelimit_shm_repairs_total", "counter",
                  "Damaged stripes of the shared-memory table rebuilt (their keys forgotten).",
                  ts.repairs);
    }
    admin_one(o, "ratelimit_redis_configured", "gauge", "1 when Redis is enabled.", configured);
    admin_one(o, "ratelimit_redis_up", "gauge",
              "1 when Redis is enabled and answered this process' last decision.",
              configured && strcmp(rl_limiter_health(ctx->lim), "ok") == 0);
}

/* A node's name (from the slot map or a sentinel) escaped as a label value (backslash, quote,
 * newline) into dst, 2 * strlen(src) + 1 bytes. */
static void admin_label(char *dst, const char *src)
{
    for (const char *p = src; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n')
            *dst++ = '\\';
        *dst++ = *p == '\n' ? 'n' : *p;
    }
    *dst = '\0';
}

/* The per-node series of the pool's Redis nodes (cluster masters, the masters the sentinels
 * named; none without), and with Sentinel the current master and its changes. */
static void admin_nodes(handle_ctx *ctx, admin_out *o)
{
    static rl_redis_node_stats nodes[RL_STATS_NODES + 1];
    static char names[RL_STATS_NODES + 1][2 * sizeof nodes[0].node];
    size_t n = rl_limiter_redis_nodes(ctx->lim, nodes, sizeof nodes / sizeof nodes[0]);
    rl_redis_sentinel_stats sen;
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"ratelimit_redis_node_decisions_total", "counter",
         "Decisions a Redis node made for the pool (cluster: slot groups)."},
        {"ratelimit_redis_node_failures_total", "counter",
         "Decisions a Redis node failed for the pool (errors, timeouts)."},
        {"ratelimit_redis_node_redirects_total", "counter",
         "MOVED and ASK replies a Redis Cluster master sent the pool."},
        {"ratelimit_redis_node_breaker_open", "gauge",
         "1 when the last circuit breaker change a process made for a Redis node opened it."},
        {"ratelimit_redis_node_breaker_changed_timestamp_seconds", "gauge",
         "When a process last opened or closed its breaker for a Redis node (nodes whose "
         "breaker ever opened)."},
        {"ratelimit_redis_node_last_error_timestamp_seconds", "gauge",
         "When a Redis node last failed (nodes that ever failed)."},
    };

    if (n > sizeof nodes / sizeof nodes[0])
        n = sizeof nodes / sizeof nodes[0];
    for (size_t i = 0; i < n; i++)
        admin_label(names[i], nodes[i].node);
    for (size_t f = 0; n > 0 && f < sizeof fam / sizeof fam[0]; f++) {
        admin_head(o, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < n; i++) {
            int64_t v = f == 0   ? nodes[i].decisions
                        : f == 1 ? nodes[i].failures
                        : f == 2 ? nodes[i].redirects
                        : f == 3 ? nodes[i].breaker_open
                        : f == 4 ? nodes[i].breaker_changed_ms
                                 : nodes[i].last_error_ms;
            if (f < 4)
                admin_outf(o, "%s{node=\"%s\"} %" PRId64 "\n", fam[f].name, names[i], v);
            else if (v > 0)
                admin_outf(o, "%s{node=\"%s\"} %.3f\n", fam[f].name, names[i], (double)v / 1e3);
        }
    }
    if (rl_limiter_redis_sentinel(ctx->lim, &sen)) {
        static char master[2 * sizeof sen.master];
        admin_label(master, sen.master);
        admin_head(o, "ratelimit_redis_sentinel_master", "gauge",
                   "1 for the master the pool last connected to that the sentinels named.");
        admin_outf(o, "ratelimit_redis_sentinel_master{node=\"%s\"} 1\n", master);
        admin_head(o, "ratelimit_redis_sentinel_master_changes_total", "counter",
                   "Times the pool connected to another master than the last one (failovers).");
        admin_outf(o, "ratelimit_redis_sentinel_master_changes_total %" PRId64 "\n", sen.changes);
        if (sen.changed_ms > 0) {
            admin_head(o, "ratelimit_redis_sentinel_master_changed_timestamp_seconds", "gauge",
                       "When the pool last connected to another master.");
            admin_outf(o, "ratelimit_redis_sentinel_master_changed_timestamp_seconds %.3f\n",
                       (double)sen.changed_ms / 1e3);
        }
    }
}

void admin_metrics(handle_ctx *ctx, admin_out *o)
{
    static rl_stats s;

    rl_limiter_probe(ctx->lim);
    rl_limiter_stats(ctx->lim, &s);
    admin_rules(o, &s);
    admin_globals(o, &s);
    admin_histogram(o, &s);
    admin_gauges(ctx, o);
    admin_nodes(ctx, o);
}
