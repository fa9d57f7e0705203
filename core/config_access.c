/* config_access.c -- what a program may read of a loaded (opaque) configuration */
#include "fmacros.h"

#include <string.h>

#include "config_types.h"
#include "config_where.h"
#include "identity.h"

const char *rl_config_path(const rl_config *cfg)
{
    return cfg->path;
}

size_t rl_config_nrules(const rl_config *cfg)
{
    return cfg->nrules;
}

const rl_rule *rl_config_rule(const rl_config *cfg, size_t i)
{
    return i < cfg->nrules ? &cfg->rules[i] : NULL;
}

const char *rl_config_shm_name(const rl_config *cfg)
{
    return cfg->shm.name;
}

int rl_config_shm_owner_set(const rl_config *cfg)
{
    return cfg->shm.uid_set;
}

void rl_config_redis_where(const rl_config *cfg, rl_redis_where *out)
{
    out->enabled = cfg->redis.enabled;
    out->socket = cfg->redis.socket;
    out->host = cfg->redis.host;
    out->port = cfg->redis.port;
    out->db = cfg->redis.db;
    out->cluster = (const char *const *)cfg->redis.cluster;
    out->ncluster = cfg->redis.ncluster;
    out->sentinels = (const char *const *)cfg->redis.sentinels;
    out->nsentinels = cfg->redis.nsentinels;
    out->master_name = cfg->redis.master_name;
}

const char *rl_config_forward_header(const rl_config *cfg)
{
    if (cfg->identity.ntrusted == 0)
        return NULL;
    return rl_identity_header_name(&cfg->identity);
}

/* The header a key part reads ("cookie" for any cookie), or NULL for the client identity. */
static const char *cfg_part_header(const rl_key_part *p)
{
    return p->kind == RL_KEY_COOKIE ? "cookie" : p->kind == RL_KEY_HEADER ? p->name : NULL;
}

/* Walks the parts in rule order, each new name once. The loader bounds the header names to
 * RL_KEY_HEADERS_MAX (config.c), so seen[] holds them and "cookie". */
const char *rl_config_key_header(const rl_config *cfg, size_t i)
{
    const char *seen[RL_KEY_HEADERS_MAX + 1];
    size_t n = 0;

    for (size_t r = 0; r < cfg->nrules; r++)
        for (size_t k = 0; k < cfg->rules[r].nkey; k++) {
            const char *name = cfg_part_header(&cfg->rules[r].key[k]);
            size_t j = 0;
            if (name == NULL)
                continue;
            while (j < n && strcmp(seen[j], name) != 0)
                j++;
            if (j < n)
                continue;
            if (n == i)
                return name;
            if (n == sizeof seen / sizeof seen[0])
                return NULL;
            seen[n++] = name;
        }
    return NULL;
}

const void *rl_config_section(const rl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nextra; i++)
        if (strcmp(cfg->extra[i]->name, name) == 0)
            return cfg->extra_data[i];
    return NULL;
}
