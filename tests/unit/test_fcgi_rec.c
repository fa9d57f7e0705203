/* test_fcgi_rec.c -- the FastCGI record codec (filter/fcgi_rec.c): the streaming parser fed one
 * byte at a time and whole, padding, bad versions, name-value pairs (1- and 4-byte lengths,
 * cut or lying lengths) and the records the application writes
 *
 * The daemon's behaviour on the wire is shown by test_fastcgi_conns.sh; here, the parser's
 * events for byte streams built by hand.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../filter/fcgi_rec.h"
#include "leakcheck.h"

TestSuite(fcgi_rec, .fini = rl_test_leak_check);

/* Feeds buf in pieces of `step` bytes; records what the parser says as text:
 * "H<type>/<id>/<len> C<bytes> E" ... ("B" for a bad version). */
static void run(const uint8_t *buf, size_t n, size_t step, char *out, size_t size)
{
    fcgi_parser p;
    size_t at = 0, o = 0;

    memset(&p, 0, sizeof p);
    out[0] = '\0';
    while (at <= n) {
        size_t avail = n - at < step ? n - at : step;
        const uint8_t *data = NULL;
        size_t len = 0;
        fcgi_ev ev;
        size_t used = fcgi_parse(&p, buf + at, avail, &ev, &data, &len);
        at += used;
        if (ev == FCGI_EV_HEADER)
            o += (size_t)snprintf(out + o, size - o, "H%d/%u/%zu ", p.type, p.id, p.content_len);
        else if (ev == FCGI_EV_CONTENT)
            o += (size_t)snprintf(out + o, size - o, "C%.*s ", (int)len, (const char *)data);
        else if (ev == FCGI_EV_END)
            o += (size_t)snprintf(out + o, size - o, "E ");
        else if (ev == FCGI_EV_BAD) {
            o += (size_t)snprintf(out + o, size - o, "B");
            return;
        } else if (at == n)
            return;
    }
}

Test(fcgi_rec, records_in_any_pieces)
{
    /* PARAMS id 1 "abc" padded by 5, an empty STDIN id 1, GET_VALUES id 0 "xy". */
    static const uint8_t s[] = {1, 4, 0, 1, 0, 3, 5, 0, 'a', 'b', 'c', 0,   0,   0, 0, 0,
                                1, 5, 0, 1, 0, 0, 0, 0, 1,   9,   0, 0, 0, 2, 0, 0, 'x', 'y'};
    char whole[256], bytes[256];

    run(s, sizeof s, sizeof s, whole, sizeof whole);
    cr_expect_str_eq(whole, "H4/1/3 Cabc E H5/1/0 E H9/0/2 Cxy E ");
    run(s, sizeof s, 1, bytes, sizeof bytes);
    cr_expect_str_eq(bytes, "H4/1/3 Ca Cb Cc E H5/1/0 E H9/0/2 Cx Cy E ");
}

Test(fcgi_rec, bad_version)
{
    static const uint8_t s[] = {2, 1, 0, 1, 0, 8, 0, 0};
    char out[64];

    run(s, sizeof s, 3, out, sizeof out);
    cr_expect_str_eq(out, "B");
}

Test(fcgi_rec, pairs)
{
    uint8_t buf[300];
    const uint8_t *name, *value;
    size_t nlen, vlen;

    /* "AB" = 200 bytes: the value's length in four bytes. */
    buf[0] = 2;
    buf[1] = 0x80;
    buf[2] = 0;
    buf[3] = 0;
    buf[4] = 200;
    memcpy(buf + 5, "AB", 2);
    memset(buf + 7, 'v', 200);
    cr_assert_eq(fcgi_pair(buf, 207, &name, &nlen, &value, &vlen), 207);
    cr_expect_eq(nlen, 2);
    cr_expect_eq(vlen, 200);
    cr_expect(memcmp(name, "AB", 2) == 0);
    cr_expect_eq(fcgi_pair(buf, 206, &name, &nlen, &value, &vlen), 0, "cut value");
    cr_expect_eq(fcgi_pair(buf, 3, &name, &nlen, &value, &vlen), 0, "cut length");
    buf[1] = 0xff; /* a length of 2^31-ish: refused, not overflowed */
    cr_expect_eq(fcgi_pair(buf, 207, &name, &nlen, &value, &vlen), 0);
}

Test(fcgi_rec, application_records)
{
    uint8_t rec[16], out[256];
    /* A query for MPXS_CONNS, MAX_CONNS and a name we do not know. */
    static const uint8_t q[] = {15, 0, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O',
                                'N', 'N', 'S', 3,   0,   'F', 'O', 'O', 14,  0,   'F', 'C', 'G',
                                'I', '_', 'M', 'A', 'X', '_', 'C', 'O', 'N', 'N', 'S'};

    fcgi_end_request(rec, 0x1234, 7, FCGI_CANT_MPX_CONN);
    cr_expect(memcmp(rec, "\1\3\x12\x34\0\x08\0\0\0\0\0\7\1\0\0\0", 16) == 0);
    fcgi_unknown_type(rec, 99);
    cr_expect(memcmp(rec, "\1\13\0\0\0\x08\0\0\x63\0\0\0\0\0\0\0", 16) == 0);
    size_t n = fcgi_values_result(out, sizeof out, q, sizeof q, 256);
    cr_assert_eq(n, 8 + 2 + 15 + 1 + 2 + 14 + 3);
    cr_expect_eq(out[1], FCGI_GET_VALUES_RESULT);
    cr_expect(memcmp(out + 8, "\x0f\x01" "FCGI_MPXS_CONNS0", 18) == 0);
    cr_expect(memcmp(out + 26, "\x0e\x03" "FCGI_MAX_CONNS256", 19) == 0);
}
