/* admin_json.c -- the JSON bodies of the admin endpoints: health, statistics, test
 *
 * health  {"status":"ok","backend":{"redis":{"configured":true,"state":"closed",
 *          "host":"127.0.0.1","port":6379,"db":0},"shm":{"name":"/rl","capacity":100000,
 *          "entries":12,"evictions":0,"repairs":0}}}   (never the Redis user or password)
 * stats   {"requests":N,"access":{"denied":N,"allowed":N},"missing_key":N,
 *          "errors":{"redis":N,"shm":N},"unchecked":N,"unslotted":N,"regex_limit":N,
 *          "latency_us":{"buckets":[{"le":1,"count":N},...,{"le":"+Inf","count":N}],
 *          "sum":N,"count":N},"rules":[{"rule":"x","allowed":N,"refused":N,
 *          "dry_run_refused":N,"fallback":N,"fail_open":N,"fail_closed":N,
 *          "refusal_cache":N}],"shm":{...as health, plus "expired_reclaimed"},
 *          "redis":{"nodes":[{"node":"127.0.0.1:7001","kind":"cluster|sentinel|other",
 *          "role":"master|former master","breaker":"open|closed","breaker_changed_ms":T|null,
 *          "last_error_ms":T|null,"decisions":N,"failures":N,"redirects":N}],
 *          "sentinel":{"master":"H:P","master_changes":N,"master_changed_ms":T|null}}}
 *          (the pool's rows, from the statistics segment; "sentinel" once a master is known;
 *          T: epoch ms)
 * test    the request {"client":"192.0.2.1","path":"/x","method":"GET","headers":{...}}
 *         answered with decision_json's object.
 */
#include "../core/fmacros.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config_where.h"
#include "decision_json.h"

#define ADMIN_TEST_HEADERS_MAX 32

/* Dumps o (stolen) into out, with a newline. */
static void admin_dump(json_t *o, admin_out *out)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    if (text == NULL)
        out->failed = 1;
    else
        admin_outf(out, "%s\n", text);
    free(text);
    json_decref(o);
}

static json_t *admin_shm_json(handle_ctx *ctx, int full)
{
    rl_table_stats ts;

    if (rl_limiter_table_stats(ctx->lim, &ts) < 0)
        return json_pack("{s:s, s:s}", "name", rl_config_shm_name(ctx->cfg), "error",
                         rl_limiter_errstr(ctx->lim));
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", rl_config_shm_name(ctx->cfg),
                          "capacity", (json_int_t)ts.capacity, "entries", (json_int_t)ts.entries,
                          "evictions", (json_int_t)ts.evictions, "repairs", (json_int_t)ts.repairs);
    if (o != NULL && full)
        json_object_set_new(o, "expired_reclaimed", json_integer(ts.expired_reclaimed));
    return o;
}

static json_t *admin_redis_json(const handle_ctx *ctx)
{
    rl_redis_where r;
    rl_config_redis_where(ctx->cfg, &r);
    json_t *o = json_pack("{s:b, s:s}", "configured", r.enabled, "state",
                          rl_limiter_breaker_state(ctx->lim));

    if (o == NULL || !r.enabled)
        return o;
    if (r.socket != NULL)
        json_object_set_new(o, "socket", json_string(r.socket));
    else {
        json_object_set_new(o, "host", json_string(r.host));
        json_object_set_new(o, "port", json_integer(r.port));
    }
    json_object_set_new(o, "db", json_integer(r.db));
    return o;
}

int admin_health(handle_ctx *ctx, admin_out *out)
{
    rl_limiter_probe(ctx->lim); /* the answer is about now, not the last decision */
    const char *status = rl_limiter_health(ctx->lim);

    admin_dump(json_pack("{s:s, s:{s:o*, s:o*}}", "status", status, "backend", "redis",
                         admin_redis_json(ctx), "shm", admin_shm_json(ctx, 0)),
               out);
    return strcmp(status, "down") == 0 ? 503 : 200;
}

static json_t *admin_latency_json(const rl_stats *s)
{
    json_t *buckets = json_array();
    int64_t count = 0;

    for (int i = 0; buckets != NULL && i < RL_STATS_BUCKETS; i++) {
        json_t *le =
            i < RL_STATS_BUCKETS - 1 ? json_integer((json_int_t)1 << i) : json_string("+Inf");
        json_array_append_new(
            buckets, json_pack("{s:o, s:I}", "le", le, "count", (json_int_t)s->latency[i]));
        count += s->latency[i];
    }
    return json_pack("{s:o*, s:I, s:I}", "buckets", buckets, "sum",
                     (json_int_t)s->global[RL_STAT_LATENCY_SUM_US], "count", (json_int_t)count);
}

/* An epoch-ms time, or null for 0 (never). */
static json_t *admin_time_json(int64_t ms)
{
    return ms > 0 ? json_integer((json_int_t)ms) : json_null();
}

/* {"nodes":[...],"sentinel":{...}}: the pool's Redis node rows, and the Sentinel master. */
static json_t *admin_nodes_json(const handle_ctx *ctx)
{
    static rl_redis_node_stats nodes[RL_STATS_NODES + 1];
    size_t n = rl_limiter_redis_nodes(ctx->lim, nodes, sizeof nodes / sizeof nodes[0]);
    rl_redis_sentinel_stats sen;
    json_t *a = json_array(), *o;

    if (n > sizeof nodes / sizeof nodes[0])
        n = sizeof nodes / sizeof nodes[0];
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:s, s:o*, s:o*, s:I, s:I, s:I}", "node", nodes[i].node,
                         "kind", nodes[i].kind, "role", nodes[i].role, "breaker",
                         nodes[i].breaker_open ? "open" : "closed", "breaker_changed_ms",
                         admin_time_json(nodes[i].breaker_changed_ms), "last_error_ms",
                         admin_time_json(nodes[i].last_error_ms), "decisions",
                         (json_int_t)nodes[i].decisions, "failures", (json_int_t)nodes[i].failures,
                         "redirects", (json_int_t)nodes[i].redirects));
    o = json_pack("{s:o*}", "nodes", a);
    if (o != NULL && rl_limiter_redis_sentinel(ctx->lim, &sen))
        json_object_set_new(o, "sentinel",
                            json_pack("{s:s, s:I, s:o*}", "master", sen.master, "master_changes",
                                      (json_int_t)sen.changes, "master_changed_ms",
                                      admin_time_json(sen.changed_ms)));
    return o;
}

void admin_stats(handle_ctx *ctx, admin_out *out)
{
    static rl_stats s; /* 17 KiB: off the stack */
    json_t *rules = json_array();
    const int64_t *g = s.global;

    rl_limiter_stats(ctx->lim, &s);
    for (size_t i = 0; rules != NULL && i < s.nrules; i++) {
        json_t *r = json_pack("{s:s}", "rule", rl_rule_name(s.rules[i].rule));
        for (int c = 0; r != NULL && c < RL_STAT_RULE_COUNTERS; c++)
            json_object_set_new(r, rl_stat_rule_counter_names[c],
                                json_integer((json_int_t)s.rules[i].c[c]));
        json_array_append_new(rules, r);
    }
    admin_dump(
        json_pack("{s:I, s:{s:I, s:I}, s:I, s:{s:I, s:I}, s:I, s:I, s:I, "
                  "s:o*, s:o*, s:o*, s:o*}",
                  "requests", (json_int_t)g[RL_STAT_REQUESTS], "access", "denied",
                  (json_int_t)g[RL_STAT_ACCESS_DENIED], "allowed",
                  (json_int_t)g[RL_STAT_ACCESS_ALLOWED], "missing_key",
                  (json_int_t)g[RL_STAT_MISSING_KEY], "errors", "redis",
                  (json_int_t)g[RL_STAT_REDIS_ERRORS], "shm", (json_int_t)g[RL_STAT_SHM_ERRORS],
                  "unchecked", (json_int_t)g[RL_STAT_UNCHECKED], "unslotted",
                  (json_int_t)g[RL_STAT_UNSLOTTED], "regex_limit",
                  (json_int_t)g[RL_STAT_REGEX_LIMIT], "latency_us", admin_latency_json(&s), "rules",
                  rules, "shm", admin_shm_json(ctx, 1), "redis", admin_nodes_json(ctx)),
        out);
}

/* ---- test ---------------------------------------------------------------------------------- */

typedef struct admin_headers {
    char name[ADMIN_TEST_HEADERS_MAX][64]; /* lowercase */
    const char *value[ADMIN_TEST_HEADERS_MAX];
    size_t n;
} admin_headers;

static const char *admin_get_header(void *ud, const char *lowercase_name)
{
    const admin_headers *h = ud;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->name[i], lowercase_name) == 0)
            return h->value[i];
    return NULL;
}

static int admin_bad(admin_out *out, const char *why)
{
    admin_dump(json_pack("{s:s}", "error", why), out);
    return 400;
}

/* The "headers" object into h (values borrowed from the JSON). NULL, or why it is wrong. */
static const char *admin_test_headers(json_t *obj, admin_headers *h)
{
    const char *key;
    json_t *v;

    h->n = 0;
    if (obj == NULL)
        return NULL;
    if (!json_is_object(obj))
        return "\"headers\" must be an object of strings";
    json_object_foreach(obj, key, v)
    {
        size_t len = strlen(key);
        if (!json_is_string(v) || len == 0 || len >= sizeof h->name[0])
            return "\"headers\" must be an object of strings, names of 1..63 bytes";
        if (h->n == ADMIN_TEST_HEADERS_MAX)
            return "\"headers\": at most 32";
        for (size_t i = 0; i <= len; i++)
            h->name[h->n][i] = (char)tolower((unsigned char)key[i]);
        h->value[h->n++] = json_string_value(v);
    }
    return NULL;
}

int admin_test(handle_ctx *ctx, rl_limiter *lim, const char *body, size_t len, admin_out *out)
{
    static admin_headers hs;
    json_error_t jerr;
    const char *client = NULL, *path = NULL, *method = "GET", *host = NULL, *why;
    json_t *headers = NULL;
    rl_decision d;
    int status;
    (void)ctx;

    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg, "invalid JSON: %s at line %d", jerr.text, jerr.line);
        return admin_bad(out, msg);
    }
    if (json_unpack_ex(req, &jerr, JSON_STRICT, "{s:s, s:s, s?:s, s?:s, s?:o}", "client", &client,
                       "path", &path, "method", &method, "host", &host, "headers", &headers) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "expected {\"client\":ADDR, \"path\":PATH, \"method\", "
                 "\"host\", \"headers\":{...}}: %s",
                 jerr.text);
        json_decref(req);
        return admin_bad(out, msg);
    }
    if ((why = admin_test_headers(headers, &hs)) != NULL) {
        status = admin_bad(out, why);
        json_decref(req);
        return status;
    }
    rl_request rq = {.remote_addr = client,
                     .path = path,
                     .method = method,
                     .host = host,
                     .header = admin_get_header,
                     .header_ud = &hs,
                     .cost = 1};
    if (rl_decide(lim, &rq, &d) != 0) {
        status = admin_bad(out, rl_limiter_errstr(lim));
        json_decref(req);
        return status;
    }
    admin_dump(decision_json(&d), out);
    json_decref(req);
    return 200;
}
