/* test_siphash.c -- SipHash-2-4 against the paper's vector and an independent implementation
 *
 * Key 00..0f and message 00..(len-1), as in the paper's appendix A and the reference test
 * table. Lengths other than the paper's 0 and 15 come from `openssl mac ... SIPHASH` (which
 * prints the result as little-endian bytes); together they cover every tail length class.
 * SipHash-1-3 (the shared-memory table's hash) against openssl's c-rounds:1 d-rounds:3.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"
#include "leakcheck.h"

static uint8_t sip_key[16];
static uint8_t sip_msg[64];

static void sip_setup(void)
{
    for (int i = 0; i < 16; i++)
        sip_key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        sip_msg[i] = (uint8_t)i;
}

TestSuite(siphash, .init = sip_setup, .fini = rl_test_leak_check);

Test(siphash, paper_vector)
{
    cr_assert_eq(rl_siphash24(sip_key, sip_msg, 15), 0xa129ca6149be45e5ULL);
}

Test(siphash, reference_lengths)
{
    static const struct {
        size_t len;
        uint64_t want;
    } v[] = {
        {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {7, 0xab0200f58b01d137ULL},
        {8, 0x93f5f5799a932462ULL},  {16, 0x3f2acc7f57c29bdbULL}, {63, 0x958a324ceb064572ULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        cr_assert_eq(rl_siphash24(sip_key, sip_msg, v[i].len), v[i].want, "len %zu", v[i].len);
}

Test(siphash, empty_message_may_be_null)
{
    cr_assert_eq(rl_siphash24(sip_key, NULL, 0), 0x726fdb47dd0e0e31ULL);
}

Test(siphash, unaligned_input_and_key_dependence)
{
    uint8_t buf[80];
    uint8_t other[16];

    /* The same bytes at an odd address hash the same. */
    memcpy(buf + 1, sip_msg, 63);
    cr_assert_eq(rl_siphash24(sip_key, buf + 1, 63), 0x958a324ceb064572ULL);

    memcpy(other, sip_key, sizeof other);
    other[15] ^= 1;
    cr_assert_neq(rl_siphash24(other, sip_msg, 15), 0xa129ca6149be45e5ULL);
}

/* SipHash-1-3: `openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f -macopt size:8
 * -macopt c-rounds:1 -macopt d-rounds:3 SIPHASH`, every tail length class and two words. */
Test(siphash, siphash13_reference_lengths)
{
    static const struct {
        size_t len;
        uint64_t want;
    } v[] = {
        {0, 0xabac0158050fc4dcULL},
        {1, 0xc9f49bf37d57ca93ULL},
        {2, 0x82cb9b024dc7d44dULL},
        {3, 0x8bf80ab8e7ddf7fbULL},
        {4, 0xcf75576088d38328ULL},
        {5, 0xdef9d52f49533b67ULL},
        {6, 0xc50d2b50c59f22a7ULL},
        {7, 0xd3927d989bb11140ULL},
        {8, 0x369095118d299a8eULL},
        {9, 0x25a48eb36c063de4ULL},
        {15, 0xd320d86d2a519956ULL},
        {16, 0xcc4fdd1a7d908b66ULL},
        {63, 0x9d199062b7bbb3a8ULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        cr_assert_eq(rl_siphash13(sip_key, sip_msg, v[i].len), v[i].want, "len %zu", v[i].len);
    cr_assert_eq(rl_siphash13(sip_key, NULL, 0), 0xabac0158050fc4dcULL);
    cr_assert_neq(rl_siphash13(sip_key, sip_msg, 15), rl_siphash24(sip_key, sip_msg, 15));
}

/* An independent SipHash-c-d, byte at a time as the paper writes it (no word loads). */
#define REF_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
static uint64_t ref_siphash(const uint8_t k[16], const uint8_t *m, size_t len, int c, int d)
{
    uint64_t k0 = 0, k1 = 0, v0, v1, v2, v3, b = (uint64_t)(len & 0xff) << 56;

    for (int i = 7; i >= 0; i--) {
        k0 = k0 << 8 | k[i];
        k1 = k1 << 8 | k[8 + i];
    }
    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;
#define REF_ROUND()                                                                                \
    do {                                                                                           \
        v0 += v1, v1 = REF_ROTL(v1, 13), v1 ^= v0, v0 = REF_ROTL(v0, 32);                          \
        v2 += v3, v3 = REF_ROTL(v3, 16), v3 ^= v2;                                                 \
        v0 += v3, v3 = REF_ROTL(v3, 21), v3 ^= v0;                                                 \
        v2 += v1, v1 = REF_ROTL(v1, 17), v1 ^= v2, v2 = REF_ROTL(v2, 32);                          \
    } while (0)
    for (size_t i = 0; i <= len; i++) {
        uint64_t w;
        if (i < len && (i % 8 != 7))
            continue;
        if (i == len) { /* the last block: the tail bytes and the length */
            w = b;
            for (size_t j = len - len % 8; j < len; j++)
                w |= (uint64_t)m[j] << (8 * (j % 8));
        } else {
            w = 0;
            for (int j = 7; j >= 0; j--)
                w = w << 8 | m[i - 7 + (size_t)j];
        }
        v3 ^= w;
        for (int r = 0; r < c; r++)
            REF_ROUND();
        v0 ^= w;
    }
    v2 ^= 0xff;
    for (int r = 0; r < d; r++)
        REF_ROUND();
#undef REF_ROUND
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The tail's overlapping loads (siphash.c) against the byte-at-a-time reference: every
 * length 0..80 at every alignment, both variants, pseudo-random keys and bytes. Each message
 * ends where its heap block ends, so that a load past the end fails under ASan. */
Test(siphash, every_length_and_alignment_as_the_bytewise_reference)
{
    unsigned seed = 1;
    uint8_t key[16];

    cr_assert_eq(ref_siphash(sip_key, sip_msg, 15, 2, 4), 0xa129ca6149be45e5ULL);
    for (size_t len = 0; len <= 80; len++) {
        for (size_t off = 0; off < 8; off++) {
            uint8_t *block = malloc(off + len > 0 ? off + len : 1), *m = block + off;
            cr_assert_not_null(block);
            for (int i = 0; i < 16; i++)
                key[i] = (uint8_t)rand_r(&seed);
            for (size_t i = 0; i < len; i++)
                m[i] = (uint8_t)rand_r(&seed);
            cr_assert_eq(rl_siphash24(key, m, len), ref_siphash(key, m, len, 2, 4),
                         "2-4 len %zu off %zu", len, off);
            cr_assert_eq(rl_siphash13(key, m, len), ref_siphash(key, m, len, 1, 3),
                         "1-3 len %zu off %zu", len, off);
            free(block);
        }
    }
}
