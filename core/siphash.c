/* siphash.c -- SipHash-2-4 and SipHash-1-3, written from the description in the paper
 *
 * State: four 64-bit words v0..v3 initialised from the key k0,k1 and four constants. Each
 * 8-byte little-endian message word m is absorbed as v3 ^= m, 2 SipRounds, v0 ^= m. The final
 * word holds the message length mod 256 in its top byte and the 0..7 leftover bytes below.
 * Finalisation: v2 ^= 0xff, 4 SipRounds, and the result is v0 ^ v1 ^ v2 ^ v3. SipHash-1-3
 * is the same with 1 round per word and 3 in finalisation (the variant hash tables use:
 * Rust's HashMap, CPython's str hash).
 */
#include "fmacros.h"

#include "siphash.h"

static inline uint64_t sip_rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

/* Little-endian load of 8 bytes, byte by byte: no alignment or host byte-order assumption
 * (compilers turn it into one load on a little-endian host). */
static inline uint64_t sip_load64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline uint64_t sip_load32(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

/* The last len % 8 bytes, p[whole..len), little-endian in the low bytes of a word; 0 when
 * there are none, without touching p (NULL for an empty message). Overlapping loads rather
 * than one byte at a time (a quarter of the hash of a short key): 8 bytes or more, the last 8
 * with the ones already absorbed shifted out; 4 to 7, two 4-byte loads; 1 to 3, three bytes.
 * Where two loads overlap, they put the same byte at the same place. */
static inline uint64_t sip_tail(const uint8_t *p, size_t whole, size_t len)
{
    const size_t left = len - whole;

    if (left == 0)
        return 0;
    if (whole > 0)
        return sip_load64(p + len - 8) >> (64 - 8 * left);
    if (len >= 4)
        return sip_load32(p) | sip_load32(p + len - 4) << (8 * (len - 4));
    return (uint64_t)p[0] | (uint64_t)p[len / 2] << (8 * (len / 2)) |
           (uint64_t)p[len - 1] << (8 * (len - 1));
}

/* The state is four locals, not an array, so that it stays in registers: the hash is on
 * every shared-memory decision (a third of its instructions when the rounds were calls). */
#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = sip_rotl(v1, 13);                                                                     \
        v1 ^= v0;                                                                                  \
        v0 = sip_rotl(v0, 32);                                                                     \
        v2 += v3;                                                                                  \
        v3 = sip_rotl(v3, 16);                                                                     \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = sip_rotl(v3, 21);                                                                     \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = sip_rotl(v1, 17);                                                                     \
        v1 ^= v2;                                                                                  \
        v2 = sip_rotl(v2, 32);                                                                     \
    } while (0)

/* SipHash-c-d: c rounds per message word, d in finalisation (constants: inlined twice). */
__attribute__((always_inline)) static inline uint64_t
sip_hash(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len, int c, int d)
{
    const uint8_t *p = data;
    const uint64_t k0 = sip_load64(key);
    const uint64_t k1 = sip_load64(key + 8);
    /* "somepseudorandomlygeneratedbytes", as in the paper. */
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = len - len % 8;
    uint64_t m;

    for (size_t i = 0; i < whole; i += 8) {
        m = sip_load64(p + i);
        v3 ^= m;
        for (int r = 0; r < c; r++)
            SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    m = (uint64_t)(len & 0xff) << 56 | sip_tail(p, whole, len);
    v3 ^= m;
    for (int r = 0; r < c; r++)
        SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;

    v2 ^= 0xff;
    /* Written out: d is 3 or 4, and the compiler kept a 3-round loop (its counter and branch
     * are 6 instructions of a ~120-instruction hash). */
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    for (int r = 3; r < d; r++)
        SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t rl_siphash24(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len)
{
    return sip_hash(key, data, len, 2, 4);
}

uint64_t rl_siphash13(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len)
{
    return sip_hash(key, data, len, 1, 3);
}
