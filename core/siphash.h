/* siphash.h -- SipHash-2-4, a keyed 64-bit hash (internal)
 *
 * Aumasson and Bernstein, "SipHash: a fast short-input PRF" (2012). With a secret random key,
 * an attacker who picks the input cannot predict collisions, so a hash table indexed by it
 * cannot be flooded into long chains.
 */
#ifndef RL_SIPHASH_H
#define RL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define RL_SIPHASH_KEY_SIZE 16

/* SipHash-2-4 of data[0..len) under key (16 bytes, read as two little-endian words). data may
 * be NULL when len is 0. Same result on every platform: bytes are read little-endian. */
uint64_t rl_siphash24(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len);
/* SipHash-1-3 (1 compression round, 3 finalisation rounds), same conventions: the keyed hash
 * of the shared-memory table's index, where it runs on every decision. */
uint64_t rl_siphash13(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len);

#endif
