/* config_types.h -- the loaded configuration's structs (internal; rl_config is opaque outside)
 *
 * One struct per core section (shm, redis, identity, access) plus the rules; each is filled
 * by the schema (config_groups.c, config_rules.c: the rows; schema.c: the loader). A
 * program's own sections live in blocks the config owns (extra_data[i] for extra[i]). Every
 * string and array here is owned by the rl_config and freed by rl_config_free.
 */
#ifndef RL_CONFIG_TYPES_H
#define RL_CONFIG_TYPES_H

#include "ratelimit.h"
#include "rule_types.h"
#include "ratelimit_schema.h"

/* Who owns the segments a process creates (the table and its "-stats"): applied to the new
 * segment's fd before it is sized, so no other process can open it meanwhile. Resolved once at
 * load (shm.user, shm.group, shm.mode); an existing segment is never changed. A zeroed struct
 * means "the creating process's user and group, mode 0600". */
typedef struct rl_shm_config {
    char *name;       /* POSIX shared-memory name, "/..." */
    int64_t capacity; /* keys the table holds; the least recently used is evicted */
    int uid_set;      /* shm.user given: the segments' owner is uid ... */
    uint32_t uid;     /* ... else the creating process's user */
    int gid_set;      /* shm.group given, or shm.user's primary group: gid ... */
    uint32_t gid;     /* ... else the creating process's group */
    int mode;         /* shm.mode, 0600 by default (0660 with shm.group); 0 reads as 0600 */
    int primary_set;  /* loading only: shm.user is in the user database, its group is ... */
    uint32_t primary; /* ... this one (shm.group's default) */
} rl_shm_config;

typedef struct rl_redis_config {
    int enabled;
    char *host;
    int port;
    char *socket; /* unix socket path; when set, host/port are unused */
    int db;
    char *user;     /* ACL user for "AUTH user password"; NULL = the default user */
    char *password; /* NULL = no AUTH */
    char *prefix;   /* prepended to every key */
    int connect_timeout_ms;
    int command_timeout_ms;
    int breaker_failures;    /* consecutive failures that open the circuit breaker */
    int breaker_open_ms;     /* how long it stays open before one probe is let through ... */
    int breaker_open_max_ms; /* ... doubling after each failed probe, up to this */
    int hosts;               /* hosts sharing the limit: shm fallback decides 1/hosts of it */
    char **cluster;          /* Redis Cluster seed nodes "HOST:PORT" (owned); NULL: one server */
    size_t ncluster;         /* entries of cluster */
    char **sentinels;        /* Sentinel addresses "HOST:PORT" (owned); NULL: no Sentinel */
    size_t nsentinels;       /* entries of sentinels */
    char *master_name;       /* the master the sentinels are asked for; set with sentinels */
    char *sentinel_user;     /* ACL user for the sentinels' AUTH; NULL = the default user */
    char *sentinel_password; /* NULL = the sentinels are asked without AUTH */
} rl_redis_config;

/* Which header names the client behind a trusted proxy. */
typedef enum rl_forward_header {
    RL_FORWARD_XFF = 0,   /* X-Forwarded-For: a, b, c */
    RL_FORWARD_FORWARDED, /* RFC 7239 Forwarded: for=a, for="[b]:1" */
} rl_forward_header;

/* How the client identity is found (identity.c). */
typedef struct rl_identity_config {
    rl_cidr *trusted; /* proxies whose forwarded header is believed; owned */
    size_t ntrusted;
    rl_forward_header header;
    int ipv6_prefix; /* IPv6 clients are grouped by this prefix, 1..128 (64) */
} rl_identity_config;

/* Address lists checked before any rule: deny wins over allow. */
typedef struct rl_access_config {
    rl_cidr *allow; /* skip every limit; owned */
    size_t nallow;
    rl_cidr *deny; /* refused with 403; owned */
    size_t ndeny;
} rl_access_config;
/* Sections whose rows a config records as given: the core's 4 groups and at most 64 of a
 * program's; rows per section at most 64 (one bit each). */
#define RL_CFG_GROUPS_MAX (4 + 64)
#define RL_CFG_ROWS_MAX 64

struct rl_config {
    char *path; /* the file it was read from */
    rl_shm_config shm;
    rl_redis_config redis;
    rl_identity_config identity;
    rl_access_config access;
    rl_rule *rules;
    size_t nrules;
    const rl_section *const *extra; /* a program's sections (borrowed) ... */
    void **extra_data;              /* ... and their structs (owned) */
    size_t nextra;
    /* Per group (the core's 4, then the program's): bit i set when row i was given by the
     * file or an override since -- what a finish hook run again after an override asks. */
    uint64_t given[RL_CFG_GROUPS_MAX];
};

#endif
