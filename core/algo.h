/* algo.h -- the rate-limit algorithms as pure functions (internal)
 *
 * An algorithm maps (rule, stored state, now, cost) to a result and a new state. It reads no
 * clock and touches no store, so backends (shared memory, and the Lua twin in Redis) only
 * load the state, call it, and store the new state when the whole request is admitted.
 */
#ifndef RL_ALGO_H
#define RL_ALGO_H

#include "ratelimit.h"
#include "rule_types.h"

/* The most words any algorithm keeps: the sliding log's base, length and RL_LOG_MAX 32-bit
 * offsets two to a word (66 words, 528 bytes). Stores keep only rl_algo_state_words(rule)
 * words per key, and copy no more: an rl_state is scratch space, never copied whole. */
#define RL_STATE_WORDS (2 + (RL_LOG_MAX + 1) / 2)

/* The state one key carries between decisions. Its meaning belongs to the algorithm. */
typedef struct rl_state {
    int64_t w[RL_STATE_WORDS];
} rl_state;

/* rl_algo_decide's return: 0, or RL_ALGO_REPAIR when the stored state was impossible (a clock
 * that stepped backwards left it ahead of what any admission can produce) and *out holds its
 * normalised form, which the store keeps even when the request is refused. A repaired state
 * admits nothing more than the original: it only stops a key from being blocked for as long
 * as the clock stepped back. */
#define RL_ALGO_REPAIR 1

/* Decides one rule. `in` is the stored state, or NULL when the key is new (or expired).
 * Fills res; when allowed (or repaired), writes the state to keep into *out and how long it
 * must be kept (ms, >= 1) into *ttl_ms. Otherwise refusals change no state. cost >= 1, or 0
 * for a probe: the result then describes the state as it is (always allowed), which is what
 * a backend reports for a rule that would have admitted a request another rule refused. */
int rl_algo_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                   rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* The words of rl_state the rule's algorithm reads and writes, w[0..n): gcra 2, fixed_window
 * 2, sliding_window 3, sliding_log 2 + ceil(count/2) up to RL_LOG_MAX and
 * rl_sliding_bucket_words() (35) above. At most RL_STATE_WORDS for any rule the config
 * accepts. A store sizes its slots by the largest over its rules. */
size_t rl_algo_state_words(const rl_rule *rule);

/* GCRA; state w[0] = theoretical arrival time (ms), w[1] = its fraction in 1/count ms. */
int rl_gcra_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                   rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* Fixed window (window.c); w[0] = window start (a multiple of period_ms), w[1] = units used. */
int rl_fixed_window_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                           rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* Sliding window counter (window.c); w[0] = current window start, w[1] = units used in the
 * previous window, w[2] = units used in the current one. */
int rl_sliding_window_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                             rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* Sliding log (slidelog.c); w[0] = base time (ms), w[1] = n entries, w[2..] = n 32-bit
 * offsets from the base, two per word (entry 2k in the low half of w[2+k]), oldest first. */
int rl_sliding_log_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                          rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* Bucketed sliding log (slidebucket.c), for count > RL_LOG_MAX: never admits more than count
 * in any rolling period; w[0] = newest bucket index, w[1] = 0, w[2..] = RL_LOG_BUCKETS + 1
 * 32-bit bucket counts, newest first, two per word. */
int rl_sliding_bucket_decide(const rl_rule *rule, const rl_state *in, int64_t now_ms, int64_t cost,
                             rl_state *out, int64_t *ttl_ms, rl_rule_result *res);

/* The words rl_sliding_bucket_decide keeps: 2 + ceil((RL_LOG_BUCKETS + 1) / 2). */
size_t rl_sliding_bucket_words(void);

_Static_assert(2 + (RL_LOG_BUCKETS + 2) / 2 <= RL_STATE_WORDS, "a bucketed log fits a state");
_Static_assert(RL_LOG_COUNT_MAX < (1LL << 31), "bucket counts are 32 bits");

#endif
