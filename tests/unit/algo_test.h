/* algo_test.h -- driving one algorithm by hand in unit tests (lib_algo.c)
 *
 * rlt_step() decides one request on a key kept the way a store keeps it (the new state only
 * when allowed or repaired, with its ttl) and asserts the contract every algorithm owes its
 * callers (algo.h): a well-formed result, reset == retry_after on a refusal, a ttl on every
 * stored state, nothing written past the rule's state words, nothing written on a plain
 * refusal. The tests then check the numbers their algorithm should give.
 */
#ifndef RLT_ALGO_TEST_H
#define RLT_ALGO_TEST_H

#include "algo.h"

/* One key's life. */
typedef struct rlt_key {
    rl_state st;
    int have;        /* a state is stored */
    int repaired;    /* the last decision returned RL_ALGO_REPAIR */
    int64_t ttl;     /* of the stored state */
    int64_t expires; /* when a store would drop it: decided-at + ttl */
} rlt_key;

/* A rule named "t" (names longer than RL_NAME_MAX - 1 are cut). */
rl_rule rlt_rule(rl_algo algo, int64_t count, int64_t period_ms, int64_t burst);

/* Decides (cost 0 is a probe), asserts the contract, and stores like a backend. */
rl_rule_result rlt_step(const rl_rule *r, rlt_key *k, int64_t now, int64_t cost);

/* The same on a copy of the key: nothing is kept. */
rl_rule_result rlt_probe(const rl_rule *r, const rlt_key *k, int64_t now, int64_t cost);

#endif
