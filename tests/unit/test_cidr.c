/* test_cidr.c -- address blocks: parsing (good, bad, host bits) and matching, table-driven */
#include "fmacros.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "leakcheck.h"

TestSuite(cidr, .fini = rl_test_leak_check);

static rl_cidr parse_ok(const char *text)
{
    rl_cidr c;
    char why[128];
    cr_assert_eq(rl_cidr_parse(text, &c, why, sizeof why), 0, "%s: %s", text, why);
    return c;
}

static int in(const char *block, const char *addr)
{
    rl_cidr c = parse_ok(block);
    uint8_t a[16];
    cr_assert_eq(rl_addr_parse(addr, strlen(addr), a), 0, "%s", addr);
    return rl_cidr_match(&c, 1, a);
}

Test(cidr, matching)
{
    static const struct {
        const char *block, *addr;
        int want;
    } t[] = {
        {"10.0.0.0/8", "10.255.1.2", 1},
        {"10.0.0.0/8", "11.0.0.0", 0},
        {"10.0.0.0/8", "::ffff:10.1.2.3", 1}, /* IPv4-mapped is IPv4 */
        {"192.0.2.0/24", "192.0.2.255", 1},
        {"192.0.2.0/24", "192.0.3.0", 0},
        {"192.0.2.128/25", "192.0.2.127", 0},
        {"192.0.2.128/25", "192.0.2.128", 1},
        {"203.0.113.7", "203.0.113.7", 1}, /* bare address: /32 */
        {"203.0.113.7", "203.0.113.8", 0},
        {"0.0.0.0/0", "1.2.3.4", 1},
        {"0.0.0.0/0", "2001:db8::1", 0}, /* an IPv4 block never holds IPv6 */
        {"::/0", "2001:db8::1", 1},
        {"::/0", "1.2.3.4", 1}, /* every address, IPv4-mapped included */
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::1", 0},
        {"2001:db8:0:2::/63", "2001:db8:0:3:ffff::", 1},
        {"2001:db8:0:2::/63", "2001:db8:0:4::", 0},
        {"2001:db8::/127", "2001:db8::1", 1},
        {"2001:db8::/127", "2001:db8::2", 0},
        {"::1", "::1", 1},
        {"::ffff:10.0.0.0/104", "10.9.9.9", 1},
        {"127.0.0.1/32", "127.0.0.2", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_expect_eq(in(t[i].block, t[i].addr), t[i].want, "%s in %s", t[i].addr, t[i].block);
}

Test(cidr, bad_blocks)
{
    static const struct {
        const char *text, *why;
    } t[] = {
        {"", "not an IPv4 or IPv6 address"},
        {"10.0.0", "not an IPv4 or IPv6 address"},
        {"10.0.0.0/", "invalid prefix length: expected 0..32 after '/'"},
        {"10.0.0.0/33", "prefix length 33 is above 32"},
        {"10.0.0.0/-1", "invalid prefix length: expected 0..32 after '/'"},
        {"10.0.0.0/08", "invalid prefix length: expected 0..32 after '/'"},
        {"10.0.0.0/8 ", "invalid prefix length: expected 0..32 after '/'"},
        {"10.0.0.0/8/8", "invalid prefix length: expected 0..32 after '/'"},
        {"10.1.0.0/8", "host bits set: the block is 10.0.0.0/8"},
        {"2001:db8::1/32", "host bits set: the block is 2001:db8::/32"},
        {"2001:db8::/129", "prefix length 129 is above 128"},
        {"example.com/8", "not an IPv4 or IPv6 address"},
        {"fe80::1%eth0/64", "not an IPv4 or IPv6 address"},
        {" 10.0.0.0/8", "not an IPv4 or IPv6 address"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rl_cidr c;
        char why[128] = "";
        cr_expect_eq(rl_cidr_parse(t[i].text, &c, why, sizeof why), -1, "%s", t[i].text);
        cr_expect_str_eq(why, t[i].why, "%s", t[i].text);
    }
}

Test(cidr, list_and_format)
{
    rl_cidr list[3] = {parse_ok("10.0.0.0/8"), parse_ok("2001:db8::/32"), parse_ok("::1")};
    uint8_t a[16];
    char buf[RL_ADDR_TEXT_MAX];

    cr_assert_eq(rl_addr_parse("::1", 3, a), 0);
    cr_assert(rl_cidr_match(list, 3, a));
    cr_assert_not(rl_cidr_match(list, 0, a));
    cr_assert_eq(rl_addr_parse("::ffff:192.0.2.1", 16, a), 0);
    cr_assert_str_eq(rl_addr_format(a, buf), "192.0.2.1");
    /* IPv4 is formatted by hand: every digit count, as inet_ntop writes them */
    const char *v4[] = {"0.0.0.0", "255.255.255.255", "10.0.100.9", "1.23.45.199", "100.10.1.0"};
    for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
        char want[INET_ADDRSTRLEN];
        cr_assert_eq(rl_addr_parse(v4[i], strlen(v4[i]), a), 0);
        cr_assert_str_eq(rl_addr_format(a, buf), v4[i]);
        cr_assert_not_null(inet_ntop(AF_INET, a + 12, want, sizeof want));
        cr_assert_str_eq(buf, want);
    }
    for (unsigned v = 0; v < 256; v++) {
        char want[INET_ADDRSTRLEN];
        a[12] = (uint8_t)v, a[13] = (uint8_t)(255 - v), a[14] = (uint8_t)(v * 7), a[15] = (uint8_t)v;
        cr_assert_not_null(inet_ntop(AF_INET, a + 12, want, sizeof want));
        cr_assert_str_eq(rl_addr_format(a, buf), want);
    }
    cr_assert_eq(rl_addr_parse("2001:DB8:0:0:1:2:3:4", 20, a), 0);
    rl_addr_mask(a, 64);
    cr_assert_str_eq(rl_addr_format(a, buf), "2001:db8::");
    cr_assert_eq(rl_addr_parse("1.2.3.4x", 8, a), -1);
    cr_assert_eq(rl_addr_parse("1.2.3.4", 0, a), -1);
}

/* The hand-written IPv4 reader and writer (cidr.c) agree with inet_pton and inet_ntop: every
 * octet value in every position, and spellings near the canonical form, accepted or refused
 * alike, with the same bytes. */
Test(cidr, ipv4_text_as_inet_pton_and_inet_ntop)
{
    static const char *const odd[] = {
        "0.0.0.0", "255.255.255.255", "1.2.3.04", "01.2.3.4", "00.1.2.3", "1.2.3.256",
        "1.2.3.999", "1.2.3.1000", "1.2.3", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4.5",
        "1.2.3.-4", "1.2.3.+4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/8", "1.2.3.0x4", "a.b.c.d",
        "1.2.3.4\0" "5", "::1.2.3.4", "::ffff:1.2.3.4", "1.2.3.", "",
    };
    const size_t oddlen[] = {7, 15, 8, 8, 8, 9, 9, 10, 5, 8, 8, 6, 9, 8, 8, 8, 8, 9, 9, 7, 9, 9,
                             14, 6, 0};
    uint8_t a[16], want[16];
    char text[64], buf[RL_ADDR_TEXT_MAX], ref[RL_ADDR_TEXT_MAX];

    cr_assert_eq(sizeof odd / sizeof odd[0], sizeof oddlen / sizeof oddlen[0]);
    for (int pos = 0; pos < 4; pos++) {
        for (unsigned v = 0; v < 256; v++) {
            uint8_t q[4] = {10, 200, 3, 45};
            int n;
            q[pos] = (uint8_t)v;
            n = snprintf(text, sizeof text, "%u.%u.%u.%u", q[0], q[1], q[2], q[3]);
            cr_assert_eq(rl_addr_parse(text, (size_t)n, a), 0, "%s", text);
            cr_assert(rl_addr_is_v4(a), "%s", text);
            cr_assert_eq(memcmp(a + 12, q, 4), 0, "%s", text);
            cr_assert_str_eq(rl_addr_format(a, buf), inet_ntop(AF_INET, q, ref, sizeof ref));
            cr_assert_str_eq(buf, text);
        }
    }
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        struct in_addr v4;
        int ok;
        memcpy(text, odd[i], oddlen[i]);
        text[oddlen[i]] = '\0';
        /* What the code before did: inet_pton on a NUL-terminated copy, IPv4 then IPv6. */
        ok = inet_pton(AF_INET, text, &v4) == 1;
        if (ok) {
            memset(want, 0, 10);
            want[10] = want[11] = 0xff;
            memcpy(want + 12, &v4, 4);
        } else {
            ok = inet_pton(AF_INET6, text, want) == 1;
        }
        memset(a, 0x5a, sizeof a);
        cr_assert_eq(rl_addr_parse(odd[i], oddlen[i], a), ok ? 0 : -1, "\"%s\"", odd[i]);
        if (ok)
            cr_assert_eq(memcmp(a, want, 16), 0, "\"%s\"", odd[i]);
    }
}

/* The hand-written IPv6 writer (cidr.c) agrees with inet_ntop: 200000 pseudo-random addresses
 * whose words are mostly 0 (runs of every length and place, ties between runs), 1, ffff or
 * anything, and the special forms (::, ::1, ::a.b.c.d, a single zero word). */
Test(cidr, ipv6_text_as_inet_ntop)
{
    static const char *const fixed[] = {"::", "::1", "::2", "1::", "::1.2.3.4", "::ffff:0:1",
                                        "1:0:2::", "1::2:0:0:3", "0:1::", "1:0:0:2:0:0:3:4",
                                        "fe80::1", "2001:db8:0:1:1:1:1:1"};
    uint8_t a[16];
    char buf[RL_ADDR_TEXT_MAX], ref[RL_ADDR_TEXT_MAX];
    unsigned seed = 42;

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        cr_assert_eq(inet_pton(AF_INET6, fixed[i], a), 1, "%s", fixed[i]);
        if (rl_addr_is_v4(a))
            continue;
        cr_assert_str_eq(rl_addr_format(a, buf), inet_ntop(AF_INET6, a, ref, sizeof ref));
    }
    for (int n = 0; n < 200000; n++) {
        for (int w = 0; w < 8; w++) {
            unsigned r = (unsigned)rand_r(&seed), v;
            switch (r % 8) {
            case 0: v = 1; break;
            case 1: v = 0xffff; break;
            case 2: v = (r >> 8) & 0xffff; break;
            case 3: v = (r >> 8) & 0xf; break;
            default: v = 0;
            }
            a[2 * w] = (uint8_t)(v >> 8);
            a[2 * w + 1] = (uint8_t)v;
        }
        if (rl_addr_is_v4(a))
            continue;
        cr_assert_str_eq(rl_addr_format(a, buf), inet_ntop(AF_INET6, a, ref, sizeof ref));
    }
}

/* The hand-written IPv6 reader (cidr.c) accepts and refuses what inet_pton does, with the
 * same bytes: fixed edge cases, then 200000 pseudo-random near-addresses (1 to 9 groups of
 * 0 to 5 hex digits, either case, ':' or "::" between, stray leading and trailing colons). */
Test(cidr, ipv6_text_as_inet_pton)
{
    static const char *const fixed[] = {
        "::", "::1", "1::", "1::2", ":1::2", "1::2:", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7", "1:2:3:4::5:6:7:8", "::1:2:3:4:5:6:7", "1:2:3:4:5:6:7::", "1::2::3",
        ":::", "1:::2", "12345::", "ABCD:ef01::", "::ffff:1.2.3.4", "fe80::1%eth0", "g::",
        "1:2:3:4:5:6:7:", ":1:2:3:4:5:6:7", "0000:0000::0001",
    };
    unsigned seed = 7;

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] + 200000; i++) {
        char text[64];
        size_t len = 0;
        uint8_t a[16], want[16];
        int ok;
        if (i < sizeof fixed / sizeof fixed[0]) {
            len = strlen(fixed[i]);
            memcpy(text, fixed[i], len);
        } else {
            int groups = 1 + rand_r(&seed) % 9;
            if (rand_r(&seed) % 4 == 0)
                text[len++] = ':', text[len++] = ':';
            for (int q = 0; q < groups && len < 44; q++) {
                int nd = rand_r(&seed) % 6;
                for (int d = 0; d < nd && len < 44; d++)
                    text[len++] = "0123456789abcdefABCDEF"[rand_r(&seed) % 22];
                if (q < groups - 1 && len < 44) {
                    text[len++] = ':';
                    if (rand_r(&seed) % 8 == 0)
                        text[len++] = ':';
                }
            }
            if (rand_r(&seed) % 6 == 0 && len < 44)
                text[len++] = ':';
        }
        text[len] = '\0';
        ok = inet_pton(AF_INET6, text, want) == 1;
        {
            struct in_addr v4;
            if (inet_pton(AF_INET, text, &v4) == 1) {
                memset(want, 0, 10);
                want[10] = want[11] = 0xff;
                memcpy(want + 12, &v4, 4);
                ok = 1;
            }
        }
        memset(a, 0x5a, sizeof a);
        cr_assert_eq(rl_addr_parse(text, len, a), ok ? 0 : -1, "\"%s\"", text);
        if (ok)
            cr_assert_eq(memcmp(a, want, 16), 0, "\"%s\"", text);
    }
}

/* Client keys are built from rl_addr_format's text: every spelling of one address gives one
 * text, and the text reads back as that address (so two addresses never share a text).
 * 100000 pseudo-random addresses (IPv4, and IPv6 with runs of zeros), each written out as
 * inet_ntop does, in full with leading zeros, in upper case, and IPv4 also as ::ffff:a.b.c.d
 * and ::ffff:HHHH:HHHH, all of them read back to one text. */
Test(cidr, every_spelling_of_an_address_gives_one_text)
{
    unsigned seed = 11;
    uint8_t a[16], back[16];
    char canon[RL_ADDR_TEXT_MAX], ref[RL_ADDR_TEXT_MAX], buf[RL_ADDR_TEXT_MAX], text[64];

    for (int n = 0; n < 100000; n++) {
        unsigned w[8];
        int v4 = rand_r(&seed) % 3 == 0, nsp = 0;
        char sp[6][64];

        for (int i = 0; i < 8; i++) {
            unsigned r = (unsigned)rand_r(&seed);
            w[i] = r % 3 == 0 ? 0 : r % 3 == 1 ? (r >> 8) & 0xf : (r >> 8) & 0xffff;
        }
        if (v4) {
            for (int i = 0; i < 5; i++)
                w[i] = 0;
            w[5] = 0xffff;
        }
        for (int i = 0; i < 8; i++) {
            a[2 * i] = (uint8_t)(w[i] >> 8);
            a[2 * i + 1] = (uint8_t)w[i];
        }
        cr_assert_eq(rl_addr_is_v4(a), v4);
        rl_addr_format(a, canon);
        if (v4)
            cr_assert_str_eq(canon, inet_ntop(AF_INET, a + 12, ref, sizeof ref));
        else
            cr_assert_str_eq(canon, inet_ntop(AF_INET6, a, ref, sizeof ref));
        snprintf(sp[nsp++], 64, "%s", canon);
        snprintf(sp[nsp++], 64, "%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x", w[0], w[1], w[2], w[3],
                 w[4], w[5], w[6], w[7]);
        snprintf(sp[nsp++], 64, "%X:%X:%X:%X:%X:%X:%X:%X", w[0], w[1], w[2], w[3], w[4], w[5], w[6],
                 w[7]);
        if (v4) {
            snprintf(sp[nsp++], 64, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
            snprintf(sp[nsp++], 64, "::FFFF:%x:%x", w[6], w[7]);
            snprintf(sp[nsp++], 64, "0:0:0:0:0:ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        }
        for (int k = 0; k < nsp; k++) {
            size_t len = strlen(sp[k]);
            memcpy(text, sp[k], len);
            text[len] = '7'; /* not NUL-terminated: the parser reads len bytes */
            memset(back, 0x5a, sizeof back);
            cr_assert_eq(rl_addr_parse(text, len, back), 0, "\"%s\"", sp[k]);
            cr_assert_eq(memcmp(back, a, 16), 0, "\"%s\"", sp[k]);
            cr_assert_str_eq(rl_addr_format(back, buf), canon, "\"%s\"", sp[k]);
        }
    }
}
