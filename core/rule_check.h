/* rule_check.h -- the one check of a rule's numbers, shared by the file and RATE_LIMIT_* (internal) */
#ifndef RL_RULE_CHECK_H
#define RL_RULE_CHECK_H

#include <stddef.h>

#include "ratelimit.h"

/* count x period and burst x period (ms) may not exceed this: every product and sum the
 * algorithms form is then below 2^53, exact in int64 and in Redis' Lua doubles. */
#define RL_PRODUCT_MAX (1LL << 50)

enum { RL_CHECK_OK = 0, RL_CHECK_LIMIT, RL_CHECK_BURST, RL_CHECK_COST };

/* Checks count, period_ms, burst, cost and the algorithm's own bounds of rule (limit_text
 * names the limit in messages). Returns RL_CHECK_OK, or which key is at fault with the reason
 * written to why[0..n). Every product is formed with __builtin_mul_overflow. */
int rl_rule_check_numbers(const rl_rule *rule, char *why, size_t n);

#endif
