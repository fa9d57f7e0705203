/* identity.c -- who is asking: the client address behind trusted proxies
 *
 * The peer (REMOTE_ADDR) is the client unless it is a trusted proxy. Only then is the
 * forwarded header read (X-Forwarded-For or RFC 7239 Forwarded, as configured), as a list of
 * hops, oldest first, each appended by the proxy that received the request from it. The walk
 * goes from the right (the hop our trusted peer saw) towards the left:
 *   - a trusted address is skipped (it is one of our proxies), and remembered;
 *   - the first untrusted address is the client;
 *   - an unusable element (not an address, "unknown", an obfuscated "_name", a syntax error)
 *     stops the walk: nothing to its left can be believed;
 *   - when the walk stops, or every hop is trusted, or RL_IDENTITY_HOPS_MAX hops were
 *     examined, the client is the last address accepted: the leftmost trusted hop examined,
 *     or the peer itself when there was none.
 * Hence only addresses written by trusted proxies are ever used, and a client that is not
 * behind a trusted proxy cannot influence its identity at all.
 *
 * Bounded work and memory: a header longer than RL_IDENTITY_HEADER_MAX is ignored (the peer
 * is used); the parse keeps the last RL_IDENTITY_HOPS_MAX hops in a ring on the stack.
 */
#include "fmacros.h"

#include "identity.h"

#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "http.h"

typedef struct id_hop {
    uint8_t addr[16];
    int ok; /* an address; 0 = unusable, the walk stops here */
} id_hop;

typedef struct id_hops {
    id_hop ring[RL_IDENTITY_HOPS_MAX];
    size_t total; /* elements seen; the last min(total, HOPS_MAX) are in ring */
} id_hops;

static void id_push(id_hops *h, const uint8_t *addr)
{
    id_hop *e = &h->ring[h->total % RL_IDENTITY_HOPS_MAX];
    e->ok = addr != NULL;
    if (addr != NULL)
        memcpy(e->addr, addr, 16);
    h->total++;
}

static int id_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int id_digits(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* A node "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" (port: digits, or an obfuscated
 * "_token" in Forwarded). bare_v6 allows an unbracketed IPv6 (X-Forwarded-For only). */
static int id_node(const char *s, size_t n, int bare_v6, uint8_t addr[16])
{
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return -1;
        size_t alen = (size_t)(close - s - 1), rest = n - alen - 2;
        const char *port = close + 1;
        if (memchr(s + 1, ':', alen) == NULL) /* brackets hold IPv6 only */
            return -1;
        if (rest > 0 &&
            !(port[0] == ':' && (id_digits(port + 1, rest - 1, 5) || (rest > 2 && port[1] == '_'))))
            return -1;
        return rl_addr_parse(s + 1, alen, addr);
    }
    const char *colon = memchr(s, ':', n);
    if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) == NULL) {
        /* exactly one ':': IPv4 with a port */
        size_t alen = (size_t)(colon - s), plen = n - alen - 1;
        if (!(id_digits(colon + 1, plen, 5) || (plen > 1 && colon[1] == '_')))
            return -1;
        if (memchr(s, '.', alen) == NULL)
            return -1;
        return rl_addr_parse(s, alen, addr);
    }
    if (colon != NULL && !bare_v6)
        return -1;
    return rl_addr_parse(s, n, addr);
}

/* X-Forwarded-For: "a, b, c". Empty elements are unusable. */
static void id_parse_xff(const char *v, id_hops *h)
{
    for (;;) {
        size_t n = strcspn(v, ",");
        const char *s = v, *e = v + n;
        uint8_t addr[16];
        while (s < e && id_ows(*s))
            s++;
        while (e > s && id_ows(e[-1]))
            e--;
        id_push(h, id_node(s, (size_t)(e - s), 1, addr) == 0 ? addr : NULL);
        if (v[n] == '\0')
            return;
        v += n + 1;
    }
}

/* Skips to just past the next ',' outside a quoted string, or to the end. */
static const char *id_resync(const char *p)
{
    int quoted = 0;
    for (; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == ',')
            return p + 1;
    }
    return p;
}

/* Reads one value (token or quoted-string) into buf (unquoted). Returns the position after
 * it, or NULL on a syntax error or a value longer than the buffer. */
static const char *id_value(const char *p, char *buf, size_t size, size_t *len)
{
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\\')
                p++;
            if (*p == '\0' || n + 1 >= size)
                return NULL;
            buf[n++] = *p;
        }
        p++;
    } else {
        for (; rl_http_tchar(*p) || *p == ':' || *p == '[' || *p == ']'; p++) {
            if (n + 1 >= size)
                return NULL;
            buf[n++] = *p;
        }
        if (n == 0)
            return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return p;
}

/* Forwarded: elements separated by ',', each "pair;pair", a pair token=value. The element's
 * address is its one for= node; an element without one, with two, or with a syntax error is
 * unusable. */
static void id_parse_forwarded(const char *p, id_hops *h)
{
    while (*p != '\0') {
        uint8_t addr[16];
        int fors = 0, good = 1;
        for (;;) {
            char name[16], val[RL_ADDR_TEXT_MAX + 16];
            size_t nn = 0, vn;
            while (id_ows(*p))
                p++;
            while (rl_http_tchar(*p) && nn + 1 < sizeof name)
                name[nn++] = *p++;
            name[nn] = '\0';
            if (nn == 0 || *p != '=') {
                good = 0;
                break;
            }
            const char *after = id_value(p + 1, val, sizeof val, &vn);
            if (after == NULL) {
                good = 0;
                break;
            }
            p = after;
            if (strcasecmp(name, "for") == 0 && (fors++ > 0 || id_node(val, vn, 0, addr) != 0))
                good = 0;
            while (id_ows(*p))
                p++;
            if (*p != ';')
                break;
            p++;
        }
        if (*p == ',') {
            p++;
        } else if (*p != '\0') {
            good = 0;
            p = id_resync(p);
        }
        id_push(h, good && fors == 1 ? addr : NULL);
    }
}

const char *rl_identity_header_name(const rl_identity_config *ic)
{
    return ic->header == RL_FORWARD_FORWARDED ? "forwarded" : "x-forwarded-for";
}

/* The client among the hops (see the header comment); peer when none is accepted. */
static void id_walk(const rl_identity_config *ic, const id_hops *h, uint8_t addr[16])
{
    size_t m = h->total < RL_IDENTITY_HOPS_MAX ? h->total : RL_IDENTITY_HOPS_MAX;
    for (size_t k = 0; k < m; k++) {
        const id_hop *e = &h->ring[(h->total - 1 - k) % RL_IDENTITY_HOPS_MAX];
        if (!e->ok)
            return;
        memcpy(addr, e->addr, 16);
        if (!rl_cidr_match(ic->trusted, ic->ntrusted, e->addr))
            return;
    }
}

int rl_identity_resolve(const rl_identity_config *ic, const char *remote, const char *fwd,
                        uint8_t addr[16], char text[RL_ADDR_TEXT_MAX])
{
    uint8_t masked[16];

    if (remote == NULL || rl_addr_parse(remote, strcspn(remote, "%"), addr) != 0)
        return -1;
    if (fwd != NULL && ic->ntrusted > 0 && rl_cidr_match(ic->trusted, ic->ntrusted, addr) &&
        strnlen(fwd, RL_IDENTITY_HEADER_MAX + 1) <= RL_IDENTITY_HEADER_MAX) {
        id_hops hops; /* about 1.3 KiB */
        hops.total = 0;
        if (ic->header == RL_FORWARD_FORWARDED)
            id_parse_forwarded(fwd, &hops);
        else
            id_parse_xff(fwd, &hops);
        id_walk(ic, &hops, addr);
    }
    memcpy(masked, addr, 16);
    if (!rl_addr_is_v4(masked))
        rl_addr_mask(masked, ic->ipv6_prefix);
    rl_addr_format(masked, text);
    return 0;
}

int rl_client_in(const rl_config *cfg, const rl_request *req, const rl_cidr *list, size_t n)
{
    const rl_identity_config *ic = &cfg->identity;
    const char *remote = req->remote_addr;
    uint8_t addr[16];
    char text[RL_ADDR_TEXT_MAX];

    if (remote == NULL ||
        rl_identity_resolve(ic, remote, rl_http_header(req, rl_identity_header_name(ic)), addr,
                            text) != 0)
        return 0;
    return rl_cidr_match(list, n, addr);
}
