/* config_env.c -- RATE_LIMIT_* environment variables, applied after the config file
 *
 * Deployments that cannot edit the file (containers) set these; each maps onto one config
 * key, is validated as strictly as the key, and an invalid value stops the load with a
 * message naming the variable:
 *
 *   RATE_LIMIT_USE_REDIS        redis.enabled          true/false/1/0/yes/no (any case)
 *   RATE_LIMIT_REDIS_HOST       redis.host             non-empty
 *   RATE_LIMIT_REDIS_PORT       redis.port             1..65535
 *   RATE_LIMIT_REDIS_DB         redis.db               0..1000000
 *   RATE_LIMIT_REDIS_PASSWORD   redis.password         "" = no AUTH; never printed
 *   RATE_LIMIT_FALLBACK_MEMORY  rules[].on_redis_down  true: "shm" for every rule;
 *                                                      false: "open" for every rule
 *   RATE_LIMIT_REQUESTS         the general rule's limit: the rule named "global", else the
 *                               first rule whose path_prefix is "/"; error if none
 *   RATE_LIMIT_CHAT             the limit of the rule named "chat"; error if none
 *
 * A limit is "COUNT/PERIOD" as in the file, or a bare COUNT meaning per minute. A rule's
 * burst follows its new count when it equalled the old one (the default). The rule as the
 * override leaves it goes through rl_rule_check_numbers(), the very check the file's rules
 * pass (products, cost against burst/count, sliding_log bounds), so an override is refused
 * with the same reason the file would give. An unset or empty variable changes nothing.
 */
#include "fmacros.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_env.h"
#include "quote.h"
#include "rule.h"
#include "rule_check.h"

int rl_parse_redis_down(const char *text, rl_redis_down *out)
{
    if (strcmp(text, "shm") == 0)
        *out = RL_REDIS_DOWN_SHM;
    else if (strcmp(text, "open") == 0)
        *out = RL_REDIS_DOWN_OPEN;
    else if (strcmp(text, "closed") == 0)
        *out = RL_REDIS_DOWN_CLOSED;
    else
        return -1;
    return 0;
}

/* The variable's value, or NULL when unset or empty. */
static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* "environment RATE_LIMIT_X: invalid value "v": why". Returns -1. */
static int env_fail(rl_error *err, const char *name, const char *value, const char *why)
{
    char q[RL_QUOTE_SIZE];

    if (value != NULL)
        snprintf(err->text, sizeof(err->text), "environment %s: invalid value %s: %s", name,
                 rl_quote(q, value, strlen(value)), why);
    else
        snprintf(err->text, sizeof(err->text), "environment %s: %s", name, why);
    return -1;
}

static int env_bool(rl_error *err, const char *name, const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else
        return env_fail(err, name, v, "expected true, false, 1, 0, yes or no");
    return 0;
}

static int env_int(rl_error *err, const char *name, const char *v, long min, long max, int *out)
{
    char why[96];
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        snprintf(why, sizeof(why), "expected an integer in %ld..%ld", min, max);
        return env_fail(err, name, v, why);
    }
    *out = (int)n;
    return 0;
}

static int env_string(rl_error *err, const char *name, const char *v, char **dst)
{
    char *copy = strdup(v);

    if (copy == NULL)
        return env_fail(err, name, NULL, "out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

static rl_rule *env_rule_named(rl_config *cfg, const char *rule)
{
    for (size_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, rule) == 0)
            return &cfg->rules[i];
    return NULL;
}

/* Sets rule's limit from v ("COUNT/PERIOD" or a bare COUNT per minute). */
static int env_limit(rl_error *err, const char *name, const char *v, rl_rule *rule)
{
    char text[64];
    rl_error why;
    int64_t count, period;
    size_t span = strspn(v, "0123456789");

    if (strlen(v) >= sizeof(text) - 3)
        return env_fail(err, name, v, "too long");
    if (v[span] == '\0')
        snprintf(text, sizeof(text), "%s/m", v); /* a bare count: per minute */
    else
        snprintf(text, sizeof(text), "%s", v);
    if (rl_parse_limit(text, &count, &period, &why) != 0)
        return env_fail(err, name, v, why.text);
    int64_t burst = rule->burst == rule->count ? count : rule->burst;
    /* Exactly the file's check (rule_check.c), on the rule as the override would leave it. */
    rl_rule next = *rule;
    char reason[512];
    next.count = count;
    next.period_ms = period;
    next.burst = burst;
    next.limit_text = text;
    if (rl_rule_check_numbers(&next, reason, sizeof reason) != RL_CHECK_OK)
        return env_fail(err, name, v, reason);
    if (env_string(err, name, text, &rule->limit_text) != 0)
        return -1;
    rule->count = count;
    rule->period_ms = period;
    rule->burst = burst;
    rl_rule_derive(rule); /* the fingerprint in its keys follows the new numbers */
    return 0;
}

static int env_redis(rl_config *cfg, rl_error *err)
{
    const char *v;

    if ((v = env_get("RATE_LIMIT_USE_REDIS")) != NULL &&
        env_bool(err, "RATE_LIMIT_USE_REDIS", v, &cfg->redis.enabled) != 0)
        return -1;
    if ((v = env_get("RATE_LIMIT_REDIS_HOST")) != NULL &&
        env_string(err, "RATE_LIMIT_REDIS_HOST", v, &cfg->redis.host) != 0)
        return -1;
    if ((v = env_get("RATE_LIMIT_REDIS_PORT")) != NULL &&
        env_int(err, "RATE_LIMIT_REDIS_PORT", v, 1, 65535, &cfg->redis.port) != 0)
        return -1;
    if ((v = env_get("RATE_LIMIT_REDIS_DB")) != NULL &&
        env_int(err, "RATE_LIMIT_REDIS_DB", v, 0, 1000000, &cfg->redis.db) != 0)
        return -1;
    /* Read without env_get: set but empty means "no password", overriding the file's. */
    v = getenv("RATE_LIMIT_REDIS_PASSWORD");
    if (v != NULL) {
        if (v[0] == '\0') {
            free(cfg->redis.password);
            cfg->redis.password = NULL;
        } else if (env_string(err, "RATE_LIMIT_REDIS_PASSWORD", v, &cfg->redis.password) != 0)
            return -1;
    }
    return 0;
}

static int env_rules(rl_config *cfg, rl_error *err)
{
    const char *v;
    int fallback;

    if ((v = env_get("RATE_LIMIT_FALLBACK_MEMORY")) != NULL) {
        if (env_bool(err, "RATE_LIMIT_FALLBACK_MEMORY", v, &fallback) != 0)
            return -1;
        for (size_t i = 0; i < cfg->nrules; i++)
            cfg->rules[i].on_redis_down = fallback ? RL_REDIS_DOWN_SHM : RL_REDIS_DOWN_OPEN;
    }
    if ((v = env_get("RATE_LIMIT_REQUESTS")) != NULL) {
        rl_rule *rule = env_rule_named(cfg, "global");
        for (size_t i = 0; rule == NULL && i < cfg->nrules; i++)
            if (cfg->rules[i].path_prefix != NULL && strcmp(cfg->rules[i].path_prefix, "/") == 0)
                rule = &cfg->rules[i];
        if (rule == NULL)
            return env_fail(err, "RATE_LIMIT_REQUESTS", NULL,
                            "no rule named \"global\" and no rule with path_prefix \"/\"");
        if (env_limit(err, "RATE_LIMIT_REQUESTS", v, rule) != 0)
            return -1;
    }
    if ((v = env_get("RATE_LIMIT_CHAT")) != NULL) {
        rl_rule *rule = env_rule_named(cfg, "chat");
        if (rule == NULL)
            return env_fail(err, "RATE_LIMIT_CHAT", NULL, "no rule named \"chat\"");
        if (env_limit(err, "RATE_LIMIT_CHAT", v, rule) != 0)
            return -1;
    }
    return 0;
}

int rl_config_env(rl_config *cfg, rl_error *err)
{
    if (env_redis(cfg, err) != 0 || env_rules(cfg, err) != 0)
        return -1;
    return 0;
}
