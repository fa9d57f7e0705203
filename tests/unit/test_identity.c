/* test_identity.c -- the client behind trusted proxies: X-Forwarded-For, Forwarded, IPv6
 * prefixes, and hostile headers (huge, malformed, deep), table-driven */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "identity.h"
#include "leakcheck.h"

TestSuite(identity, .fini = rl_test_leak_check);

static rl_cidr trusted[3];

static rl_identity_config mkconfig(rl_forward_header h, int prefix)
{
    static const char *const blocks[] = {"127.0.0.1/32", "10.0.0.0/8", "2001:db8:f::/48"};
    char why[128];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rl_cidr_parse(blocks[i], &trusted[i], why, sizeof why), 0);
    rl_identity_config ic = {.trusted = trusted, .ntrusted = 3, .header = h, .ipv6_prefix = prefix};
    return ic;
}

static const char *resolve(const rl_identity_config *ic, const char *remote, const char *fwd)
{
    static char text[RL_ADDR_TEXT_MAX];
    uint8_t addr[16];
    if (rl_identity_resolve(ic, remote, fwd, addr, text) != 0)
        return "(error)";
    return text;
}

typedef struct id_case {
    const char *remote, *fwd, *want;
} id_case;

static void run(const rl_identity_config *ic, const id_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(resolve(ic, t[i].remote, t[i].fwd), t[i].want, "case %zu: %s | %s", i,
                         t[i].remote, t[i].fwd ? t[i].fwd : "(none)");
}

Test(identity, x_forwarded_for)
{
    rl_identity_config ic = mkconfig(RL_FORWARD_XFF, 64);
    static const id_case t[] = {
        /* not from a trusted proxy: the header is never read */
        {"203.0.113.1", "198.51.100.1", "203.0.113.1"},
        {"203.0.113.1", NULL, "203.0.113.1"},
        /* from a trusted proxy: rightmost untrusted */
        {"127.0.0.1", "198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2, 10.9.9.9", "198.51.100.1"},
        {"127.0.0.1", "1.1.1.1,198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", " \t198.51.100.1 \t", "198.51.100.1"},
        /* every hop trusted: the leftmost */
        {"127.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"},
        /* no header, empty header: the peer */
        {"127.0.0.1", NULL, "127.0.0.1"},
        {"127.0.0.1", "", "127.0.0.1"},
        /* malformed elements stop the walk: the last accepted address */
        {"127.0.0.1", "garbage", "127.0.0.1"},
        {"127.0.0.1", "198.51.100.1, garbage", "127.0.0.1"},
        {"127.0.0.1", "198.51.100.1, garbage, 10.0.0.2", "10.0.0.2"},
        {"127.0.0.1", "198.51.100.1,, 10.0.0.2", "10.0.0.2"},
        {"127.0.0.1", "unknown", "127.0.0.1"},
        {"127.0.0.1", "198.51.100.1 10.0.0.2", "127.0.0.1"},
        {"127.0.0.1", "fe80::1%eth0", "127.0.0.1"},
        {"127.0.0.1", "1.2.3.4/8", "127.0.0.1"},
        {"127.0.0.1", "999.1.1.1", "127.0.0.1"},
        /* ports and brackets */
        {"127.0.0.1", "198.51.100.1:4711", "198.51.100.1"},
        {"127.0.0.1", "[2001:db8::1]:4711", "2001:db8::"},
        {"127.0.0.1", "[2001:db8::1]", "2001:db8::"},
        {"127.0.0.1", "2001:db8::1", "2001:db8::"},
        {"127.0.0.1", "198.51.100.1:", "127.0.0.1"},
        {"127.0.0.1", "198.51.100.1:123456", "127.0.0.1"},
        {"127.0.0.1", "[198.51.100.1]", "127.0.0.1"},
        /* IPv4-mapped is IPv4, in the header and as the peer */
        {"127.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"},
        {"::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"},
        {"::ffff:203.0.113.1", NULL, "203.0.113.1"},
        /* IPv6 peers, trusted and not, zone ignored */
        {"2001:db8:f::5", "198.51.100.1", "198.51.100.1"},
        {"2001:db8:1:2:3:4:5:6", "198.51.100.1", "2001:db8:1:2::"},
        {"fe80::1%eth0", NULL, "fe80::"},
        /* not an address at all */
        {"not-an-address", NULL, "(error)"},
        {"", NULL, "(error)"},
        {"1.2.3.4:80", NULL, "(error)"},
    };
    run(&ic, t, sizeof t / sizeof t[0]);
    cr_expect_str_eq(resolve(&ic, NULL, NULL), "(error)");
}

Test(identity, forwarded_rfc7239)
{
    rl_identity_config ic = mkconfig(RL_FORWARD_FORWARDED, 64);
    static const id_case t[] = {
        {"127.0.0.1", "for=198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "For=198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "for=\"198.51.100.1\"", "198.51.100.1"},
        {"127.0.0.1", "for=\"198.51.100.1:8080\"", "198.51.100.1"},
        {"127.0.0.1", "for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::"},
        {"127.0.0.1", "for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::"},
        {"127.0.0.1", "for=192.0.2.43, for=198.51.100.17", "198.51.100.17"},
        {"127.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"},
        {"127.0.0.1", "proto=https; for=192.0.2.60 ;host=\"a,b\"", "192.0.2.60"},
        {"127.0.0.1", "for=192.0.2.43,for=\"[2001:db8::1]\", for=10.0.0.1", "2001:db8::"},
        /* a quoted comma is not a separator */
        {"127.0.0.1", "for=192.0.2.43;host=\"x, for=6.6.6.6\"", "192.0.2.43"},
        {"127.0.0.1", "for=192.0.2.43, host=\"x\\\", for=6.6.6.6\";for=198.51.100.2",
         "198.51.100.2"},
        /* obfuscated, unknown, missing, duplicated: unusable, the walk stops */
        {"127.0.0.1", "for=_hidden", "127.0.0.1"},
        {"127.0.0.1", "for=unknown", "127.0.0.1"},
        {"127.0.0.1", "for=198.51.100.1, for=unknown", "127.0.0.1"},
        {"127.0.0.1", "for=198.51.100.1, proto=http", "127.0.0.1"},
        {"127.0.0.1", "for=198.51.100.1, for=10.0.0.2;for=10.0.0.3", "127.0.0.1"},
        {"127.0.0.1", "for=198.51.100.1, for=_hidden, for=10.0.0.2", "10.0.0.2"},
        /* an obfuscated port is fine */
        {"127.0.0.1", "for=\"198.51.100.1:_p1\"", "198.51.100.1"},
        {"127.0.0.1", "for=\"[2001:db8::1]:_p1\"", "2001:db8::"},
        /* syntax errors */
        {"127.0.0.1", "for=", "127.0.0.1"},
        {"127.0.0.1", "for", "127.0.0.1"},
        {"127.0.0.1", "=198.51.100.1", "127.0.0.1"},
        {"127.0.0.1", "for=\"198.51.100.1", "127.0.0.1"},
        {"127.0.0.1", "for=2001:db8::1", "127.0.0.1"}, /* IPv6 needs brackets and quotes */
        {"127.0.0.1", "for=198.51.100.1 junk", "127.0.0.1"},
        {"127.0.0.1", "for=198.51.100.1, junk junk, for=10.0.0.9", "10.0.0.9"},
        {"127.0.0.1", "for=\"[198.51.100.1]\"", "127.0.0.1"},
        {"127.0.0.1", "for=\"[2001:db8::1\"", "127.0.0.1"},
        {"127.0.0.1", ",,,", "127.0.0.1"},
        /* all trusted: the leftmost */
        {"127.0.0.1", "for=10.1.1.1, for=10.2.2.2", "10.1.1.1"},
        /* untrusted peer: ignored */
        {"203.0.113.1", "for=198.51.100.1", "203.0.113.1"},
    };
    run(&ic, t, sizeof t / sizeof t[0]);
}

Test(identity, ipv6_prefixes)
{
    static const struct {
        int prefix;
        const char *remote, *want;
    } t[] = {
        {64, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
        {128, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"},
        {48, "2001:db8:1:2:3:4:5:6", "2001:db8:1::"},
        {56, "2001:db8:1:2ff:3:4:5:6", "2001:db8:1:200::"},
        {1, "ffff::1", "8000::"},
        {64, "203.0.113.5", "203.0.113.5"}, /* IPv4 is never masked */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rl_identity_config ic = {.ipv6_prefix = t[i].prefix};
        cr_expect_str_eq(resolve(&ic, t[i].remote, NULL), t[i].want, "/%d %s", t[i].prefix,
                         t[i].remote);
    }
}

/* Hostile headers: huge, deep, binary. Never a crash, never a client-chosen key. */
Test(identity, hostile_headers)
{
    rl_identity_config xff = mkconfig(RL_FORWARD_XFF, 64);
    rl_identity_config fwd = mkconfig(RL_FORWARD_FORWARDED, 64);
    size_t big = 1 << 20;
    char *h = malloc(big + 1);
    cr_assert_not_null(h);

    /* 1 MiB of one address repeated: longer than RL_IDENTITY_HEADER_MAX, ignored. */
    size_t n = 0;
    while (n + 14 < big) {
        memcpy(h + n, "198.51.100.1, ", 14);
        n += 14;
    }
    h[n] = '\0';
    cr_expect_str_eq(resolve(&xff, "127.0.0.1", h), "127.0.0.1");

    /* Exactly at the limit, all trusted hops but the leftmost: only 64 hops are examined,
     * so the answer is the 64th from the right, a trusted proxy, not the client's choice. */
    n = 0;
    n += (size_t)sprintf(h, "6.6.6.6");
    while (n + 10 < RL_IDENTITY_HEADER_MAX)
        n += (size_t)sprintf(h + n, ", 10.0.0.1");
    cr_expect_str_eq(resolve(&xff, "127.0.0.1", h), "10.0.0.1");

    /* Fewer hops than the limit: the leftmost untrusted is found. */
    n = (size_t)sprintf(h, "6.6.6.6");
    for (int i = 0; i < RL_IDENTITY_HOPS_MAX - 1; i++)
        n += (size_t)sprintf(h + n, ", 10.0.0.1");
    cr_expect_str_eq(resolve(&xff, "127.0.0.1", h), "6.6.6.6");
    n += (size_t)sprintf(h + n, ", 10.0.0.1"); /* one more: 65 hops, 64 examined */
    cr_expect_str_eq(resolve(&xff, "127.0.0.1", h), "10.0.0.1");

    /* Unterminated quote over 8 KiB, and a run of backslashes. */
    memset(h, '"', RL_IDENTITY_HEADER_MAX);
    h[RL_IDENTITY_HEADER_MAX] = '\0';
    cr_expect_str_eq(resolve(&fwd, "127.0.0.1", h), "127.0.0.1");
    memcpy(h, "for=\"", 5);
    memset(h + 5, '\\', 100);
    h[105] = '\0';
    cr_expect_str_eq(resolve(&fwd, "127.0.0.1", h), "127.0.0.1");
    /* Every byte value, once. */
    for (int i = 1; i < 256; i++)
        h[i - 1] = (char)i;
    h[255] = '\0';
    cr_expect_str_eq(resolve(&fwd, "127.0.0.1", h), "127.0.0.1");
    cr_expect_str_eq(resolve(&xff, "127.0.0.1", h), "127.0.0.1");
    /* A long token name and a long value. */
    memset(h, 'f', 4000);
    strcpy(h + 4000, "=1.2.3.4");
    cr_expect_str_eq(resolve(&fwd, "127.0.0.1", h), "127.0.0.1");
    strcpy(h, "for=\"");
    memset(h + 5, '1', 4000);
    strcpy(h + 4005, "\"");
    cr_expect_str_eq(resolve(&fwd, "127.0.0.1", h), "127.0.0.1");
    free(h);
}
