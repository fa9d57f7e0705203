/* fuzz_fcgi.c -- libFuzzer target: the FastCGI connection (filter/fcgi_conn.c, fcgi_rec.c) on
 * arbitrary bytes from the web server
 *
 * The input is what a peer sends on one connection, given to the connection in pieces of
 * every size up to its read buffer (the first byte chooses the piece size). Each request the
 * connection finds ready gets its parameters decoded and an answer of a few bytes, as the
 * server loop does. Contract: it never reads or writes out of bounds, never leaks; a ready
 * request's parameters are NULL or a NULL-terminated array whose first entry is FCGI_ROLE
 * and every entry holds a '='; everything it writes is a sequence of whole version-1 records
 * of the types an application sends. The filter's sources are compiled into this target.
 * Then the next connection, which reuses the one just closed (kept with its buffers), is given
 * one whole authorizer request: it must be ready with exactly that request's parameters,
 * whatever state the input left the first one in.
 */
#include "fmacros.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../filter/fcgi_conn.c"
#include "../../filter/fcgi_rec.c"
#include "../../filter/grow.c"
#include "../../filter/log.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The output so far must be whole records an application sends. */
static void fuzz_check_output(const fcgi_conn *c)
{
    size_t at = c->ooff;

    while (at < c->olen) {
        const uint8_t *h = c->obuf + at;
        if (c->olen - at < FCGI_HEADER_LEN)
            abort();
        size_t len = (size_t)h[4] << 8 | h[5];
        if (h[0] != FCGI_VERSION_1 ||
            (h[1] != FCGI_STDOUT && h[1] != FCGI_END_REQUEST && h[1] != FCGI_GET_VALUES_RESULT &&
             h[1] != FCGI_UNKNOWN_TYPE) ||
            c->olen - at < FCGI_HEADER_LEN + len + h[6])
            abort();
        at += FCGI_HEADER_LEN + len + h[6];
    }
}

/* The connection after the fuzzed one (the kept one, reused): one authorizer request, id 1,
 * REMOTE_ADDR only, must be ready with exactly its own parameters. */
static void fuzz_next_connection(void)
{
    static const uint8_t req[] = {1,   FCGI_BEGIN_REQUEST,
                                  0,   1,
                                  0,   8,
                                  0,   0,
                                  0,   FCGI_AUTHORIZER,
                                  0,   0,
                                  0,   0,
                                  0,   0,
                                  1,   FCGI_PARAMS,
                                  0,   1,
                                  0,   22,
                                  0,   0,
                                  11,  9,
                                  'R', 'E',
                                  'M', 'O',
                                  'T', 'E',
                                  '_', 'A',
                                  'D', 'D',
                                  'R', '1',
                                  '9', '2',
                                  '.', '0',
                                  '.', '2',
                                  '.', '1',
                                  1,   FCGI_PARAMS,
                                  0,   1,
                                  0,   0,
                                  0,   0};
    fcgi_conn *c = fcgi_conn_new(-1, 1000, 1000, 16, 0);

    if (c == NULL)
        return;
    memcpy(c->rbuf, req, sizeof req);
    c->rlen = sizeof req;
    if (fcgi_conn_step(c) != FCGI_STEP_READY || c->id != 1 || c->role != FCGI_AUTHORIZER)
        abort();
    char **params = fcgi_conn_params(c);
    if (params == NULL || strcmp(params[0], "FCGI_ROLE=AUTHORIZER") != 0 || params[1] == NULL ||
        strcmp(params[1], "REMOTE_ADDR=192.0.2.1") != 0 || params[2] != NULL)
        abort();
    if (c->olen != c->ooff) /* nothing owed to the last connection's peer */
        abort();
    fcgi_conn_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fcgi_conn *c;
    size_t piece, off = 1;

    if (size < 1)
        return 0;
    piece = 1 + data[0] * 64u;
    c = fcgi_conn_new(-1, 1000, 1000, 16, 0);
    if (c == NULL)
        return 0;
    for (;;) {
        /* The next piece "arrives" as the server's fcgi_conn_fill() would: appended after what
         * the parser has not used yet (a small body is kept whole before its answer). */
        size_t before = c->roff, room;
        if (c->roff == c->rlen)
            c->roff = c->rlen = 0;
        room = FCGI_CONN_RBUF - c->rlen;
        if (off < size && room > 0) {
            size_t n = size - off < piece ? size - off : piece;
            if (n > room)
                n = room;
            memcpy(c->rbuf + c->rlen, data + off, n);
            c->rlen += n;
            off += n;
            before = SIZE_MAX; /* progress */
        }
        fcgi_step st = fcgi_conn_step(c);
        if (st == FCGI_STEP_READY) {
            char **params = fcgi_conn_params(c);
            if (params != NULL) {
                if (params[0] == NULL || strncmp(params[0], "FCGI_ROLE=", 10) != 0)
                    abort();
                for (char **p = params; *p != NULL; p++)
                    if (strchr(*p, '=') == NULL)
                        abort();
            }
            if (fcgi_conn_write_stdout(c, "Status: 200\r\n\r\n", 15) != 0)
                abort();
            st = fcgi_conn_end(c, 1);
        }
        fuzz_check_output(c);
        c->ooff = c->olen = 0; /* as if sent */
        c->open_rec = SIZE_MAX;
        if (st == FCGI_STEP_CLOSE)
            break;
        /* Nothing new arrived and the parser took nothing: it waits for bytes that will never
         * come (the input ended), as a connection would until its read deadline. */
        if (st == FCGI_STEP_MORE && before != SIZE_MAX && c->roff == before)
            break;
    }
    fcgi_conn_free(c);
    fuzz_next_connection();
    fcgi_conn_free_kept();
    return 0;
}
