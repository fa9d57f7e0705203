/* keys.c -- every key a store is asked for: the one place the on-store format is defined
 *
 * Key format, version 2 (RL_KEYS_VERSION; version 1 had NAME where version 2 has the rule
 * identity, so v1 states are simply never read again). Hosts, processes and Redis must all build the same
 * bytes, so nothing below may change without bumping the version (and saying in MANUAL.md
 * what a rollout of the new format does to live state).
 *
 *   material      PART [0x1f PART]...   the rule's parts (client identity, header values,
 *                                       cookie values) joined by the unit separator; a part
 *                                       never holds a control byte (rule.c), so the join is
 *                                       unambiguous.
 *   digest        "h:" 32 hex digits    replaces material longer than RL_CLIENT_MAX bytes or
 *                                       beginning with "h:" (never truncated: two clients
 *                                       must not share a bucket): SipHash-2-4 of the whole
 *                                       material under the two FIXED public keys below, high
 *                                       word first. The keys are part of the format.
 *   rule identity NAME ":" FP           NAME: 1..63 of [A-Za-z0-9_.-] (config.c), no control
 *                                       byte, no '{', '}' or ':'. FP: 8 lowercase hex digits,
 *                                       the high 32 bits of SipHash-2-4, under the fixed
 *                                       public key below, of the decimal text
 *                                       "ALGO|COUNT|PERIOD_MS|BURST" (ALGO: rl_algo's value).
 *                                       So a state written under one limit is never read
 *                                       under another: a changed limit starts fresh states.
 *   shm key       ID 0x1f MATERIAL      the first 0x1f ends the identity.
 *   refusal key   ID 0x1e MATERIAL      the refusal cache's entries, in the same table: the
 *                                       first control byte tells the namespaces apart.
 *   Redis key     PREFIX "{" MATERIAL "}:" ID
 *                                       the hash tag {MATERIAL} keeps one client's keys in
 *                                       one Redis Cluster slot (one script never crosses
 *                                       slots); the identity is what follows the last "}:".
 *
 * The shm fallback (on_redis_down "shm", with redis.hosts > 1) decides a host's share of the
 * limit under the configured rule's identity: the share is derived from it.
 *
 * Each key splits back into exactly one (rule, material): two different pairs never share a
 * key, whatever bytes the client holds (tests/unit/test_keys.c pins the bytes).
 */
#include "fmacros.h"

#include "keys.h"
#include "rule_types.h"

#include <stdio.h>
#include <string.h>

#include "siphash.h"

/* The first 32 bytes of "ratelimit-filter key digest v1.0", split in two. Public. */
static const uint8_t keys_digest_key[2][RL_SIPHASH_KEY_SIZE] = {
    {'r', 'a', 't', 'e', 'l', 'i', 'm', 'i', 't', '-', 'f', 'i', 'l', 't', 'e', 'r'},
    {' ', 'k', 'e', 'y', ' ', 'd', 'i', 'g', 'e', 's', 't', ' ', 'v', '1', '.', '0'},
};

/* The first 16 bytes of "ratelimit-filter rule fingerprint v2". Public, part of the format. */
static const uint8_t keys_fingerprint_key[RL_SIPHASH_KEY_SIZE] = {
    'r', 'l', '-', 'r', 'u', 'l', 'e', '-', 'f', 'i', 'n', 'g', 'e', 'r', 'v', '2'};

static const char keys_hex[] = "0123456789abcdef";

size_t rl_keys_rule_id(const rl_rule *rule, char *out)
{
    char text[96];
    int len = snprintf(text, sizeof text, "%d|%lld|%lld|%lld", (int)rule->algo,
                       (long long)rule->count, (long long)rule->period_ms, (long long)rule->burst);
    uint64_t h = rl_siphash24(keys_fingerprint_key, text, (size_t)len);
    size_t n = strlen(rule->name);

    memcpy(out, rule->name, n);
    out[n++] = ':';
    for (int i = 0; i < RL_KEYS_FINGERPRINT_LEN; i++)
        out[n++] = keys_hex[(h >> (60 - 4 * i)) & 15];
    out[n] = '\0';
    return n;
}

void rl_keys_digest(const void *data, size_t len, char *out)
{
    uint64_t h[2] = {rl_siphash24(keys_digest_key[0], data, len),
                     rl_siphash24(keys_digest_key[1], data, len)};

    out[0] = 'h';
    out[1] = ':';
    for (int i = 0; i < 32; i++)
        out[2 + i] = keys_hex[(h[i / 16] >> (60 - 4 * (i % 16))) & 15];
    out[RL_KEYS_DIGEST_LEN] = '\0';
}

int rl_keys_needs_digest(const char *material, size_t len)
{
    return len > RL_CLIENT_MAX || (len >= 2 && material[0] == 'h' && material[1] == ':');
}

size_t rl_keys_shm_max(size_t name_len)
{
    return name_len + 1 + RL_CLIENT_MAX;
}

size_t rl_keys_shm(const char *name, size_t nlen, const char *material, size_t mlen, char *out)
{
    memcpy(out, name, nlen);
    out[nlen] = RL_KEYS_RULE_SEP;
    memcpy(out + nlen + 1, material, mlen);
    out[nlen + 1 + mlen] = '\0';
    return nlen + 1 + mlen;
}

int rl_keys_refusal(const char *key, size_t keylen, size_t nlen, char *out)
{
    if (keylen > RL_KEY_MAX || keylen <= nlen || key[nlen] != RL_KEYS_RULE_SEP)
        return -1;
    memcpy(out, key, keylen);
    out[keylen] = '\0';
    out[nlen] = RL_KEYS_REFUSAL_SEP;
    return 0;
}

size_t rl_keys_id_len(const char *key, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (key[i] == RL_KEYS_RULE_SEP || key[i] == RL_KEYS_REFUSAL_SEP)
            return i;
    return 0;
}

size_t rl_keys_redis_len(size_t plen, size_t clen, size_t nlen)
{
    return plen + 1 + clen + 2 + nlen;
}

char *rl_keys_redis(char *p, const char *prefix, size_t plen, const char *client, size_t clen,
                    const char *name, size_t nlen)
{
    memcpy(p, prefix, plen);
    p += plen;
    *p++ = '{';
    memcpy(p, client, clen);
    p += clen;
    *p++ = '}';
    *p++ = ':';
    memcpy(p, name, nlen);
    return p + nlen;
}
