/* env.c -- RATE_LIMIT_* environment variables, applied after the config file
 *
 * Deployments that cannot edit the file (containers) set these. The program, not the
 * library, reads the environment: every row of the schema (the core's sections and the
 * filter's) that names a variable (redis.enabled RATE_LIMIT_USE_REDIS, redis.host,
 * redis.port, redis.db, redis.password) and the application's three below are handed to
 * rl_config_override, which validates them by the key's own row, exactly as the file's value:
 *
 *   RATE_LIMIT_FALLBACK_MEMORY  rules[*].on_redis_down  true: "shm"; false: "open"
 *   RATE_LIMIT_REQUESTS         the general rule's limit: the rule named "global", else the
 *                               first rule whose path_prefix is "/"; error if none
 *   RATE_LIMIT_CHAT             the limit of the rule named "chat"; error if none
 *
 * A limit is "COUNT/PERIOD" as in the file, or a bare COUNT meaning per minute. An unset or
 * empty variable changes nothing, except RATE_LIMIT_REDIS_PASSWORD set but empty: no AUTH.
 */
#include "../core/fmacros.h"

#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit_schema.h"
#include "settings.h"

/* The variable's value, or NULL when unset (or empty, unless empty means "unset" for its key:
 * a password set but empty overrides the file's with none). */
static const char *env_get(const char *name, const rl_setting *row)
{
    const char *v = getenv(name);

    if (v == NULL || (v[0] == '\0' && (row == NULL || !(row->flags & RL_SETTING_EMPTY_NULL))))
        return NULL;
    return v;
}

static int env_set(rl_config *cfg, const char *var, const char *key, const char *value,
                   const char *shown, rl_error *err)
{
    char origin[96];
    rl_override ov = {.key = key, .value = value, .origin = origin, .shown = shown};

    snprintf(origin, sizeof origin, "environment %s", var);
    return rl_config_override(cfg, &ov, err);
}

/* `environment VAR: invalid value "v": why`, for what no row checks. Returns -1. */
static int env_invalid(rl_error *err, const char *var, const char *v, const char *why)
{
    char q[RL_SCHEMA_QUOTE_SIZE];

    snprintf(err->text, sizeof err->text, "environment %s: invalid value %s: %s", var,
             rl_schema_quote(q, v), why);
    return -1;
}

/* Every row that names a variable, in secs[0..n). */
static int env_rows(rl_config *cfg, const rl_section *const *secs, size_t n, rl_error *err)
{
    char key[128];

    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < secs[i]->nsettings; k++) {
            const rl_setting *row = &secs[i]->settings[k];
            const char *v = row->env != NULL ? env_get(row->env, row) : NULL;
            if (v == NULL)
                continue;
            snprintf(key, sizeof key, "%s.%s", secs[i]->name, row->key);
            if (env_set(cfg, row->env, key, v, NULL, err) != 0)
                return -1;
        }
    return 0;
}

/* The rule the application calls `app`: named so, else (for "global") the first for "/". */
static const rl_rule *env_rule(const rl_config *cfg, const char *app)
{
    for (size_t i = 0; i < rl_config_nrules(cfg); i++)
        if (strcmp(rl_rule_name(rl_config_rule(cfg, i)), app) == 0)
            return rl_config_rule(cfg, i);
    for (size_t i = 0; strcmp(app, "global") == 0 && i < rl_config_nrules(cfg); i++) {
        const char *prefix = rl_rule_path_prefix(rl_config_rule(cfg, i));
        if (prefix != NULL && strcmp(prefix, "/") == 0)
            return rl_config_rule(cfg, i);
    }
    return NULL;
}

/* RATE_LIMIT_REQUESTS or RATE_LIMIT_CHAT: a limit for the rule the application names. */
static int env_limit(rl_config *cfg, const char *var, const char *app, const char *missing,
                     rl_error *err)
{
    const char *v = env_get(var, NULL);
    char text[64], key[RL_NAME_MAX + 16];
    const rl_rule *rule;

    if (v == NULL)
        return 0;
    if ((rule = env_rule(cfg, app)) == NULL) {
        snprintf(err->text, sizeof err->text, "environment %s: %s", var, missing);
        return -1;
    }
    if (strlen(v) >= sizeof text - 3)
        return env_invalid(err, var, v, "too long");
    if (v[strspn(v, "0123456789")] == '\0')
        snprintf(text, sizeof text, "%s/m", v); /* a bare count: per minute */
    else
        snprintf(text, sizeof text, "%s", v);
    snprintf(key, sizeof key, "rules[%s].limit", rl_rule_name(rule));
    return env_set(cfg, var, key, text, v, err);
}

int env_apply(rl_config *cfg, rl_error *err)
{
    const rl_section *const *core, *const *own;
    size_t ncore, nown;
    const char *v;

    core = rl_config_schema(&ncore);
    own = settings_sections(&nown);
    if (env_rows(cfg, core, ncore, err) != 0 || env_rows(cfg, own, nown, err) != 0)
        return -1;
    if ((v = env_get("RATE_LIMIT_FALLBACK_MEMORY", NULL)) != NULL) {
        int on;
        if (rl_parse_bool(v, &on) != 0)
            return env_invalid(err, "RATE_LIMIT_FALLBACK_MEMORY", v, RL_BOOL_EXPECTED);
        if (env_set(cfg, "RATE_LIMIT_FALLBACK_MEMORY", "rules[*].on_redis_down",
                    on ? "shm" : "open", v, err) != 0)
            return -1;
    }
    if (env_limit(cfg, "RATE_LIMIT_REQUESTS", "global",
                  "no rule named \"global\" and no rule with path_prefix \"/\"", err) != 0 ||
        env_limit(cfg, "RATE_LIMIT_CHAT", "chat", "no rule named \"chat\"", err) != 0)
        return -1;
    return 0;
}
