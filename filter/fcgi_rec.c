/* fcgi_rec.c -- the FastCGI 1.0 wire format (see fcgi_rec.h)
 *
 * Invariant of the parser: hdr_got < FCGI_HEADER_LEN outside a record (collecting the next
 * header); inside one (mid_record), content_left then pad_left count down to 0, then END.
 */
#include "../core/fmacros.h"

#include "fcgi_rec.h"

#include <stdio.h>
#include <string.h>

size_t fcgi_parse(fcgi_parser *p, const uint8_t *buf, size_t n, fcgi_ev *ev, const uint8_t **data,
                  size_t *len)
{
    size_t used = 0;

    *ev = FCGI_EV_NONE;
    if (!p->mid_record) {
        if (p->hdr_got == 0 && n >= FCGI_HEADER_LEN) { /* the usual case: a whole header */
            memcpy(p->hdr, buf, FCGI_HEADER_LEN);
            p->hdr_got = FCGI_HEADER_LEN;
            used = FCGI_HEADER_LEN;
        }
        while (p->hdr_got < FCGI_HEADER_LEN && used < n)
            p->hdr[p->hdr_got++] = buf[used++];
        if (p->hdr_got < FCGI_HEADER_LEN)
            return used;
        if (p->hdr[0] != FCGI_VERSION_1) {
            *ev = FCGI_EV_BAD;
            return used;
        }
        p->type = p->hdr[1];
        p->id = (unsigned)p->hdr[2] << 8 | p->hdr[3];
        p->content_len = p->content_left = (size_t)p->hdr[4] << 8 | p->hdr[5];
        p->pad_left = p->hdr[6];
        p->mid_record = 1;
        *ev = FCGI_EV_HEADER;
        return used;
    }
    if (p->content_left > 0) {
        size_t take = n < p->content_left ? n : p->content_left;
        if (take == 0)
            return 0;
        p->content_left -= take;
        *data = buf;
        *len = take;
        *ev = FCGI_EV_CONTENT;
        return take;
    }
    while (p->pad_left > 0 && used < n) {
        p->pad_left--;
        used++;
    }
    if (p->pad_left == 0) {
        p->mid_record = 0;
        p->hdr_got = 0;
        *ev = FCGI_EV_END;
    }
    return used;
}

void fcgi_header(uint8_t out[FCGI_HEADER_LEN], int type, unsigned id, size_t content_len)
{
    out[0] = FCGI_VERSION_1;
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(id >> 8);
    out[3] = (uint8_t)id;
    out[4] = (uint8_t)(content_len >> 8);
    out[5] = (uint8_t)content_len;
    out[6] = 0;
    out[7] = 0;
}

void fcgi_end_request(uint8_t out[16], unsigned id, uint32_t app_status, int protocol_status)
{
    fcgi_header(out, FCGI_END_REQUEST, id, 8);
    out[8] = (uint8_t)(app_status >> 24);
    out[9] = (uint8_t)(app_status >> 16);
    out[10] = (uint8_t)(app_status >> 8);
    out[11] = (uint8_t)app_status;
    out[12] = (uint8_t)protocol_status;
    memset(out + 13, 0, 3);
}

void fcgi_unknown_type(uint8_t out[16], int type)
{
    fcgi_header(out, FCGI_UNKNOWN_TYPE, 0, 8);
    out[8] = (uint8_t)type;
    memset(out + 9, 0, 7);
}

/* A length: one byte below 128, else four with the top bit set. */
static size_t fcgi_len(const uint8_t *buf, size_t n, size_t *len)
{
    if (n < 1)
        return 0;
    if (buf[0] < 0x80) {
        *len = buf[0];
        return 1;
    }
    if (n < 4)
        return 0;
    *len = (size_t)(buf[0] & 0x7f) << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3];
    return 4;
}

size_t fcgi_pair(const uint8_t *buf, size_t n, const uint8_t **name, size_t *nlen,
                 const uint8_t **value, size_t *vlen)
{
    size_t a = fcgi_len(buf, n, nlen), b;

    if (a == 0)
        return 0;
    b = fcgi_len(buf + a, n - a, vlen);
    if (b == 0 || *nlen > n - a - b || *vlen > n - a - b - *nlen)
        return 0;
    *name = buf + a + b;
    *value = *name + *nlen;
    return a + b + *nlen + *vlen;
}

/* Appends the pair name=value (both short) at out[*at], when it fits. */
static void fcgi_put_pair(uint8_t *out, size_t size, size_t *at, const char *name,
                          const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    if (nl > 127 || vl > 127 || *at + 2 + nl + vl > size)
        return;
    out[(*at)++] = (uint8_t)nl;
    out[(*at)++] = (uint8_t)vl;
    memcpy(out + *at, name, nl);
    memcpy(out + *at + nl, value, vl);
    *at += nl + vl;
}

size_t fcgi_values_result(uint8_t *out, size_t size, const uint8_t *q, size_t qn, int max_conns)
{
    char conns[16];
    size_t at = FCGI_HEADER_LEN, used;
    const uint8_t *name, *value;
    size_t nlen, vlen;

    if (size < FCGI_HEADER_LEN)
        return 0;
    snprintf(conns, sizeof conns, "%d", max_conns);
    while (qn > 0 && (used = fcgi_pair(q, qn, &name, &nlen, &value, &vlen)) > 0) {
        if (nlen == 14 && memcmp(name, "FCGI_MAX_CONNS", 14) == 0)
            fcgi_put_pair(out, size, &at, "FCGI_MAX_CONNS", conns);
        else if (nlen == 13 && memcmp(name, "FCGI_MAX_REQS", 13) == 0)
            fcgi_put_pair(out, size, &at, "FCGI_MAX_REQS", conns);
        else if (nlen == 15 && memcmp(name, "FCGI_MPXS_CONNS", 15) == 0)
            fcgi_put_pair(out, size, &at, "FCGI_MPXS_CONNS", "0");
        q += used;
        qn -= used;
    }
    fcgi_header(out, FCGI_GET_VALUES_RESULT, 0, at - FCGI_HEADER_LEN);
    return at;
}
