/* ratelimit.h -- the public API of libratelimit
 *
 * The library turns (client, request) into a decision: allowed or refused, with the state of
 * every rule that matched. It knows nothing of FastCGI or HTTP framing; ratelimit-filter is a
 * program over it. The whole API:
 *
 *   open     rl_config_load() reads and validates a file once (rl_config is opaque: read it
 *            with the rl_config_*() accessors); rl_limiter_open() opens the stores (shared
 *            memory always, Redis when configured); rl_limiter_open_sandbox() for trials
 *   decide   rl_decide(): an rl_request in, an rl_decision out (verdict, status, one
 *            rl_rule_result per matched rule). Rules are opaque (rl_rule): rl_rule_*() read
 *            what a program may show of them
 *   close    rl_limiter_close(), rl_config_free() (both accept NULL)
 *   errors   an rl_error (the message) from loading and opening; rl_limiter_errstr() for a
 *            handle's last error; rl_limiter_health() and rl_limiter_probe() for its stores
 *   stats    rl_limiter_stats() (pool-wide counters), rl_limiter_table_stats(),
 *            rl_limiter_breaker_state(), rl_limiter_redis_nodes(), rl_stats_unlink()
 *   helpers  rl_path_canon() (the path every rule is matched on, for a program that routes
 *            on paths too), rl_parse_limit(), rl_format_policy() and rl_format_state() (the
 *            RateLimit header values), rl_backend_name()
 *
 * ratelimit_schema.h adds, for a program with configuration sections of its own, the schema,
 * overrides and address lists (rl_cidr, rl_client_in). Nothing else is exported
 * (-fvisibility=hidden): rules' fields, the stores and the test clock belong to the core.
 *
 * Threads and processes. A limiter, and the configuration it was opened on, belong to one
 * thread at a time: a decision reuses the handle's buffers and each path_regex's match data
 * (made once, at load) without locks. A threaded program loads a configuration and opens a
 * limiter per thread. A configuration may be loaded before fork() and used in the child; open
 * limiters after fork (a limiter holds its process' Redis connection and breaker). Every
 * process and thread of a host whose configuration names the same shm.name shares one
 * shared-memory table and one statistics segment (per-stripe robust locks: a process dying
 * mid-update is repaired by the next), whatever their rules (a table that does not fit a
 * configuration gets a new generation) provided they are of one build's statistics layout and
 * may open the segment (shm.user, shm.group, shm.mode); every host whose configuration names
 * the same Redis, db and prefix shares its state there.
 *
 * Conventions: every exported symbol starts with rl_ / RL_. Time is integer milliseconds
 * (int64_t). Functions return 0 on success and -1 on error, or NULL; the error text goes to a
 * caller-supplied rl_error or to the handle's err/errstr. Destructors accept NULL.
 * Ownership: "borrowed" pointers must outlive the call or handle that holds them.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function and object declared in this header is the library's interface: exported by
 * libratelimit.so, which is compiled with -fvisibility=hidden so that nothing else is. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#if defined(__GNUC__)
#define RL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RL_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define RL_PRINTF(f, a)
#define RL_WARN_UNUSED
#endif

#define RL_VERSION "0.2.0"

#define RL_ERRSTR_MAX 512 /* room for "file:line: key: message \"value\"" */
#define RL_NAME_MAX 64    /* rule names, including the NUL */
#define RL_MAX_MATCH 16   /* rules one request can match */
#define RL_MAX_RULES 256  /* rules in one configuration */
/* Bytes of a rule's key material (client identity), NUL excluded; longer material is
 * replaced by a digest, never truncated (an IPv6 address with a zone fits). */
#define RL_CLIENT_MAX 64
#define RL_KEY_HEADERS_MAX 12 /* distinct header names all rules' keys may read */

/* Upper bounds checked at load, so that every product below stays exact in int64 and in the
 * doubles of Redis' Lua (2^53): count * period and burst * period never exceed 2^50. */
#define RL_COUNT_MAX 1000000000LL
#define RL_PERIOD_MAX_MS (366LL * 24 * 3600 * 1000)
/* A sliding_log rule of count <= RL_LOG_MAX keeps one timestamp per admitted unit in either
 * store, as a 32-bit offset from a base time. Above it, up to RL_LOG_COUNT_MAX, Redis keeps an
 * exact log in a sorted set and shared memory a bucketed one (RL_LOG_BUCKETS per period, never
 * admitting more than count in any rolling period). Either way period_ms <=
 * RL_LOG_PERIOD_MAX_MS (2^32 - 1 ms, 49.7 days). */
#define RL_LOG_MAX 128
#define RL_LOG_COUNT_MAX 100000
#define RL_LOG_BUCKETS 64
/* Bounds of one path_regex match (PCRE2 match context): at most RL_REGEX_MATCH_LIMIT
 * backtracking steps, RL_REGEX_DEPTH_LIMIT nested backtracks and RL_REGEX_HEAP_LIMIT_KIB KiB
 * of heap; a match that reaches one does not match (counted as regex_limit). */
#define RL_REGEX_MATCH_LIMIT 100000
#define RL_REGEX_DEPTH_LIMIT 1000
#define RL_REGEX_HEAP_LIMIT_KIB 1024
#define RL_LOG_PERIOD_MAX_MS 4294967295LL

/* An error report: "file:line: text" when line > 0, else "file: text" or "text". */
typedef struct rl_error {
    char text[RL_ERRSTR_MAX];
} rl_error;

typedef enum rl_algo {
    RL_ALGO_GCRA = 0,       /* generic cell rate algorithm: exact token bucket (rate + burst) */
    RL_ALGO_FIXED_WINDOW,   /* count per window aligned on epoch ms; 2x count at a boundary */
    RL_ALGO_SLIDING_WINDOW, /* two fixed windows, the previous one weighted by its overlap */
    RL_ALGO_SLIDING_LOG,    /* the exact count over the last period: one timestamp per unit */
} rl_algo;

typedef enum rl_backend_kind {
    RL_BACKEND_NONE = 0,      /* no decision was made (no rule matched, or no store could) */
    RL_BACKEND_SHM,           /* host-wide shared-memory table */
    RL_BACKEND_REDIS,         /* Redis, shared by every host */
    RL_BACKEND_REFUSAL_CACHE, /* refused on this host, from an earlier Redis refusal */
    RL_BACKEND_FAIL_OPEN,     /* Redis failing, rules with on_redis_down "open": admitted */
    RL_BACKEND_FAIL_CLOSED,   /* Redis failing, a rule with on_redis_down "closed": refused */
} rl_backend_kind;

/* The source's name as --decide, the logs and the statistics say it: "shm", "redis",
 * "refusal-cache", "fail-open", "fail-closed" or "none". Never NULL. */
const char *rl_backend_name(rl_backend_kind kind);

/* One rule of a configuration: opaque (its fields are the core's). A decision and the
 * statistics point at the rules that matched; read them with the accessors below. A rule
 * pointer is borrowed from its rl_config and valid as long as that config is. */
typedef struct rl_rule rl_rule;

/* The rule's name as the configuration gives it (unique within it). */
const char *rl_rule_name(const rl_rule *rule);
/* The body of a refusal by this rule (rules[].body), or NULL for the built-in text. */
const char *rl_rule_body(const rl_rule *rule);
/* The rule's path_prefix as given; "/" for a rule with no path condition at all, NULL for
 * one with path or path_regex and no path_prefix. */
const char *rl_rule_path_prefix(const rl_rule *rule);

/* A loaded configuration: opaque. Read it with the accessors below; a program's own sections
 * (ratelimit_schema.h) with rl_config_section(). */
typedef struct rl_config rl_config;

/* Reads and validates FILE. Returns a new config (free with rl_config_free) or NULL with
 * err->text set, e.g. `ratelimit.conf:12: rules[0].limit: invalid period "0s": must be > 0`. */
rl_config *rl_config_load(const char *file, rl_error *err) RL_WARN_UNUSED;
void rl_config_free(rl_config *cfg);

/* The file it was read from. */
const char *rl_config_path(const rl_config *cfg);
/* Its rules, in file order: rl_config_rule(cfg, i) for i < rl_config_nrules(cfg). */
size_t rl_config_nrules(const rl_config *cfg);
const rl_rule *rl_config_rule(const rl_config *cfg, size_t i);
/* The shared-memory table's name (shm.name), and 1 when shm.user gives its owner. */
const char *rl_config_shm_name(const rl_config *cfg);
int rl_config_shm_owner_set(const rl_config *cfg);
/* The lowercase name of the forwarded header the identity reads ("x-forwarded-for" or
 * "forwarded"), or NULL when no proxy is trusted (then no header is read). */
const char *rl_config_forward_header(const rl_config *cfg);
/* The request headers the rules' keys read, by lowercase name, for i = 0, 1, ... until NULL:
 * each name once, "cookie" for every cookie part (at most RL_KEY_HEADERS_MAX names and
 * "cookie"). A program that must fetch headers ahead of rl_decide (from a CGI environment, a
 * FastCGI parameter block) fetches these. */
const char *rl_config_key_header(const rl_config *cfg, size_t i);

/* Parses "COUNT/PERIOD" (PERIOD = [N]ms|s|m|h|d, N defaults to 1: "100/90s", "10/m").
 * Returns 0, or -1 with a reason in err. */
int rl_parse_limit(const char *text, int64_t *count, int64_t *period_ms, rl_error *err);

/* ---- decisions ---------------------------------------------------------------------------- */

/* What one rule says about one request. */
typedef struct rl_rule_result {
    const rl_rule *rule;    /* borrowed from the config */
    int allowed;            /* what the rule says, even when it is a dry run */
    int dry_run;            /* the rule is a dry run: reported, never enforced */
    int64_t limit;          /* the quota: the rule's count */
    int64_t window_ms;      /* the period the quota is counted over */
    int64_t remaining;      /* requests that could still be admitted now */
    int64_t reset_ms;       /* allowed: until the full quota is back; refused: = retry_after_ms */
    int64_t retry_after_ms; /* refused: until this request could be admitted; else 0 */
} rl_rule_result;

/* Why a decision came out as it did. */
typedef enum rl_verdict {
    RL_VERDICT_ALLOWED = 0, /* every enforced rule admits, or none matched */
    RL_VERDICT_ALLOWLISTED, /* the client is in access.allow: no rule was consulted */
    RL_VERDICT_LIMITED,     /* an enforced rule refuses (status = that rule's status) */
    RL_VERDICT_DENYLISTED,  /* the client is in access.deny (status 403) */
    RL_VERDICT_MISSING_KEY, /* a rule with on_missing_key = "refuse" had no key */
    RL_VERDICT_BAD_PATH,    /* the path was refused by rl_path_canon (status 400 or 414); no
                               rule was consulted */
} rl_verdict;

typedef struct rl_decision {
    int allowed; /* 1 when every enforced rule admits (dry runs never refuse) */
    rl_verdict verdict;
    int status;                     /* refused: the HTTP status to answer with; allowed: 200 */
    const rl_rule *rule;            /* LIMITED / MISSING_KEY: the rule that refused; else NULL */
    char client[RL_CLIENT_MAX + 1]; /* the client identity as used in keys ("" if none) */
    size_t nresults;                /* matched rules, in config order */
    rl_rule_result results[RL_MAX_MATCH];
    int decider;             /* index of the most restrictive enforced result; -1 if none */
    int64_t retry_after_ms;  /* refused: the longest wait among refusing enforced rules */
    rl_backend_kind backend; /* which store decided */
    /* A rule whose path_regex match stopped at its limit (so it did not match; counted as
     * RL_STAT_REGEX_LIMIT), for the caller to log; NULL when none did. */
    const rl_rule *regex_limited;
} rl_decision;

/* Looks up a request header by its lowercase name ("x-api-key"). Returns its value (borrowed
 * until the rl_decide call returns) or NULL when absent. ud is rl_request.header_ud. */
typedef const char *(*rl_header_fn)(void *ud, const char *lowercase_name);

/* One request as the core sees it. Every pointer is borrowed for the call only. */
typedef struct rl_request {
    const char *remote_addr; /* the peer's address (REMOTE_ADDR); NULL: rl_decide fails */
    /* The request target as the client sent it (query allowed), canonicalised by rl_decide
     * (rl_path_canon); NULL counts as "/". */
    const char *path;
    const char *method;  /* may be NULL */
    const char *host;    /* Host header, may hold a port; NULL = none */
    rl_header_fn header; /* may be NULL: no headers (and no cookies) */
    void *header_ud;
    int64_t cost; /* units this request costs (times each rule's cost); 0 = 1 */
    /* 1: path is already rl_path_canon's output (the filter canonicalises once, to match its
     * admin paths too): rl_decide uses it as it is. Canonicalising twice would decode twice. */
    int path_canonical;
} rl_request;

/* ---- request paths (path.c) ---------------------------------------------------------------- */

/* Bytes of a request path the core accepts, the query excluded, NUL included. */
#define RL_PATH_MAX 4096

/* What rl_path_canon found. Every status but RL_PATH_OK refuses the request
 * (rl_path_http_status: 414 for RL_PATH_TOO_LONG, 400 for the others). */
typedef enum rl_path_status {
    RL_PATH_OK = 0,
    RL_PATH_TOO_LONG,      /* RL_PATH_MAX bytes or more before the query */
    RL_PATH_BAD_ESCAPE,    /* '%' not followed by two hexadecimal digits */
    RL_PATH_ENCODED_SLASH, /* %2F: a '/' that is not a separator */
    RL_PATH_NUL,           /* %00 */
    RL_PATH_CONTROL,       /* a control byte (0x01-0x1f, 0x7f), sent raw or encoded */
    RL_PATH_NOT_ABSOLUTE,  /* neither "/..." nor "scheme://authority/..." (e.g. "*") */
} rl_path_status;

/* rl_path_canon flag: the path was already percent-decoded by the web server (CGI's
 * SCRIPT_NAME + PATH_INFO, a rule's own path): '%', '?' and '#' are ordinary bytes. */
#define RL_PATH_DECODED 1u

/* The canonical form of a request target, the path every rule and admin endpoint is matched
 * on, written to out (RL_PATH_MAX bytes) with its length in *outlen (may be NULL):
 *   - "scheme://authority" of an absolute-form target is dropped ("" becomes "/");
 *   - the query ('?') and a fragment ('#') are cut before anything is decoded;
 *   - every %XX is decoded (hex digits of either case), except that %2F, %00, control bytes
 *     and invalid escapes refuse the path (see rl_path_status);
 *   - repeated '/' are merged, "." and ".." segments removed (RFC 3986 5.2.4; ".." never
 *     climbs above "/"); a trailing '/' stays, and "/a/." or "/a/b/.." end in '/';
 *   - bytes >= 0x80 are kept as they are (no UTF-8 check or normalisation), case is kept.
 * No allocation. On refusal out is "". The result is stable: canonicalising it again with
 * RL_PATH_DECODED gives it back. */
rl_path_status rl_path_canon(const char *target, unsigned flags, char *out, size_t *outlen);

/* A short English reason for st ("encoded slash (%2F) in the path"); static. */
const char *rl_path_strerror(rl_path_status st);

/* The HTTP status a refused path is answered with: 414 for RL_PATH_TOO_LONG, else 400. */
int rl_path_http_status(rl_path_status st);

typedef struct rl_limiter rl_limiter;

/* Opens the backends described by cfg (borrowed: it must outlive the limiter). Creates or
 * attaches to the shared-memory table; Redis is connected lazily. NULL with err on failure. */
rl_limiter *rl_limiter_open(const rl_config *cfg, rl_error *err) RL_WARN_UNUSED;
void rl_limiter_close(rl_limiter *lim);

/* Decides one request atomically over every matching rule: a request refused by one rule
 * consumes nothing from the others. The peer address (remote_addr) is turned into the client
 * identity (trusted proxies, IPv6 prefix); deny- and allow-listed clients are answered
 * before any rule. A remote_addr that is not an IP address is used verbatim as the identity
 * (no proxy, list or prefix applies). Dry-run rules are decided and charged like the others
 * when the request is admitted, but their refusals neither refuse it nor stop the other
 * rules from being charged. Never fails because a store failed: Redis errors fall back
 * to shared memory. Returns 0, or -1 only for invalid input (rl_limiter_errstr says why). */
int rl_decide(rl_limiter *lim, const rl_request *req, rl_decision *out);

/* The handle's last error, "" when none. */
const char *rl_limiter_errstr(const rl_limiter *lim);

/* Health of this process' limiter (static strings):
 *   "ok"       Redis not configured, or answering (breaker closed, last call succeeded);
 *   "degraded" Redis failing, and every rule falls back to shared memory (on_redis_down "shm"):
 *              each host still enforces its share of every limit;
 *   "down"     Redis failing and some rule is not enforced by any store (on_redis_down "open"
 *              or "closed"), or shared memory itself failed on the last decision. */
const char *rl_limiter_health(const rl_limiter *lim);
/* Asks Redis (one PING, through the circuit breaker) so that rl_limiter_health reflects now
 * rather than this process' last decision; no-op without Redis. For health endpoints, not
 * the request path: it may wait up to redis.command_timeout_ms (reconnecting included). */
void rl_limiter_probe(rl_limiter *lim);

/* ---- pool-wide statistics (stats.c) ------------------------------------------------------- */

/* Every process of a pool adds to one small shared-memory segment per configuration, named
 * after the table (shm.name + "-stats"), with relaxed atomic adds (no lock on the request
 * path). Counters only: a process that dies mid-update loses at most that update. Counters
 * run from the segment's creation; they survive reloads and restarts, and --shm-remove
 * resets them. Per-rule counters are kept under the rule's name in one of RL_STATS_SLOTS
 * fixed slots: a reload keeps a renamed or new rule's counts apart from the others, and a
 * rule whose name finds no free slot is counted in rl_stats.unslotted only. */
#define RL_STATS_SLOTS 512
/* Decision latency: bucket i (0..RL_STATS_BUCKETS-2) counts decisions of <= 2^i us
 * (1, 2, 4 ... 65536 us); the last bucket counts the slower ones. Not cumulative. */
#define RL_STATS_BUCKETS 18

typedef enum rl_stat_rule_counter {
    RL_STAT_ALLOWED = 0,     /* requests the rule matched that were admitted */
    RL_STAT_REFUSED,         /* requests this rule refused (enforced) */
    RL_STAT_DRY_RUN_REFUSED, /* requests this dry-run rule would have refused */
    RL_STAT_FALLBACK,        /* decided by shared memory because Redis did not answer */
    RL_STAT_FAIL_OPEN,       /* admitted uncounted: Redis down, on_redis_down "open" */
    RL_STAT_FAIL_CLOSED,     /* refused: Redis down, on_redis_down "closed" */
    RL_STAT_REFUSAL_CACHE,   /* refused from the refusal cache, Redis not asked */
    RL_STAT_RULE_COUNTERS
} rl_stat_rule_counter;

typedef enum rl_stat_counter {
    RL_STAT_REQUESTS = 0,   /* decisions made (rl_decide returning 0) */
    RL_STAT_ACCESS_DENIED,  /* clients in access.deny (403) */
    RL_STAT_ACCESS_ALLOWED, /* clients in access.allow (no rule consulted) */
    RL_STAT_MISSING_KEY,    /* refused by a rule's on_missing_key = "refuse" */
    RL_STAT_REDIS_ERRORS,   /* Redis calls that failed (connect, timeout, bad reply) */
    RL_STAT_SHM_ERRORS,     /* shared-memory decisions that failed */
    RL_STAT_UNCHECKED,      /* admitted because no store could decide */
    RL_STAT_UNSLOTTED,      /* rule decisions not counted per rule (no free slot) */
    RL_STAT_LATENCY_SUM_US, /* sum of the decision times, microseconds */
    RL_STAT_REGEX_LIMIT,    /* path_regex matches stopped by their limit (rule not matched) */
    RL_STAT_COUNTERS
} rl_stat_counter;

extern const char *const rl_stat_rule_counter_names[RL_STAT_RULE_COUNTERS];
extern const char *const rl_stat_counter_names[RL_STAT_COUNTERS];

/* A snapshot: each counter read atomically, the set not at one instant. */
typedef struct rl_stats {
    int64_t global[RL_STAT_COUNTERS];
    int64_t latency[RL_STATS_BUCKETS]; /* per bucket, not cumulative */
    size_t nrules;                     /* the limiter's config rules, in config order */
    struct {
        const rl_rule *rule; /* borrowed from the limiter's config */
        int slotted;         /* 0: no slot, the counters are all 0 */
        int64_t c[RL_STAT_RULE_COUNTERS];
    } rules[RL_MAX_RULES];
} rl_stats;

/* The shared-memory table's occupancy. */
typedef struct rl_table_stats {
    int64_t capacity;
    int64_t entries;   /* keys in use, including expired ones not yet reclaimed */
    int64_t evictions; /* live keys evicted to make room, since the table was created */
    int64_t expired_reclaimed;
    int64_t repairs; /* damaged stripes rebuilt (their keys forgotten), since creation */
} rl_table_stats;

/* Fills *out from the pool's segment. Not for the request path (reads ~4500 words). */
void rl_limiter_stats(const rl_limiter *lim, rl_stats *out);
/* Fills *out; takes each stripe lock in turn. 0, or -1 with the limiter's errstr. */
int rl_limiter_table_stats(rl_limiter *lim, rl_table_stats *out);
/* The circuit breaker in front of Redis: "closed", "open" or "half-open" (static strings);
 * "closed" when Redis is not configured. */
const char *rl_limiter_breaker_state(const rl_limiter *lim);

/* Redis nodes in the pool's statistics segment (stats_nodes.c): one row per node address,
 * claimed by the first process that talks to it (a Redis Cluster master learnt from the slot
 * map or a redirect, a master the sentinels named), so every process of the pool adds to the
 * same row and any process reads them all, whether or not it ever talks to Redis. At most
 * RL_STATS_NODES addresses get a row; the counts of any further node go to one "other" row.
 * Rows are never freed (like the rules' slots): a node that left keeps its counts. */
#define RL_STATS_NODES 64

typedef struct rl_redis_node_stats {
    char node[264];   /* "HOST:PORT", or "other" for the overflow row */
    const char *kind; /* "cluster", "sentinel" or "other" (static strings) */
    const char *role; /* "master"; "former master": the sentinels named another one since */
    int breaker_open; /* the last breaker change any process of the pool made for it: open */
    int64_t breaker_changed_ms; /* epoch ms of that change; 0: never opened */
    int64_t last_error_ms;      /* epoch ms of its last failure; 0: none */
    int64_t decisions;          /* decisions it made (allowed or refused; cluster: slot groups) */
    int64_t failures;  /* decisions it failed: connection errors, error replies, timeouts */
    int64_t redirects; /* MOVED and ASK replies it sent (cluster) */
} rl_redis_node_stats;

/* Fills out[0 .. min(n, cap)) with the node rows of the pool's segment (sorted by kind then
 * address, "other" last and only when it counted something) and returns n. 0 for a sandbox.
 * Not for the request path. */
size_t rl_limiter_redis_nodes(const rl_limiter *lim, rl_redis_node_stats *out, size_t cap);

/* With Redis Sentinel: the master the pool last connected to, and its changes. */
typedef struct rl_redis_sentinel_stats {
    char master[264];   /* "HOST:PORT" ("other" when it found no row) */
    int64_t changes;    /* times a process of the pool connected to another master than the
                           last one (a failover seen by the pool; the first master is none) */
    int64_t changed_ms; /* epoch ms of the last change; 0: none */
} rl_redis_sentinel_stats;

/* 1 and *out when a process of the pool has connected to a master the sentinels named, else
 * 0. Not for the request path. */
int rl_limiter_redis_sentinel(const rl_limiter *lim, rl_redis_sentinel_stats *out);

/* Removes the statistics segment of the table named shm_name. 0, or -1 when it did not
 * exist. */
int rl_stats_unlink(const char *shm_name);

/* A limiter for trying requests out (the admin test endpoint): like rl_limiter_open, but on
 * a table of its own that no other limiter can reach (a fresh segment whose name is removed
 * at once, so it vanishes with the handle), never Redis, and not counted in the pool's
 * statistics. Real state is never read or written. Close with rl_limiter_close. */
rl_limiter *rl_limiter_open_sandbox(const rl_config *cfg, rl_error *err) RL_WARN_UNUSED;

/* ---- response headers (no HTTP framing: only the field values) ----------------------------- */

/* Writes the IETF RateLimit-Policy field value for d ("\"name\";q=100;w=90, ...") into buf.
 * Returns the length, or -1 if it does not fit. */
int rl_format_policy(const rl_decision *d, char *buf, size_t size);
/* Writes the IETF RateLimit field value ("\"name\";r=3;t=12, ..."). */
int rl_format_state(const rl_decision *d, char *buf, size_t size);

/* Whole seconds, rounded up, of a millisecond delay (headers speak seconds). */
int64_t rl_ms_to_s_ceil(int64_t ms);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* RATELIMIT_H */
