/* ratelimit.h -- public API of the ratelimit core library
 *
 * The core turns (client, request) into a decision: allowed or refused, with the state of every
 * rule that matched. It knows nothing of FastCGI or HTTP framing; the filter program is a thin
 * layer over this header.
 *
 *   rl_config_load()   read and validate a libconfig file once into typed structs
 *   rl_limiter_open()  open the backends (shared memory always, Redis when configured)
 *   rl_decide()        one atomic decision over every matching rule
 *   rl_limiter_close() / rl_config_free()
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

#if defined(__GNUC__)
#define RL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RL_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define RL_PRINTF(f, a)
#define RL_WARN_UNUSED
#endif

#define RL_VERSION "0.1.0"

#define RL_ERRSTR_MAX 512   /* room for "file:line: key: message \"value\"" */
#define RL_NAME_MAX 64      /* rule names, including the NUL */
#define RL_KEY_MAX 256      /* bytes of a rate-limit key (rule + client), NUL excluded */
#define RL_CLIENT_MAX 64    /* bytes of a client identity the core accepts, NUL excluded
                               (an IPv6 address with a zone fits; longer is an error) */
#define RL_MAX_MATCH 16     /* rules one request can match */
#define RL_MAX_RULES 256    /* rules in one configuration */

/* Upper bounds checked at load, so that every product below stays exact in int64 and in the
 * doubles of Redis' Lua (2^53): count * period and burst * period never exceed 2^50. */
#define RL_COUNT_MAX 1000000000LL
#define RL_PERIOD_MAX_MS (366LL * 24 * 3600 * 1000)

/* An error report: "file:line: text" when line > 0, else "file: text" or "text". */
typedef struct rl_error {
    char text[RL_ERRSTR_MAX];
} rl_error;

typedef enum rl_algo {
    RL_ALGO_GCRA = 0,       /* generic cell rate algorithm: exact token bucket (rate + burst) */
    RL_ALGO_FIXED_WINDOW,   /* count per window aligned on epoch ms; 2x count at a boundary */
    RL_ALGO_SLIDING_WINDOW, /* two fixed windows, the previous one weighted by its overlap */
} rl_algo;

typedef enum rl_backend_kind {
    RL_BACKEND_NONE = 0,      /* no decision was made (no rule matched, or no store could) */
    RL_BACKEND_SHM,           /* host-wide shared-memory table */
    RL_BACKEND_REDIS,         /* Redis, shared by every host */
    RL_BACKEND_REFUSAL_CACHE, /* refused on this host, from an earlier Redis refusal */
    RL_BACKEND_FAIL_OPEN,     /* Redis failing, rules with on_redis_down "open": admitted */
    RL_BACKEND_FAIL_CLOSED,   /* Redis failing, a rule with on_redis_down "closed": refused */
} rl_backend_kind;

/* What a rule does while Redis cannot decide (rules[].on_redis_down). */
typedef enum rl_redis_down {
    RL_REDIS_DOWN_SHM = 0, /* decide from shared memory, this host's share of the limit */
    RL_REDIS_DOWN_OPEN,    /* admit, uncounted */
    RL_REDIS_DOWN_CLOSED,  /* refuse until Redis answers again */
} rl_redis_down;

/* One rule, validated. Every string is owned by the rl_config that holds the rule. */
typedef struct rl_rule {
    char name[RL_NAME_MAX];
    int line;            /* where the rule starts in the config file */
    rl_algo algo;
    char *path_prefix;   /* matches when the request path starts with it ("/" = all) */
    int64_t count;       /* admitted requests ... */
    int64_t period_ms;   /* ... per this period */
    int64_t burst;       /* at most this many at once; defaults to count (GCRA only) */
    char *limit_text;    /* the limit as written ("100/90s"), for messages */
    rl_redis_down on_redis_down; /* used only with Redis enabled */
} rl_rule;

typedef struct rl_shm_config {
    char *name;          /* POSIX shared-memory name, "/..." */
    int64_t capacity;    /* keys the table holds; the least recently used is evicted */
} rl_shm_config;

typedef struct rl_redis_config {
    int enabled;
    char *host;
    int port;
    char *socket;        /* unix socket path; when set, host/port are unused */
    int db;
    char *user;          /* ACL user for "AUTH user password"; NULL = the default user */
    char *password;      /* NULL = no AUTH */
    char *prefix;        /* prepended to every key */
    int connect_timeout_ms;
    int command_timeout_ms;
    int breaker_failures;    /* consecutive failures that open the circuit breaker */
    int breaker_open_ms;     /* how long it stays open before one probe is let through */
    int hosts;               /* hosts sharing the limit: shm fallback decides 1/hosts of it */
} rl_redis_config;

/* Where the filter forwards allowed requests in the FastCGI responder role. */
typedef struct rl_proxy_config {
    char *backend;       /* "http://HOST[:PORT]", no trailing '/'; NULL = not proxying */
    int connect_timeout_ms;
    int timeout_ms;      /* the longest the backend may stay silent during one exchange */
} rl_proxy_config;

typedef struct rl_config {
    char *path;          /* the file it was read from */
    rl_shm_config shm;
    rl_redis_config redis;
    rl_proxy_config proxy;
    int x_ratelimit_headers; /* also send X-RateLimit-* (default on) */
    rl_rule *rules;
    size_t nrules;
} rl_config;

/* Reads and validates FILE. Returns a new config (free with rl_config_free) or NULL with
 * err->text set, e.g. `ratelimit.conf:12: rules[0].limit: invalid period "0s": must be > 0`. */
rl_config *rl_config_load(const char *file, rl_error *err) RL_WARN_UNUSED;
void rl_config_free(rl_config *cfg);

/* Parses "COUNT/PERIOD" (PERIOD = [N]ms|s|m|h|d, N defaults to 1: "100/90s", "10/m").
 * Returns 0, or -1 with a reason in err. */
int rl_parse_limit(const char *text, int64_t *count, int64_t *period_ms, rl_error *err);

/* ---- decisions ---------------------------------------------------------------------------- */

/* What one rule says about one request. */
typedef struct rl_rule_result {
    const rl_rule *rule;     /* borrowed from the config */
    int allowed;
    int64_t limit;           /* the quota: rule->count */
    int64_t window_ms;       /* the period the quota is counted over */
    int64_t remaining;       /* requests that could still be admitted now */
    int64_t reset_ms;        /* allowed: until the full quota is back; refused: = retry_after_ms */
    int64_t retry_after_ms;  /* refused: until this request could be admitted; else 0 */
} rl_rule_result;

typedef struct rl_decision {
    int allowed;             /* 1 when every matched rule admits (or none matched) */
    size_t nresults;         /* matched rules, in config order */
    rl_rule_result results[RL_MAX_MATCH];
    int decider;             /* index of the most restrictive result; -1 when none matched */
    int64_t retry_after_ms;  /* refused: the longest wait among refusing rules */
    rl_backend_kind backend; /* which store decided */
} rl_decision;

/* One request as the core sees it. Every pointer is borrowed for the call only. */
typedef struct rl_request {
    const char *client;      /* client identity (an address); must not be NULL */
    const char *path;        /* request path, query excluded; NULL counts as "/" */
    const char *method;      /* may be NULL */
    int64_t cost;            /* units this request costs; 0 is taken as 1 */
} rl_request;

typedef struct rl_limiter rl_limiter;

/* Returns the milliseconds of some clock; ud is the pointer given to rl_limiter_set_clock. */
typedef int64_t (*rl_clock_fn)(void *ud);

/* Opens the backends described by cfg (borrowed: it must outlive the limiter). Creates or
 * attaches to the shared-memory table; Redis is connected lazily. NULL with err on failure. */
rl_limiter *rl_limiter_open(const rl_config *cfg, rl_error *err) RL_WARN_UNUSED;
void rl_limiter_close(rl_limiter *lim);

/* Replaces the wall clock (CLOCK_REALTIME, ms) for tests. With a clock set, the Redis backend
 * also decides at that time instead of reading Redis' TIME. */
void rl_limiter_set_clock(rl_limiter *lim, rl_clock_fn fn, void *ud);

/* Decides one request atomically over every matching rule: a request refused by one rule
 * consumes nothing from the others. Never fails because a store failed: Redis errors fall back
 * to shared memory. Returns 0, or -1 only for invalid input (lim->errstr says why). */
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

/* ---- response headers (no HTTP framing: only the field values) ----------------------------- */

/* Writes the IETF RateLimit-Policy field value for d ("\"name\";q=100;w=90, ...") into buf.
 * Returns the length, or -1 if it does not fit. */
int rl_format_policy(const rl_decision *d, char *buf, size_t size);
/* Writes the IETF RateLimit field value ("\"name\";r=3;t=12, ..."). */
int rl_format_state(const rl_decision *d, char *buf, size_t size);

/* Whole seconds, rounded up, of a millisecond delay (headers speak seconds). */
int64_t rl_ms_to_s_ceil(int64_t ms);

#ifdef __cplusplus
}
#endif
#endif /* RATELIMIT_H */
