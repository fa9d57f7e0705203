/* keys.h -- every key a store is asked for, built in one place (internal; format in keys.c) */
#ifndef RL_KEYS_H
#define RL_KEYS_H

#include <stddef.h>

#include "ratelimit.h"
#include "rule_types.h"

/* The on-store key format's version (keys.c). Changing any byte of a key bumps it. */
#define RL_KEYS_VERSION 2

#define RL_KEY_MAX 256 /* bytes of a rate-limit key (rule + client), NUL excluded */

#define RL_KEYS_PART_SEP '\x1f'    /* between key material parts */
#define RL_KEYS_RULE_SEP '\x1f'    /* shm: between the rule name and the material */
#define RL_KEYS_REFUSAL_SEP '\x1e' /* refusal cache: between the rule name and the material */
#define RL_KEYS_DIGEST_LEN 34      /* "h:" + 32 hex digits */

/* "h:" and 32 lowercase hex digits: a 128-bit SipHash-2-4 digest (two runs under the fixed,
 * public keys of keys.c) of data[0..len). Writes 35 bytes with the NUL. */
void rl_keys_digest(const void *data, size_t len, char *out);

/* 1 when material of len bytes must be replaced by its digest: longer than RL_CLIENT_MAX, or
 * beginning with "h:" (that space holds digests only). */
int rl_keys_needs_digest(const char *material, size_t len);

#define RL_KEYS_FINGERPRINT_LEN 8 /* hex digits */
_Static_assert(RL_RULE_ID_MAX == RL_NAME_MAX + 1 + RL_KEYS_FINGERPRINT_LEN,
               "rl_rule.key_id holds a name, ':' and the fingerprint");

/* The rule's identity in keys, NAME ":" 8 hex digits of the fingerprint of its algorithm,
 * count, period and burst, into out (RL_RULE_ID_MAX bytes). Returns its length. */
size_t rl_keys_rule_id(const rl_rule *rule, char *out);

/* The longest shm key of a rule identity of name_len bytes. */
size_t rl_keys_shm_max(size_t name_len);

/* The shm key NAME 0x1f MATERIAL into out (rl_keys_shm_max(nlen) + 1 bytes), NUL-terminated.
 * Returns its length. */
size_t rl_keys_shm(const char *name, size_t nlen, const char *material, size_t mlen, char *out);

/* The refusal-cache key of the shm key `key` (keylen bytes) of a rule name of nlen bytes:
 * NAME 0x1e MATERIAL, into out (RL_KEY_MAX + 1 bytes). 0, or -1 when key is not such a key. */
int rl_keys_refusal(const char *key, size_t keylen, size_t nlen, char *out);

/* The length of the rule identity a shm or refusal-cache key begins with (up to its first
 * separator), 0 when key is neither. */
size_t rl_keys_id_len(const char *key, size_t len);

/* Bytes of the Redis key of client clen bytes, rule name nlen, under a prefix of plen. */
size_t rl_keys_redis_len(size_t plen, size_t clen, size_t nlen);

/* The Redis key PREFIX "{" CLIENT "}:" NAME at p (rl_keys_redis_len bytes, no NUL). Returns
 * the end. */
char *rl_keys_redis(char *p, const char *prefix, size_t plen, const char *client, size_t clen,
                    const char *name, size_t nlen);

#endif
