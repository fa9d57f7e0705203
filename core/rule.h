/* rule.h -- which rules a request meets, and the key each one counts it under (internal) */
#ifndef RL_RULE_H
#define RL_RULE_H

#include "ratelimit.h"
#include "rule_types.h"

/* Fills the fields derived from a finished rule, so the request path never measures them:
 * name_len, path_prefix_len, path_len and key_id (keys.c: the name and the fingerprint of algorithm,
 * count, period and burst). Called by the file's loader and again by every RATE_LIMIT_*
 * override that changes the numbers: a stale key_id would read one limit's state under
 * another. */
void rl_rule_derive(rl_rule *rule);

/* 1 when every condition of rule holds for req; path is the request's canonical path
 * (rl_path_canon), never the raw target. */
int rl_rule_matches(const rl_rule *rule, const rl_request *req, const char *path);

/* What rl_rule_matches returns when path_regex's match stopped at its limit: the rule does
 * not match, and the caller counts it (RL_STAT_REGEX_LIMIT). */
#define RL_RULE_REGEX_LIMIT (-1)

/* Bytes of one header or cookie value a key may use; a longer one counts as missing. */
#define RL_KEY_VALUE_MAX 8192
/* Scratch room rl_rule_key needs: every part at its longest, and the separators. */
#define RL_KEY_SCRATCH (RL_KEY_PARTS_MAX * (RL_KEY_VALUE_MAX + 1))

/* Builds the key material of rule for req into out (RL_CLIENT_MAX + 1 bytes) from the
 * client identity `client`, using scratch (RL_KEY_SCRATCH bytes). Returns its length, or -1
 * when a part is missing or unusable (absent, empty, longer than RL_KEY_VALUE_MAX, or
 * holding a byte below 0x20 or 0x7f): rule->on_missing_key then applies.
 * Parts are joined with 0x1f, which no part may hold, so different part values never give
 * the same material. Material longer than RL_CLIENT_MAX, or beginning with "h:", is replaced
 * by rl_keys_digest() of it (keys.c). */
int rl_rule_key(const rl_rule *rule, const rl_request *req, const char *client, char *scratch,
                char *out);

#endif
