/* config_int.h -- what the configuration loader's files share (internal)
 *
 * The loader is split by job: config.c reads the file and walks the top level,
 * config_value.c holds the typed readers and the error reporting every group uses,
 * config_groups.c the groups (shm, redis, proxy, headers, identity, access, admin) and
 * config_rules.c the rules. These four files are the only ones that include <libconfig.h>.
 * Every reader returns 0, or -1 with ld->err set to "FILE:LINE: KEY: message".
 */
#ifndef RL_CONFIG_INT_H
#define RL_CONFIG_INT_H

#include "config_env.h"
#include "ratelimit.h"
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
#define CFG_PROXY_TIMEOUT_MAX_MS 3600000
/* fastcgi: connection deadlines and the connections one process holds */
#define CFG_FASTCGI_IDLE_MAX_MS 3600000
#define CFG_FASTCGI_CONNECTIONS_MAX 65536

#define CFG_LIST_MAX 1024 /* entries of a list of addresses, methods or hosts */
#define CFG_METHOD_MAX 31
#define CFG_HOST_MAX 253
#define CFG_HEADER_NAME_MAX 63
#define CFG_ADMIN_PATH_MAX 1024
#define CFG_BODY_MAX 4096 /* the response must fit the filter's 16 KiB buffer */

typedef struct cfg_loader {
    const char *path; /* as the caller gave it, for messages */
    const char *text; /* the file's bytes, NUL-terminated */
    size_t len;
    rl_error *err;
} cfg_loader;

/* ---- config_value.c: errors and typed values ---- */
int rl_cfg_admin_defaults(const cfg_loader *ld, rl_admin_config *ac, int allow_given);

int rl_cfg_load_access(const cfg_loader *ld, const config_setting_t *g, rl_access_config *ac);

int rl_cfg_load_admin(const cfg_loader *ld, const config_setting_t *g, rl_admin_config *ac);

int rl_cfg_load_headers(const cfg_loader *ld, const config_setting_t *g, rl_config *cfg);

int rl_cfg_load_identity(const cfg_loader *ld, const config_setting_t *g, rl_identity_config *ic);

int rl_cfg_load_proxy(const cfg_loader *ld, const config_setting_t *g, rl_proxy_config *px);
int rl_cfg_load_fastcgi(const cfg_loader *ld, const config_setting_t *g, rl_fastcgi_config *fc);

int rl_cfg_load_redis(const cfg_loader *ld, const config_setting_t *g, rl_redis_config *r);

int rl_cfg_load_shm(const cfg_loader *ld, const config_setting_t *g, rl_shm_config *shm);

int rl_cfg_shm_default_name(const cfg_loader *ld, rl_shm_config *shm);

int rl_cfg_has_control(const char *v);

/* Checks v, the path of a rule or admin endpoint (`what` names it in the message): it must
 * start with '/' and be canonical (rl_path_canon of it gives it back, and it holds no %XX),
 * else no request could ever match it. */
int rl_cfg_canonical_path(const cfg_loader *ld, const config_setting_t *s, const char *what,
                          const char *v);

int rl_cfg_load_rules(const cfg_loader *ld, const config_setting_t *list, rl_config *cfg);

int rl_cfg_bool(const cfg_loader *ld, const config_setting_t *s, int *out);

int rl_cfg_cidr_list(const cfg_loader *ld, const config_setting_t *s, rl_cidr **out, size_t *n);

int rl_cfg_fail(const cfg_loader *ld, const config_setting_t *s, const char *fmt, ...)
    RL_PRINTF(3, 4);

int rl_cfg_fail_file(const cfg_loader *ld, const char *fmt, ...) RL_PRINTF(2, 3);

int rl_cfg_group(const cfg_loader *ld, const config_setting_t *s);

/* Reads one member of a group (see rl_cfg_members); 0, or -1 with the error set. */
typedef int (*rl_cfg_member_fn)(const cfg_loader *ld, const config_setting_t *s, void *ud);
int rl_cfg_members(const cfg_loader *ld, const config_setting_t *g, rl_cfg_member_fn member,
                   void *ud);

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
