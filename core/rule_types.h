/* rule_types.h -- one validated rule, as the core keeps it (internal; rl_rule is opaque
 * outside the core)
 *
 * A rule is built once at load (config_rules.c's rows, then rl_rule_derive) and never changes
 * on the request path. Every string and array is owned by the rl_config that holds the rule
 * and freed with it; the derived lengths and key_id always match the fields they come from
 * (rl_rule_derive runs again after every override). Programs outside the core read a rule
 * through ratelimit.h's accessors (rule_access.c) only.
 */
#ifndef RL_RULE_TYPES_H
#define RL_RULE_TYPES_H

#include "ratelimit.h"

#define RL_KEY_PARTS_MAX 4               /* parts of a composite rule key */
#define RL_RULE_ID_MAX (RL_NAME_MAX + 9) /* NAME ":" 8 hex digits, including the NUL */

/* What one part of a rule's key is taken from. */
typedef enum rl_key_kind {
    RL_KEY_CLIENT = 0, /* the client identity (see rl_identity_config) */
    RL_KEY_HEADER,     /* a request header; name is lowercase */
    RL_KEY_COOKIE,     /* a cookie of the Cookie header; name as written (case matters) */
} rl_key_kind;

typedef struct rl_key_part {
    rl_key_kind kind;
    char *name; /* NULL for RL_KEY_CLIENT */
} rl_key_part;

/* What a rule does with a request its key cannot be built for (header or cookie absent,
 * empty, too long for the filter, or holding control bytes). */
typedef enum rl_missing_key {
    RL_MISSING_SKIP = 0, /* the rule does not apply to the request (default) */
    RL_MISSING_REFUSE,   /* refuse with missing_key_status; no rule is charged */
    RL_MISSING_SHARED,   /* all such requests share one bucket of the rule */
} rl_missing_key;

/* What a rule does while Redis cannot decide (rules[].on_redis_down). */
typedef enum rl_redis_down {
    RL_REDIS_DOWN_SHM = 0, /* decide from shared memory, this host's share of the limit */
    RL_REDIS_DOWN_OPEN,    /* admit, uncounted */
    RL_REDIS_DOWN_CLOSED,  /* refuse until Redis answers again */
} rl_redis_down;

/* One rule, validated. A rule applies to a request when every condition given holds (path,
 * path_prefix, path_regex, methods, hosts); one with none applies to every request. */
struct rl_rule {
    char name[RL_NAME_MAX];
    size_t name_len;             /* strlen(name), computed at load */
    char key_id[RL_RULE_ID_MAX]; /* NAME ":" fingerprint, the rule in store keys (keys.c) */
    size_t key_id_len;           /* strlen(key_id) */
    int line;                    /* where the rule starts in the config file */
    rl_algo algo;
    char *path_prefix;      /* canonical request path starts with it; "/" when no path condition */
    size_t path_prefix_len; /* strlen(path_prefix), computed at load (0 when NULL) */
    char *path;             /* canonical request path equals it (or it + "/"); NULL = any */
    size_t path_len;        /* strlen(path), computed at load (0 when NULL) */
    int path_nocase;        /* path, path_prefix, path_regex ignore ASCII case */
    char *path_regex_text;  /* PCRE2 regex as written; NULL = any */
    void *path_regex;       /* its compiled pcre2_code (JIT when available), owned */
    void *path_regex_match; /* its pcre2_match_data, made once at load, owned */
    void *path_regex_mctx;  /* its pcre2_match_context (match and depth limits), owned */
    char **methods;         /* request method is one of these (case-sensitive); NULL = any */
    size_t nmethods;
    char **hosts; /* Host, port removed, is one of these (lowercase); NULL = any */
    size_t nhosts;
    rl_key_part key[RL_KEY_PARTS_MAX]; /* key = these parts joined by 0x1f; default client */
    size_t nkey;
    rl_missing_key on_missing_key;
    int missing_key_status; /* status of a RL_MISSING_REFUSE refusal, 400..599 (400) */
    int status;             /* status of a refusal by this rule, 400..599 (429) */
    char *body;             /* body of a refusal; NULL = the built-in text */
    int dry_run;            /* decided and reported, never enforced */
    int64_t cost;           /* units a request charges, 1..burst (gcra) or 1..count (windows) */
    int64_t count;          /* admitted requests ... */
    int64_t period_ms;      /* ... per this period */
    int64_t burst;          /* at most this many at once; defaults to count (GCRA only) */
    char *limit_text;       /* the limit as written ("100/90s"), for messages */
    rl_redis_down on_redis_down; /* used only with Redis enabled */
};

#endif
