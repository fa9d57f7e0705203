/* bench_redis.c -- how fast a Redis decision is, against a raw hiredis loop (not a test)
 *
 * Starts its own redis-server on a free port (lib_redis_server.c), then runs, on one
 * connection:
 *   raw       redisCommandArgv(EVALSHA) of the same script with the same arguments: the usual
 *             way to call hiredis, one round trip and nothing else
 *   backend   rl_redis_decide (key building, the command in RESP, reply checks)
 *   decide    rl_decide through the limiter (matching, keys, breaker, refusal cache lookup)
 * alternately, BENCH_ROUNDS rounds of BENCH_MS / BENCH_ROUNDS each (so a machine whose speed
 * drifts meanwhile affects them alike), then
 *   flood     one client far over its limit: rl_redis_decide (every refusal a round trip)
 *             vs rl_decide (refused from the shm refusal cache), BENCH_MS each,
 * and prints decisions/s and p50/p99 latency of each, and backend/raw and decide/raw ratios
 * (raw FCALL, what rl_redis_decide sends to a Redis 7, and raw EVALSHA, its fallback);
 *
 * then Redis' own time per decision (INFO commandstats, usec per call, so no round trip
 * counts) of one GCRA rule at Redis' clock, the common decision, run as the function (FCALL)
 * and as a script (EVALSHA), and as the function for a rule whose every admission moves the
 * key's expiry, against a floor measured in the same run: a script of one GET and one
 * SET ... PX (bare_fcgi.c's, the least a decision in Redis can do), in alternating pipelined
 * batches; and the ratios to the floor, and the goal (<= 1.3 x) met or not;
 *
 * and then, for sliding_log at COUNT = 100, 1000, 10000 and 100000 (period COUNT ms, a full
 * log of one unit per ms, filled through the script), MEMORY USAGE of the key and Redis' own
 * time per decision (INFO commandstats usec_per_call, so no round trip counts) for an
 * admission that also drops the oldest unit, and for a refusal; beside it, the compact
 * alternative measured the same way: the log as one string of offsets ("l:BASE:O1,..."),
 * parsed and rewritten by Lua on every decision, as the script does up to RL_LOG_MAX; and
 * the other algorithms at 100 per 100 ms, one decision a ms, for the same two figures.
 *
 * `bench_redis --ops N` runs each exactly N times instead, for instruction counts:
 *   valgrind --tool=callgrind --toggle-collect=raw_op --toggle-collect=be_op \
 *       build/bench/bench_redis --ops 5000
 * then callgrind_annotate --inclusive=yes: raw_op's and be_op's Ir / N are the client-side
 * instructions per decision.
 */
#include "fmacros.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "lib_redis_server.h"
#include "redis_script.h"

#define BENCH_MS 1500
#define BENCH_ROUNDS 5 /* the compared runs alternate, BENCH_MS / BENCH_ROUNDS at a time */
#define BENCH_MAX 2000000

typedef int (*bench_op)(void *ud);

/* One measured operation: its latencies (ns per op) over every round. */
typedef struct bench {
    const char *name;
    bench_op op;
    void *ud;
    int64_t *lat;
    size_t n;
    int64_t ns; /* time spent in its rounds */
} bench;

static size_t bench_ops; /* --ops N: exactly N operations per run (for callgrind), not timed */

static int64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Runs b->op for ms (or, with --ops, until it has run bench_ops times in all). */
static void bench_round(bench *b, int64_t ms)
{
    int64_t start = bench_ns(), end = start + ms * 1000000;

    while (b->n < BENCH_MAX && (bench_ops > 0 ? b->n < bench_ops : 1)) {
        int64_t t = bench_ns();
        if (bench_ops == 0 && t >= end)
            break;
        if (b->op(b->ud) < 0) {
            fprintf(stderr, "%s: operation failed\n", b->name);
            exit(1);
        }
        b->lat[b->n++] = bench_ns() - t;
    }
    b->ns += bench_ns() - start;
}

/* Prints and returns decisions per second. */
static double bench_report(bench *b)
{
    double rate = b->ns > 0 ? (double)b->n / ((double)b->ns / 1e9) : 0;

    qsort(b->lat, b->n, sizeof(*b->lat), bench_cmp);
    printf("%-22s %9.0f decisions/s   p50 %6.1f us   p99 %6.1f us   (%zu ops)\n", b->name,
           rate, (double)b->lat[b->n / 2] / 1000.0, (double)b->lat[b->n * 99 / 100] / 1000.0,
           b->n);
    return rate;
}

/* Runs the n benches alternately, BENCH_ROUNDS rounds, so that a machine getting slower or
 * faster meanwhile affects them alike; writes each one's rate into rates. */
static void bench_compare(bench *bs, size_t n, double *rates)
{
    for (int round = 0; round < BENCH_ROUNDS; round++)
        for (size_t i = 0; i < n; i++)
            bench_round(&bs[i], BENCH_MS / BENCH_ROUNDS);
    for (size_t i = 0; i < n; i++)
        rates[i] = bench_report(&bs[i]);
}

/* ---- raw hiredis ---- */
typedef struct raw_ctx {
    redisContext *c;
    const char *argv[16];
    size_t len[16];
    int argc;
} raw_ctx;

static int raw_op(void *ud)
{
    raw_ctx *x = ud;
    redisReply *r = redisCommandArgv(x->c, x->argc, x->argv, x->len);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* ---- rl_redis_decide ---- */
typedef struct be_ctx {
    rl_redis *r;
    rl_item item;
    rl_rule_result res;
} be_ctx;

static int be_op(void *ud)
{
    be_ctx *x = ud;
    return rl_redis_decide(x->r, &x->item, 1, -1);
}

/* ---- rl_decide ---- */
typedef struct lim_ctx {
    rl_limiter *lim;
    rl_request req;
    rl_decision d;
} lim_ctx;

static int lim_op(void *ud)
{
    lim_ctx *x = ud;
    return rl_decide(x->lim, &x->req, &x->d);
}

/* ---- sliding_log sizes ---- */

/* The compact alternative: slidelog's string form, uncapped, parsed and written whole. */
static const char slog_compact_lua[] =
    "local now, period = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local s, t = redis.call('GET', KEYS[1]), {}\n"
    "if s then\n"
    "  local base, offs = string.match(s, '^l:(%-?%d+):([%d,]*)$')\n"
    "  base = tonumber(base)\n"
    "  for o in string.gmatch(offs, '%d+') do\n"
    "    local x = base + tonumber(o)\n"
    "    if x > now - period then t[#t + 1] = x end\n"
    "  end\n"
    "end\n"
    "if #t >= tonumber(ARGV[3]) then return 0 end\n"
    "t[#t + 1] = now\n"
    "local o = {}\n"
    "for i = 1, #t do o[i] = string.format('%d', t[i] - t[1]) end\n"
    "redis.call('SET', KEYS[1], string.format('l:%d:', t[1]) .. table.concat(o, ','), 'PX',\n"
    "           string.format('%d', period))\n"
    "return 1\n";

static redisReply *bench_cmd(redisContext *c, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "bench: %s: %s\n", argv[0], r != NULL ? r->str : c->errstr);
        exit(1);
    }
    return r;
}

/* Calls of `command` ("evalsha", "fcall") and the usec Redis spent in them since the last
 * CONFIG RESETSTAT (INFO commandstats); the usec per call returned, -1 without calls. */
static double bench_command_usec(redisContext *c, const char *command, double *calls,
                                 double *usec)
{
    char field[64];
    redisReply *r = redisCommand(c, "INFO commandstats");
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    double n = 0, u = 0;

    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    if (p != NULL && (p = strstr(p, field)) != NULL) {
        n = strtod(p + strlen(field), NULL);
        if ((p = strstr(p, "usec=")) != NULL)
            u = strtod(p + strlen("usec="), NULL);
    }
    freeReplyObject(r);
    if (calls != NULL)
        *calls += n;
    if (usec != NULL)
        *usec += u;
    return n > 0 ? u / n : -1;
}

/* usec_per_call of EVALSHA since the last CONFIG RESETSTAT. */
static double bench_evalsha_usec(redisContext *c)
{
    return bench_command_usec(c, "evalsha", NULL, NULL);
}

static void bench_resetstat(redisContext *c)
{
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
}

static long long bench_memory(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "MEMORY USAGE %s SAMPLES 0", key);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

/* One decision of algorithm `algo` (rl_algo's value, as text), count per count ms, through
 * the function (FCALL, as the filter on Redis 7) at now (cost 1); returns allowed. */
static int algo_decide(redisContext *c, const char *algo, const char *key,
                       long count, long long now)
{
    char nows[32], counts[32];
    snprintf(nows, sizeof nows, "%lld", now);
    snprintf(counts, sizeof counts, "%ld", count);
    const char *argv[] = {"FCALL", rl_redis_function, "1",    key, nows, algo,
                          counts,  counts,            counts, "1", "0"};
    redisReply *r = bench_cmd(c, 11, argv);
    int allowed = r->type == REDIS_REPLY_ARRAY && r->elements == 5 && r->element[0]->integer;
    freeReplyObject(r);
    return allowed;
}

static int slog_decide(redisContext *c, const char *key, long count,
                       long long now)
{
    return algo_decide(c, "3", key, count, now);
}

static int compact_decide(redisContext *c, const char *sha, const char *key, long count,
                          long long now)
{
    char nows[32], counts[32];
    snprintf(nows, sizeof nows, "%lld", now);
    snprintf(counts, sizeof counts, "%ld", count);
    const char *argv[] = {"EVALSHA", sha, "1", key, nows, counts, counts};
    redisReply *r = bench_cmd(c, 7, argv);
    int allowed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return allowed;
}

/* The script's log of count units, one per ms from t0, filled by pipelined decisions. */
static void slog_fill(redisContext *c, const char *sha, const char *key, long count,
                      long long t0)
{
    char counts[32];
    snprintf(counts, sizeof counts, "%ld", count);
    for (long i = 0; i < count; i += 1000) {
        long m = count - i < 1000 ? count - i : 1000;
        for (long j = 0; j < m; j++) {
            char nows[32];
            snprintf(nows, sizeof nows, "%lld", t0 + i + j);
            const char *argv[] = {"EVALSHA", sha, "1",    key, nows, "3",
                                  counts,    counts, counts, "1", "0"};
            redisAppendCommandArgv(c, 11, argv, NULL);
        }
        for (long j = 0; j < m; j++) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK) {
                fprintf(stderr, "bench: fill: %s\n", c->errstr);
                exit(1);
            }
            freeReplyObject(r);
        }
    }
}

/* The compact log of count units, one per ms from t0, written directly. */
static void compact_fill(redisContext *c, const char *key, long count, long long t0)
{
    size_t cap = 32 + (size_t)count * 8, len;
    char *v = malloc(cap);
    if (v == NULL)
        exit(1);
    len = (size_t)snprintf(v, cap, "l:%lld:", t0);
    for (long i = 0; i < count; i++)
        len += (size_t)snprintf(v + len, cap - len, i > 0 ? ",%ld" : "%ld", i);
    const char *argv[] = {"SET", key, v};
    size_t lens[] = {3, strlen(key), len};
    redisReply *r = redisCommandArgv(c, 3, argv, lens);
    freeReplyObject(r);
    free(v);
}

/* Full log, then n admissions (each at the next ms: the oldest leaves, one joins) and n
 * refusals (the same ms again); Redis' usec per call of each. */
static void bench_slog_size(redisContext *c, const char *sha, const char *csha, long count)
{
    const long long t0 = 1700000000000LL;
    const long n = count >= 100000 ? 20 : count >= 10000 ? 100 : 1000;
    char key[64], ckey[64];
    double adm, ref, cadm;
    long long mem, cmem;

    snprintf(key, sizeof key, "b:{slog-%ld}:log", count);
    snprintf(ckey, sizeof ckey, "b:{compact-%ld}:log", count);
    slog_fill(c, sha, key, count, t0);
    mem = bench_memory(c, key);
    bench_resetstat(c);
    for (long k = 0; k < n; k++)
        if (!slog_decide(c, key, count, t0 + count + k))
            fprintf(stderr, "bench: sliding_log %ld: a steady admission was refused\n", count);
    adm = bench_command_usec(c, "fcall", NULL, NULL);
    bench_resetstat(c);
    for (long k = 0; k < n; k++)
        if (slog_decide(c, key, count, t0 + count + n - 1))
            fprintf(stderr, "bench: sliding_log %ld: a full log admitted\n", count);
    ref = bench_command_usec(c, "fcall", NULL, NULL);

    compact_fill(c, ckey, count, t0);
    cmem = bench_memory(c, ckey);
    bench_resetstat(c);
    for (long k = 0; k < n; k++)
        if (!compact_decide(c, csha, ckey, count, t0 + count + k))
            fprintf(stderr, "bench: compact %ld: a steady admission was refused\n", count);
    cadm = bench_evalsha_usec(c);
    printf("sliding_log %6ld/%ldms  %-10s %9lld bytes/key (%5.1f/unit)  Redis %8.1f us/admission "
           "%8.1f us/refusal | string form %8lld bytes/key, %9.1f us/admission\n",
           count, count, count <= RL_LOG_MAX ? "(string)" : "(sorted set)", mem,
           (double)mem / (double)count, adm, ref, cmem, cadm);
    const char *del[] = {"DEL", key, ckey};
    freeReplyObject(bench_cmd(c, 3, del));
}

/* The other algorithms at 100 per 100 ms, one decision a ms for 2000 ms (admissions and
 * refusals as the rule decides): Redis' usec per call and the key's MEMORY USAGE. */
static void bench_algos(redisContext *c)
{
    static const char *const names[] = {"gcra", "fixed_window", "sliding_window"};
    static const char *const algos[] = {"0", "1", "2"};
    const long long t0 = 1700000000000LL;

    for (int a = 0; a < 3; a++) {
        char key[64];
        long admitted = 0;
        snprintf(key, sizeof key, "b:{algo-%s}:x", names[a]);
        bench_resetstat(c);
        for (long k = 0; k < 2000; k++)
            admitted += algo_decide(c, algos[a], key, 100, t0 + k);
        printf("%-14s 100/100ms %9lld bytes/key  Redis %8.1f us/decision (%ld of 2000 "
               "admitted)\n",
               names[a], bench_memory(c, key), bench_command_usec(c, "fcall", NULL, NULL), admitted);
        const char *del[] = {"DEL", key};
        freeReplyObject(bench_cmd(c, 2, del));
    }
}

static void bench_slog(redisContext *c, const char *sha)
{
    static const long counts[] = {100, 1000, 10000, 100000};
    const char *load[] = {"SCRIPT", "LOAD", slog_compact_lua};
    redisReply *csha = bench_cmd(c, 3, load);

    bench_algos(c);

    printf("sliding_log, a full log of COUNT units over COUNT ms (Redis time from INFO "
           "commandstats; memory from MEMORY USAGE):\n");
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        bench_slog_size(c, sha, csha->str, counts[i]);
    freeReplyObject(csha);
}

/* ---- Redis' time per decision against the GET+SET floor ---- */

/* bare_fcgi.c's floor: one GET and one SET with PX. */
static const char floor_lua[] = "redis.call('GET', KEYS[1]) "
                                "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                "return 1";

/* Sends argv n times pipelined (batches of 100) and reads every reply. */
static void bench_pipeline(redisContext *c, int argc, const char **argv, long n)
{
    for (long i = 0; i < n; i += 100) {
        long m = n - i < 100 ? n - i : 100;
        for (long j = 0; j < m; j++)
            redisAppendCommandArgv(c, argc, argv, NULL);
        for (long j = 0; j < m; j++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL ||
                r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "bench: %s: %s\n", argv[0],
                        r != NULL ? r->str : c->errstr);
                exit(1);
            }
            freeReplyObject(r);
        }
    }
}

/* Batches of the Redis-time comparison: the median of their usec per call is kept, since on
 * a loaded machine one batch descheduled mid-call can double a sum over all of them. */
#define SERVER_ROUNDS 11

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The floor, the script by EVALSHA and the function by FCALL, each SERVER_ROUNDS batches of
 * `n` alternately; the median over its batches of Redis' usec per call of each. The rule, 1e9 a second,
 * puts hundreds of admissions in a ms, where the key's expiry need not move and the script
 * keeps it (SET ... KEEPTTL); the last row's, 1 a second with a burst of 1e9, moves it on
 * every admission (SET ... PX), as a client's own key at a modest rate does. */
static void bench_server_time(redisContext *c, const char *sha, long n)
{
    const char *load[] = {"SCRIPT", "LOAD", floor_lua};
    const char *fload[] = {"FUNCTION", "LOAD", "REPLACE", rl_redis_library};
    redisReply *fsha = bench_cmd(c, 3, load);
    size_t flen[] = {8, 4, 7, rl_redis_library_len};
    redisReply *lib = redisCommandArgv(c, 4, fload, flen);
    const char *floor_argv[] = {"EVALSHA", fsha->str, "1", "b:{floor}:k", "1", "60000"};
    /* now -1 (Redis' clock), then algo gcra, count, period, burst, cost 1, no dry run. */
    const char *ev_argv[] = {"EVALSHA", sha, "1", "b:{ev}:global", "-1", "0",
                             "1000000000", "1000", "1000000000", "1", "0"};
    const char *fc_argv[] = {"FCALL", rl_redis_function, "1", "b:{fc}:global", "-1", "0",
                             "1000000000", "1000", "1000000000", "1", "0"};
    const char *mv_argv[] = {"FCALL", rl_redis_function, "1", "b:{mv}:global", "-1", "0",
                             "1", "1000", "1000000000", "1", "0"};
    /* The four, in the order of names[], each timed by its command's INFO commandstats. */
    const struct {
        int argc;
        const char **argv;
        const char *command;
    } runs[4] = {{6, floor_argv, "evalsha"},
                 {11, ev_argv, "evalsha"},
                 {11, fc_argv, "fcall"},
                 {11, mv_argv, "fcall"}};
    double round_usec[4][SERVER_ROUNDS], per[4];
    static const char *const names[] = {"GET+SET floor (EVALSHA)", "script by EVALSHA",
                                        "function by FCALL", "FCALL, expiry moved"};

    if (lib == NULL || lib->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "bench: FUNCTION LOAD failed: %s\n",
                lib != NULL && lib->type == REDIS_REPLY_ERROR ? lib->str : c->errstr);
        exit(1);
    }
    freeReplyObject(lib);
    for (int round = 0; round < SERVER_ROUNDS; round++) {
        for (int i = 0; i < 4; i++) {
            bench_resetstat(c);
            bench_pipeline(c, runs[i].argc, runs[i].argv, n);
            round_usec[i][round] = bench_command_usec(c, runs[i].command, NULL, NULL);
        }
    }
    printf("Redis time per decision, one GCRA rule at Redis' clock (INFO commandstats, median "
           "of %d alternating batches of %ld pipelined calls):\n",
           SERVER_ROUNDS, n);
    for (int i = 0; i < 4; i++) {
        qsort(round_usec[i], SERVER_ROUNDS, sizeof round_usec[i][0], bench_cmp_double);
        per[i] = round_usec[i][SERVER_ROUNDS / 2];
        printf("  %-26s %6.2f us/call", names[i], per[i]);
        if (i > 0)
            printf("   %.2f x the floor", per[i] / per[0]);
        printf("\n");
    }
    printf("goal: FCALL <= 1.3 x the GET+SET floor: %s (%.2f; %s, %.2f, with the expiry "
           "moved)\n",
           per[2] <= 1.3 * per[0] ? "met" : "NOT met", per[2] / per[0],
           per[3] <= 1.3 * per[0] ? "met" : "NOT met", per[3] / per[0]);
    freeReplyObject(fsha);
}

static rl_config *bench_config(const rlt_redis *srv, const char *limit, char *path, size_t size)
{
    rl_error err;
    FILE *f;

    snprintf(path, size, "/tmp/rl-bench-%d.conf", (int)getpid());
    f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fprintf(f, "shm: { name = \"/rl-bench-%d\"; capacity = 10000; };\n"
               "redis: { enabled = true; port = %d; prefix = \"b:\"; command_timeout_ms = 1000; };\n"
               "rules = ( { name = \"global\"; limit = \"%s\"; } );\n",
            (int)getpid(), srv->port, limit);
    fclose(f);
    rl_config *cfg = rl_config_load(path, &err);
    if (cfg == NULL)
        fprintf(stderr, "bench: %s\n", err.text);
    return cfg;
}

int main(int argc, char **argv)
{
    static char host[] = "127.0.0.1", prefix[] = "b:";
    static const rl_rule big = {.name = "global", .count = 1000000000, .period_ms = 1000,
                                .burst = 1000000000};
    static const rl_rule tiny = {.name = "global", .count = 1, .period_ms = 3600000, .burst = 1};
    char shm[64], path[256];
    rlt_redis srv;
    int rc = 1;
    rl_config *cfg = NULL;
    rl_limiter *lim = NULL;
    rl_error err;
    redisReply *sha = NULL;
    be_ctx be = {0};
    raw_ctx raw = {0}, rawf = {0};

    int64_t *lat = malloc(sizeof(*lat) * BENCH_MAX * 4);

    if (argc == 3 && strcmp(argv[1], "--ops") == 0)
        bench_ops = strtoul(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: bench_redis [--ops N]\n");
        return 2;
    }
    if (lat == NULL || rlt_redis_start(&srv, NULL) != 0)
        return 1;
    snprintf(shm, sizeof(shm), "/rl-bench-%d", (int)getpid());

    /* raw: load the script, then EVALSHA with the arguments redis.c would send. */
    path[0] = '\0';
    raw.c = rlt_redis_client(&srv);
    sha = redisCommand(raw.c, "SCRIPT LOAD %s", rl_redis_script);
    if (sha == NULL || sha->type != REDIS_REPLY_STRING)
        goto out;
    /* now -1 (Redis' clock), then algo gcra, count, period, burst, cost 1, no dry run. */
    const char *args[] = {"EVALSHA", sha->str, "1", "b:{bench-raw}:global", "-1", "0",
                          "1000000000", "1000", "1000000000", "1", "0"};
    raw.argc = (int)(sizeof(args) / sizeof(args[0]));
    for (int i = 0; i < raw.argc; i++) {
        raw.argv[i] = args[i];
        raw.len[i] = strlen(args[i]);
    }
    /* raw FCALL: the same, as the function rl_redis_decide calls on a Redis 7. */
    const char *fload[] = {"FUNCTION", "LOAD", "REPLACE", rl_redis_library};
    size_t flen[] = {8, 4, 7, rl_redis_library_len};
    redisReply *lib = redisCommandArgv(raw.c, 4, fload, flen);
    int libok = lib != NULL && lib->type == REDIS_REPLY_STRING;
    freeReplyObject(lib);
    if (!libok)
        goto out;
    rawf = raw;
    rawf.argv[0] = "FCALL";
    rawf.len[0] = 5;
    rawf.argv[1] = rl_redis_function;
    rawf.len[1] = RL_REDIS_FUNCTION_LEN;
    rawf.argv[3] = "b:{bench-rawf}:global";
    rawf.len[3] = strlen(rawf.argv[3]);

    rl_redis_config rcfg = {.enabled = 1, .host = host, .port = srv.port, .prefix = prefix,
                            .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
    be.r = rl_redis_new(&rcfg);
    be.item = (rl_item){.rule = &big, .client = "bench-be", .cost = 1, .res = &be.res};

    cfg = bench_config(&srv, "1000000000/s", path, sizeof(path));
    lim = cfg != NULL ? rl_limiter_open(cfg, &err) : NULL;
    if (lim == NULL)
        goto out;
    lim_ctx lc = {.lim = lim, .req = {.remote_addr = "bench-lim", .path = "/", .cost = 1}};

    if (bench_ops > 0)
        printf("redis-server %d, one connection, %zu operations per run\n", srv.port, bench_ops);
    else
        printf("redis-server %d, one connection, %d ms per run in %d alternating rounds\n",
               srv.port, BENCH_MS, BENCH_ROUNDS);
    bench cmp[4] = {
        {.name = "raw hiredis EVALSHA", .op = raw_op, .ud = &raw, .lat = lat},
        {.name = "raw hiredis FCALL", .op = raw_op, .ud = &rawf, .lat = lat + BENCH_MAX},
        {.name = "rl_redis_decide", .op = be_op, .ud = &be, .lat = lat + 2 * BENCH_MAX},
        {.name = "rl_decide", .op = lim_op, .ud = &lc, .lat = lat + 3 * BENCH_MAX},
    };
    double rates[4];
    bench_compare(cmp, 4, rates);
    printf("ratio to raw FCALL: rl_redis_decide %.2f, rl_decide %.2f; to raw EVALSHA: "
           "rl_redis_decide %.2f, rl_decide %.2f\n",
           rates[2] / rates[1], rates[3] / rates[1], rates[2] / rates[0], rates[3] / rates[0]);

    /* The flood: one client over a 1/h limit. */
    be.item.rule = &tiny;
    be.item.client = "bench-flood-be";
    rl_limiter_close(lim);
    rl_config_free(cfg);
    shm_unlink(shm);
    rl_stats_unlink(shm);
    cfg = bench_config(&srv, "1/h", path, sizeof(path));
    lim = cfg != NULL ? rl_limiter_open(cfg, &err) : NULL;
    if (lim == NULL)
        goto out;
    lc.lim = lim;
    lc.req.remote_addr = "bench-flood";
    bench flood[2] = {
        {.name = "flood, no cache", .op = be_op, .ud = &be, .lat = lat},
        {.name = "flood, refusal cache", .op = lim_op, .ud = &lc, .lat = lat + BENCH_MAX},
    };
    bench_round(&flood[0], BENCH_MS);
    bench_round(&flood[1], BENCH_MS);
    double f_nc = bench_report(&flood[0]), f_c = bench_report(&flood[1]);
    printf("refusal cache speed-up under a flood: %.1fx\n", f_c / f_nc);
    if (bench_ops == 0) {
        bench_server_time(raw.c, sha->str, 2000);
        bench_slog(raw.c, sha->str);
    }
    rc = 0;
out:
    rl_limiter_close(lim);
    rl_config_free(cfg);
    rl_redis_free(be.r);
    freeReplyObject(sha);
    redisFree(raw.c);
    shm_unlink(shm);
    rl_stats_unlink(shm);
    if (path[0] != '\0')
        unlink(path);
    rlt_redis_stop(&srv);
    free(lat);
    return rc;
}
