/* config_int.h -- what the configuration loader's files share (internal)
 *
 * The loader is split by job: config.c reads the file and walks the top level, schema.c reads
 * one group against its table of rows (ratelimit_schema.h) and applies overrides,
 * config_value.c holds the typed readers and the error reporting every row uses,
 * config_groups.c the core's sections (shm, redis, identity, access: rows and hooks) and
 * config_rules.c the rules' rows. These are the only files that include <libconfig.h>.
 * Every reader returns 0, or -1 with ld->err set to "FILE:LINE: KEY: message".
 */
#ifndef RL_CONFIG_INT_H
#define RL_CONFIG_INT_H

#include "config_types.h"
#include "ratelimit.h"
#include "ratelimit_schema.h"
#include "cidr.h"
#include "quote.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_FILE_MAX (16 * 1024 * 1024) /* a configuration larger than this is a mistake */
#define CFG_KEY_MAX 256                 /* bytes of a key path shown in a message */

#define CFG_SHM_NAME_MIN 2
#define CFG_SHM_NAME_MAX 200
#define CFG_SHM_CAPACITY_MIN 16
#define CFG_SHM_CAPACITY_MAX 100000000
#define CFG_PW_BUF_MAX (1024 * 1024) /* a user or group entry larger than this is refused */
#define CFG_REDIS_PREFIX_MAX 64
#define CFG_DB_MAX 1000000
#define CFG_TIMEOUT_MAX_MS 60000
#define CFG_BREAKER_FAILURES_MAX 1000
#define CFG_BREAKER_OPEN_MAX_MS 600000
#define CFG_HOSTS_MAX 10000

#define CFG_LIST_MAX 1024 /* entries of a list of addresses, methods or hosts */
#define CFG_METHOD_MAX 31
#define CFG_HOST_MAX 253
#define CFG_HEADER_NAME_MAX 63
#define CFG_BODY_MAX 4096 /* a rule's refusal body, bytes */

typedef struct cfg_loader {
    const char *path; /* as the caller gave it, for messages */
    const char *text; /* the file's bytes, NUL-terminated */
    size_t len;
    rl_error *err;
} cfg_loader;

/* ---- schema.c: one group against its rows ---- */

/* What a finish hook or a custom reader is given (ratelimit_schema.h's rl_schema_ctx). */
struct rl_schema_ctx {
    const cfg_loader *ld;
    const config_setting_t *group; /* the file's group; NULL when the file has none */
    const rl_section *sec;
    rl_config *cfg;
    size_t index;    /* rules: the rule's index */
    uint64_t *given; /* the group's given rows (rl_config.given); NULL: the group's members */
    char *why;       /* during an override: rl_schema_fail's reason goes here ... */
    size_t whysize;  /* ... of this many bytes */
};

/* A CUSTOM row's reader (rl_setting.impl): the file's setting s into sec; and, for
 * overrides, the value as text (NULL: the row takes no override). The text reader writes a
 * reason into why and returns -1 to refuse. */
typedef struct cfg_custom {
    int (*read)(rl_schema_ctx *ctx, const config_setting_t *s, void *sec);
    int (*text)(rl_schema_ctx *ctx, const char *v, void *sec, char *why, size_t size);
} cfg_custom;

/* The core's sections (config_groups.c, config_rules.c). */
extern const rl_section rl_cfg_shm_section, rl_cfg_redis_section, rl_cfg_identity_section,
    rl_cfg_access_section, rl_cfg_rule_section;

/* Applies every row's default to sec (zeroed before): 0, or -1 (out of memory). */
int rl_schema_defaults(const cfg_loader *ld, const rl_section *sec, void *base);
/* Reads group g (NULL: absent) into base with sec's rows, then sec->finish. */
int rl_schema_read(rl_schema_ctx *ctx, const config_setting_t *g, void *base);
/* Frees what sec's rows own in base (not base itself). */
void rl_schema_free(const rl_section *sec, void *base);
/* The row of sec named key, or NULL. */
const rl_setting *rl_schema_row(const rl_section *sec, const char *key);
/* Sets row r of base from text v; -1 with a reason in why. */
int rl_schema_set_text(rl_schema_ctx *ctx, const rl_setting *r, const char *v, void *base,
                       char *why, size_t size);

/* Group k (the core's, then the program's: k < rl_cfg_ngroups) of cfg: its section, its
 * struct and its given rows. */
size_t rl_cfg_ngroups(const rl_config *cfg);
const rl_section *rl_cfg_group_section(const rl_config *cfg, size_t k);
void *rl_cfg_group_base(rl_config *cfg, size_t k);

/* The rules list (config_rules.c). */
int rl_cfg_load_rules(const cfg_loader *ld, const config_setting_t *list, rl_config *cfg);

/* ---- config_value.c: errors and typed values ---- */

/* Checks v, the path of a rule or admin endpoint (`what` names it in the message): it must
 * start with '/' and be canonical (rl_path_canon of it gives it back, and it holds no %XX),
 * else no request could ever match it. 0, or -1 with the reason in why. */
int rl_cfg_canonical_why(const char *what, const char *v, char *why, size_t size);

int rl_cfg_bool(const cfg_loader *ld, const config_setting_t *s, int *out);

int rl_cfg_cidr_list(const cfg_loader *ld, const config_setting_t *s, rl_cidr **out, size_t *n);

int rl_cfg_fail(const cfg_loader *ld, const config_setting_t *s, const char *fmt, ...)
    RL_PRINTF(3, 4);

int rl_cfg_fail_file(const cfg_loader *ld, const char *fmt, ...) RL_PRINTF(2, 3);

int rl_cfg_group(const cfg_loader *ld, const config_setting_t *s);

int rl_cfg_int(const cfg_loader *ld, const config_setting_t *s, long long min, long long max,
               long long *out);

int rl_cfg_int32(const cfg_loader *ld, const config_setting_t *s, int min, int max, int *out);

int rl_cfg_is(const config_setting_t *s, const char *name);

int rl_cfg_oom(const cfg_loader *ld);

int rl_cfg_set_string(const cfg_loader *ld, const char *v, int empty_is_null, char **dst);

int rl_cfg_string(const cfg_loader *ld, const config_setting_t *s, const char **out);

int rl_cfg_string_list(const cfg_loader *ld, const config_setting_t *s, int max);

int rl_cfg_unknown_key(const cfg_loader *ld, const config_setting_t *s);

int rl_cfg_wrong_type(const cfg_loader *ld, const config_setting_t *s, const char *expected);

#endif
