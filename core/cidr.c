/* cidr.c -- IP addresses and address blocks (see cidr.h)
 *
 * A block is (16-byte address, bits) with every bit past `bits` zero, checked at parse time,
 * so matching is a masked compare of at most 16 bytes with no allocation. IPv4 blocks are
 * stored over the IPv4-mapped range: a.b.c.d/n is ::ffff:a.b.c.d/(96+n).
 *
 * Every request parses its client's address and formats it back (identity.c), so addresses
 * are written here by hand, as inet_ntop writes them: glibc's inet_ntop formats with sprintf,
 * which cost 1,750 instructions of a 4,000-instruction decision for an IPv4 client and 3,000
 * of 6,300 for an IPv6 one. The usual forms are also read by hand, each parser accepting
 * only a subset of what inet_pton accepts, with the same result: IPv4 as four decimal numbers
 * of 1 to 3 digits, no leading zero, at most 255, three dots, nothing else; IPv6 as hex
 * groups with at most one "::". Anything else (an IPv4 tail, a zone) goes to inet_pton.
 */
#include "fmacros.h"

#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t cidr_v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int rl_addr_is_v4(const uint8_t addr[16])
{
    return memcmp(addr, cidr_v4_prefix, sizeof cidr_v4_prefix) == 0;
}

/* a.b.c.d in exactly len bytes, the canonical form only (see the top of the file): 0 and
 * its 4 bytes, or -1 for anything else, which inet_pton then reads. */
static int cidr_v4_parse(const char *s, size_t len, uint8_t out[4])
{
    unsigned v = 0, digits = 0, k = 0;

    for (size_t i = 0; i < len; i++) {
        const unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d <= 9) {
            if (digits == 3 || (digits == 1 && v == 0)) /* a 4th digit, a leading zero */
                return -1;
            v = v * 10 + d;
            digits++;
        } else if (s[i] == '.' && digits > 0 && k < 3 && v <= 255) {
            out[k++] = (uint8_t)v;
            v = digits = 0;
        } else {
            return -1;
        }
    }
    if (digits == 0 || k != 3 || v > 255)
        return -1;
    out[3] = (uint8_t)v;
    return 0;
}

/* Hex groups in exactly len bytes: 8 groups of 1 to 4 hex digits separated by ':', or fewer
 * with one "::" standing for the missing zero groups (at least one). 0 and the 16 bytes, or
 * -1 for anything else (an IPv4 tail, a zone, a stray ':'), which inet_pton then reads. */
static int cidr_v6_parse(const char *s, size_t len, uint8_t out[16])
{
    /* 1 + a hex digit's value; 0 for any other byte. */
    static const uint8_t hex1[256] = {
        ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
        ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
        ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
        ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
    };
    unsigned g[8];
    int n = 0, gap = -1; /* groups read; where "::" stands, in groups */
    size_t i = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    }
    while (i < len) {
        const size_t start = i;
        unsigned v = 0, d;
        while (i < len && (d = hex1[(unsigned char)s[i]]) != 0) {
            v = v << 4 | (d - 1);
            i++;
        }
        if (i == start || i - start > 4 || n == 8)
            return -1;
        g[n++] = v;
        if (i == len)
            break;
        if (s[i] != ':' || i + 1 == len) /* not a separator, or a trailing single ':' */
            return -1;
        if (s[++i] == ':') {
            if (gap >= 0)
                return -1;
            gap = n;
            i++;
        }
    }
    if (gap < 0 ? n != 8 : n > 7)
        return -1;
    memset(out, 0, 16);
    for (int k = 0; k < n; k++) {
        const int at = gap < 0 || k < gap ? k : 8 - n + k;
        out[2 * at] = (uint8_t)(g[k] >> 8);
        out[2 * at + 1] = (uint8_t)g[k];
    }
    return 0;
}

/* Dotted decimal, as inet_ntop(AF_INET) writes it; buf has room for 16 bytes. */
static char *cidr_v4_format(const uint8_t a[4], char *buf)
{
    char *p = buf;

    for (int k = 0; k < 4; k++) {
        unsigned v = a[k];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = k < 3 ? '.' : '\0';
    }
    return buf;
}

/* As inet_ntop(AF_INET6) writes it (glibc, RFC 5952): lowercase hex words without leading
 * zeros, the longest run of two or more zero words (the first of equal ones) as "::", and
 * ::a.b.c.d (IPv4-compatible) with its last 32 bits dotted. */
static char *cidr_v6_format(const uint8_t a[16], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    int best = -1, bestlen = 0, cur = -1, curlen = 0;
    char *p = buf;

    for (int i = 0; i < 8; i++)
        w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    for (int i = 0; i <= 8; i++) {
        if (i < 8 && w[i] == 0) {
            if (cur < 0)
                cur = i, curlen = 0;
            curlen++;
        } else if (cur >= 0) {
            if (curlen > bestlen)
                best = cur, bestlen = curlen;
            cur = -1;
        }
    }
    if (bestlen < 2)
        best = -1;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + bestlen) {
            if (i == best)
                *p++ = ':';
            continue;
        }
        if (i != 0)
            *p++ = ':';
        if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && w[5] == 0xffff))) {
            cidr_v4_format(a + 12, p);
            return buf;
        }
        for (int shift = 12; shift >= 0; shift -= 4)
            if (w[i] >> shift != 0 || shift == 0)
                *p++ = hex[w[i] >> shift & 15];
    }
    if (best >= 0 && best + bestlen == 8)
        *p++ = ':';
    *p = '\0';
    return buf;
}

int rl_addr_parse(const char *s, size_t len, uint8_t addr[16])
{
    char buf[RL_ADDR_TEXT_MAX];
    struct in_addr v4;
    uint8_t quad[4], v6[16];

    if (len == 0 || len >= sizeof buf)
        return -1;
    /* addr is written only on success, as by inet_pton below */
    if (cidr_v4_parse(s, len, quad) == 0) {
        memcpy(addr, cidr_v4_prefix, sizeof cidr_v4_prefix);
        memcpy(addr + 12, quad, 4);
        return 0;
    }
    if (cidr_v6_parse(s, len, v6) == 0) {
        memcpy(addr, v6, 16);
        return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        memcpy(addr, cidr_v4_prefix, sizeof cidr_v4_prefix);
        memcpy(addr + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, addr) == 1 ? 0 : -1;
}

void rl_addr_mask(uint8_t addr[16], int bits)
{
    for (int i = 0; i < 16; i++) {
        int keep = bits - 8 * i; /* bits of this byte to keep */
        if (keep >= 8)
            continue;
        addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

char *rl_addr_format(const uint8_t addr[16], char *buf)
{
    _Static_assert(RL_ADDR_TEXT_MAX >= 16, "room for a.b.c.d");
    if (rl_addr_is_v4(addr))
        return cidr_v4_format(addr + 12, buf);
    return cidr_v6_format(addr, buf);
}

int rl_cidr_parse(const char *text, rl_cidr *out, char *why, size_t whysize)
{
    size_t len = strlen(text);
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : len;
    uint8_t masked[16];
    int v4, bits;

    if (len > RL_CIDR_TEXT_MAX || rl_addr_parse(text, alen, out->addr) != 0) {
        snprintf(why, whysize, "not an IPv4 or IPv6 address");
        return -1;
    }
    v4 = memchr(text, ':', alen) == NULL; /* written as IPv4 ("::ffff:a.b.c.d" is IPv6) */
    if (slash == NULL) {
        out->bits = 128;
        return 0;
    }
    /* Digits only: no sign, no spaces, no leading zeros beyond "0". */
    const char *d = slash + 1;
    size_t nd = strspn(d, "0123456789");
    int max = v4 ? 32 : 128;
    if (nd == 0 || d[nd] != '\0' || nd > 3 || (nd > 1 && d[0] == '0')) {
        snprintf(why, whysize, "invalid prefix length: expected 0..%d after '/'", max);
        return -1;
    }
    bits = 0;
    for (size_t i = 0; i < nd; i++)
        bits = bits * 10 + (d[i] - '0');
    if (bits > max) {
        snprintf(why, whysize, "prefix length %d is above %d", bits, max);
        return -1;
    }
    out->bits = v4 ? 96 + bits : bits;
    memcpy(masked, out->addr, 16);
    rl_addr_mask(masked, out->bits);
    if (memcmp(masked, out->addr, 16) != 0) {
        char net[RL_ADDR_TEXT_MAX];
        snprintf(why, whysize, "host bits set: the block is %s/%d", rl_addr_format(masked, net),
                 bits);
        return -1;
    }
    return 0;
}

int rl_cidr_match(const rl_cidr *list, size_t n, const uint8_t addr[16])
{
    for (size_t k = 0; k < n; k++) {
        int bits = list[k].bits, full = bits / 8, rest = bits % 8;
        if (memcmp(list[k].addr, addr, (size_t)full) != 0)
            continue;
        if (rest == 0 || ((list[k].addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0)
            return 1;
    }
    return 0;
}
