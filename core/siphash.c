/* siphash.c -- SipHash-2-4, written from the description in the paper
 *
 * State: four 64-bit words v0..v3 initialised from the key k0,k1 and four constants. Each
 * 8-byte little-endian message word m is absorbed as v3 ^= m, 2 SipRounds, v0 ^= m. The final
 * word holds the message length mod 256 in its top byte and the 0..7 leftover bytes below.
 * Finalisation: v2 ^= 0xff, 4 SipRounds, and the result is v0 ^ v1 ^ v2 ^ v3.
 */
#include "fmacros.h"

#include "siphash.h"

static uint64_t sip_rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

/* Little-endian load, byte by byte: no alignment or host byte-order assumption. */
static uint64_t sip_load64(const uint8_t *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = sip_rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = sip_rotl(v[0], 32);
    v[2] += v[3];
    v[3] = sip_rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = sip_rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = sip_rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = sip_rotl(v[2], 32);
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t rl_siphash24(const uint8_t key[RL_SIPHASH_KEY_SIZE], const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint64_t k0 = sip_load64(key, 8);
    const uint64_t k1 = sip_load64(key + 8, 8);
    /* "somepseudorandomlygeneratedbytes", as in the paper. */
    uint64_t v[4] = {
        k0 ^ 0x736f6d6570736575ULL,
        k1 ^ 0x646f72616e646f6dULL,
        k0 ^ 0x6c7967656e657261ULL,
        k1 ^ 0x7465646279746573ULL,
    };
    size_t whole = len - len % 8;

    for (size_t i = 0; i < whole; i += 8)
        sip_absorb(v, sip_load64(p + i, 8));
    /* Only form p + whole when bytes remain: data may be NULL for an empty message. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    if (len % 8 != 0)
        last |= sip_load64(p + whole, len % 8);
    sip_absorb(v, last);

    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
