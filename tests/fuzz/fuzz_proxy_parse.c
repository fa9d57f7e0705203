/* fuzz_proxy_parse.c -- libFuzzer target: arbitrary bytes from "the backend" through the proxy's
 * answer parser (filter/proxy_parse.c) and its relay to the web server (filter/proxy_relay.c)
 *
 * Byte 0: bit 0 says the request was HEAD, the rest seeds the split. The other bytes are fed
 * twice, as recv() might return them: whole, and in pieces of sizes drawn from the seed (each
 * piece in a heap buffer of exactly its size, so a read past it is a sanitizer report). The
 * contract the proxy relies on:
 *   - both feedings agree on everything: the bytes taken, the outcome, the head lines and body
 *     bytes handed on, what the relay wrote for the web server (the split of recv() never
 *     changes the answer);
 *   - a refused answer stays refused (every later feed is -1) and says why and closes; a
 *     complete one takes no more bytes; the state is one the parser defines;
 *   - the body handed on is what the framing says: Content-Length bytes exactly when that
 *     frames a complete answer, none for HEAD, 204, 304;
 *   - every head line ends with LF and holds no control byte but HTAB (and its CR); what goes to the web server
 *     starts with "Status: NNN", its head lines end with CRLF, hold no other CR or LF and
 *     never a hop-by-hop header (nor one a Connection line names), nor a Content-Length
 *     beside a Transfer-Encoding; a Content-Length passed on is the body's length.
 * Never a crash, a sanitizer report or a leak. The filter's sources are compiled into this
 * target.
 */
#include "fmacros.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../filter/log.c"
#include "../../filter/proxy_headers.c"
#include "../../filter/proxy_parse.c"
#include "../../filter/proxy_relay.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_EXTRA "RateLimit: limit=1\r\n" /* the filter's own line, added to every head */


typedef struct fz_run {
    long used;   /* bytes taken in all, -1 when refused or stopped */
    long rc;     /* the last feed's result when negative, else 0 */
    int done, close, status, state;
    size_t head_len, body_len, out_len, cap;
    char *head, *body, *out;
} fz_run;

static fz_run *fz_cur;

static void fz_append(char **buf, size_t *len, const char *s, size_t n)
{
    if (*len + n > fz_cur->cap)
        abort(); /* more than the input could make */
    memcpy(*buf + *len, s, n);
    *len += n;
}

static int fz_header(void *ud, const char *line, size_t n)
{
    if (n == 0 || line[n - 1] != '\n' || memchr(line, '\0', n) != NULL)
        abort();
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t' && !(c == '\r' && i + 2 == n)) || c == 0x7f)
            abort(); /* a bare CR or LF, or another control byte, inside a head line */
    }
    fz_append(&fz_cur->head, &fz_cur->head_len, line, n);
    return proxy_relay_header(ud, line, n);
}

static int fz_body(void *ud, const char *buf, size_t n)
{
    fz_append(&fz_cur->body, &fz_cur->body_len, buf, n);
    return proxy_relay_body(ud, buf, n);
}

static int fz_write(void *ud, const char *buf, int n)
{
    (void)ud;
    if (n < 0)
        abort();
    fz_append(&fz_cur->out, &fz_cur->out_len, buf, (size_t)n);
    return 0;
}

/* Feeds in[0..n) in pieces; piece sizes from seed (0: whole). */
static void fz_feed(fz_run *r, const char *in, size_t n, unsigned seed, int head_request)
{
    static proxy_parse p; /* large */
    static proxy_xfer x;
    static const proxy_io io = {NULL, NULL, fz_write, NULL, 0};
    proxy_parse_cb cb = {fz_header, fz_body, &x};
    size_t at = 0;
    uint32_t rnd = seed * 2654435761u + 1;

    memset(r, 0, sizeof *r);
    r->cap = 2 * n + 4096; /* a bare LF becomes CRLF; plus the status and extra lines */
    r->head = malloc(r->cap);
    r->body = malloc(r->cap);
    r->out = malloc(r->cap);
    if (r->head == NULL || r->body == NULL || r->out == NULL)
        abort();
    fz_cur = r;
    memset(&x, 0, offsetof(proxy_xfer, head));
    x.io = &io;
    x.extra = FZ_EXTRA;
    x.extra_len = strlen(x.extra);
    x.head_request = head_request;
    proxy_parse_start(&p, head_request);
    while (at < n) {
        size_t k = n - at;
        if (seed != 0) {
            rnd = rnd * 1103515245u + 12345u;
            size_t want = (rnd >> 16) % ((rnd & 1) ? 8 : 300) + 1;
            if (want < k)
                k = want;
        }
        char *piece = malloc(k);
        if (piece == NULL)
            abort();
        memcpy(piece, in + at, k);
        long used = proxy_parse_feed(&p, piece, k, &cb);
        if (used < 0) {
            /* Refused (or stopped) stays so, whatever comes next. */
            if (used == -1 && (p.why == NULL || !p.close || p.state != PS_BAD ||
                               proxy_parse_feed(&p, piece, k, &cb) != -1 || proxy_parse_eof(&p)))
                abort();
            free(piece);
            r->rc = used;
            break;
        }
        free(piece);
        if ((size_t)used > k || (size_t)used < k && !proxy_parse_done(&p))
            abort();
        at += (size_t)used;
        if ((size_t)used < k)
            break;
    }
    if (p.state < PS_STATUS || p.state > PS_BAD)
        abort();
    r->used = r->rc < 0 ? -1 : (long)at; /* how far a refused feed went depends on the split */
    r->done = proxy_parse_done(&p);
    if (r->rc == 0 && r->done && proxy_parse_feed(&p, "x", 1, &cb) != 0)
        abort(); /* a complete answer takes nothing more */
    if (r->rc == 0 && !r->done && proxy_parse_eof(&p) != (p.state == PS_DONE))
        abort();
    r->close = p.close;
    r->status = p.status;
    r->state = p.state;
    /* The framing's body: exactly Content-Length bytes, none for HEAD, 204, 304. */
    if (r->rc == 0 && r->done && p.status >= 200) {
        if ((head_request || p.status == 204 || p.status == 304) && r->body_len != 0)
            abort();
        if (!head_request && p.status != 204 && p.status != 304 && !p.chunked &&
            !p.until_close && p.length >= 0 && r->body_len != (size_t)p.length)
            abort();
    }
    if (p.chunked && p.until_close)
        abort();
    if (p.length >= 0 && (p.chunked || p.until_close) && p.status >= 200 && p.state != PS_STATUS &&
        p.state != PS_HEADER && !p.close)
        abort(); /* Content-Length beside Transfer-Encoding: the connection is not kept */
}

/* The values of every Connection line of the backend's heads, comma-joined, in conn. */
static void fz_connection(const fz_run *r, char *conn, size_t size)
{
    size_t len = 0;

    conn[0] = '\0';
    for (const char *p = r->head, *end = r->head + r->head_len; p < end;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(lf - p);
        if (n > 11 && strncasecmp(p, "Connection:", 11) == 0 && len + n + 2 < size) {
            conn[len++] = ',';
            memcpy(conn + len, p + 11, n - 11);
            for (size_t i = len; i < len + n - 11; i++)
                if (conn[i] == '\r')
                    conn[i] = ' ';
            len += n - 11;
            conn[len] = '\0';
        }
        p = lf + 1;
    }
}

/* What went to the web server: "Status: NNN ...", CRLF head lines, no hop-by-hop one (nor
 * one a Connection line named), a Content-Length only when it is the body's length. */
static void fz_check_out(const fz_run *r, int head_request)
{
    const char *o = r->out, *end = r->out + r->out_len;
    int te = 0, cl = 0, n_ours = 0;
    char conn[4096];
    long long cl_value = -1;

    if (r->out_len == 0)
        return;
    fz_connection(r, conn, sizeof conn);
    if (r->out_len < 12 || memcmp(o, "Status: ", 8) != 0)
        abort();
    for (int i = 8; i < 11; i++)
        if (o[i] < '0' || o[i] > '9')
            abort();
    for (const char *p = o; p < end;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (lf == NULL || lf == p || lf[-1] != '\r')
            abort(); /* a head line must end with CRLF */
        size_t len = (size_t)(lf - p) - 1;
        if (memchr(p, '\r', len) != NULL || memchr(p, '\0', len) != NULL)
            abort();
        if (len == 0)
            break; /* the blank line: the body follows */
        size_t name = strcspn(p, ":");
        int ours = len + 2 == strlen(FZ_EXTRA) && memcmp(p, FZ_EXTRA, len) == 0;
        if (p != o && !ours && (name >= len || proxy_hop_by_hop(p, name, conn)))
            abort(); /* (our own lines stay, whatever the backend's Connection names) */
        if (ours)
            n_ours++;
        te |= name == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0;
        if (name == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            cl = 1;
            const char *v = p + 15, *e = p + len;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            cl_value = strtoll(v, NULL, 10);
            if (v == e)
                abort();
            for (; v < e; v++)
                if (*v < '0' || *v > '9')
                    abort(); /* one number, as the parser read it */
        }
        p = lf + 1;
    }
    if (te && cl)
        abort();
    if (n_ours != 1)
        abort();
    if (cl && r->rc == 0 && r->done && !head_request && r->status != 204 && r->status != 304 &&
        cl_value != (long long)r->body_len)
        abort(); /* the web server would frame the body otherwise */
}

static int fz_same(const fz_run *a, const fz_run *b)
{
    return a->used == b->used && a->rc == b->rc && a->done == b->done && a->close == b->close &&
           a->status == b->status && a->state == b->state && a->head_len == b->head_len &&
           a->body_len == b->body_len && a->out_len == b->out_len &&
           memcmp(a->head, b->head, a->head_len) == 0 &&
           memcmp(a->body, b->body, a->body_len) == 0 && memcmp(a->out, b->out, a->out_len) == 0;
}

static void fz_free(fz_run *r)
{
    free(r->head);
    free(r->body);
    free(r->out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run whole, split;

    if (size < 1 || size > 300000)
        return 0;
    int head_request = data[0] & 1;
    unsigned seed = (unsigned)(data[0] >> 1) + 1;
    fz_feed(&whole, (const char *)data + 1, size - 1, 0, head_request);
    fz_check_out(&whole, head_request);
    fz_feed(&split, (const char *)data + 1, size - 1, seed, head_request);
    fz_check_out(&split, head_request);
    if (!fz_same(&whole, &split))
        abort();
    fz_free(&whole);
    fz_free(&split);
    return 0;
}
