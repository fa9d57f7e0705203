/* proxy_relay.c -- move the bytes of one exchange between the web server and proxy.c
 *
 *   request body    proxy_relay_read <- proxy_io.read (fcgi_conn_read_stdin), never more than
 *                   announced
 *   response head   proxy_relay_header, from the parser: the status line becomes "Status:
 *                   NNN reason"; the header lines of the final response (1xx ones are
 *                   skipped) are kept until the blank line, then sent minus hop-by-hop ones
 *                   (and minus a Content-Length beside a Transfer-Encoding), plus the extra
 *                   lines
 *   response body   proxy_relay_body -> proxy_io.write (fcgi_conn_write_stdout), as it arrives
 *                   (a slice of proxy.c's receive buffer: no copy of its own)
 *   idle timeout    proxy_relay_read notes the time of its bytes in last_ms (proxy.c notes
 *                   the backend's); proxy.c abandons the exchange when no byte moved for
 *                   timeout_ms
 *
 * The head is held back until it is complete because the Connection header, which may come
 * last, names more headers to drop.
 */
#include "../core/fmacros.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "proxy_headers.h"
#include "proxy_int.h"
#include "clock.h"

long proxy_relay_read(proxy_xfer *x, char *buf, size_t want)
{
    int got;

    if (x->body_left == 0)
        return 0;
    if (x->body_left > 0 && (int64_t)want > x->body_left)
        want = (size_t)x->body_left;
    if (want > (1u << 30))
        want = 1u << 30;
    got = x->io->read(x->io->ud, buf, (int)want);
    if (got < 0 || (got == 0 && x->body_left > 0)) {
        x->read_failed = 1; /* the client went away in the middle of its body */
        return -1;
    }
    x->body_read += got;
    if (x->body_left > 0)
        x->body_left -= got;
    else if (got == 0)
        x->body_left = 0;
    x->last_ms = rl_clock_mono_ms();
    return got;
}

/* Writes the kept head, filtered, with the extra lines and the blank line. Returns 0, -1 when
 * the web server went away (x->write_failed), -2 when the head cannot be filtered (logged;
 * nothing written). */
static int proxy_send_head(proxy_xfer *x)
{
    const proxy_io *io = x->io;
    const char *connection = NULL;
    char conn[4096];
    size_t conn_len = 0;
    int te = 0;

    /* Find the Connection headers first: they name more headers to drop (all of them: each
     * header line may name some); and whether a Transfer-Encoding framed the body, which
     * makes a Content-Length beside it a lie the web server must not see (RFC 9112 6.3). */
    for (const char *p = x->head; p < x->head + x->head_len;) {
        const char *eol = memchr(p, '\n', (size_t)(x->head + x->head_len - p));
        size_t len = (size_t)(eol - p) - 1; /* kept lines end with CRLF */
        if (len > 11 && strncasecmp(p, "Connection:", 11) == 0) {
            if (conn_len + len - 11 + 2 > sizeof conn) {
                /* Headers it names would pass unseen: refused rather than relayed. */
                log_error("the backend's Connection headers are longer than %zu bytes",
                          sizeof conn - 2);
                return -2;
            }
            conn[conn_len++] = ',';
            memcpy(conn + conn_len, p + 11, len - 11);
            conn_len += len - 11;
            conn[conn_len] = '\0';
            connection = conn;
        }
        te |= len > 18 && strncasecmp(p, "Transfer-Encoding:", 18) == 0;
        p = eol + 1;
    }
    x->sent_head = 1;
    x->write_failed = 1; /* until the head is out */
    if (io->write(io->ud, x->status_line, (int)strlen(x->status_line)) != 0)
        return -1;
    /* The lines kept are written a run at a time: one write up to each line dropped. */
    const char *run = x->head;
    for (const char *p = x->head; p < x->head + x->head_len;) {
        const char *eol = memchr(p, '\n', (size_t)(x->head + x->head_len - p));
        size_t line = (size_t)(eol - p) + 1, name = strcspn(p, ":");
        int ours = x->extra_len > 0 && (proxy_name_is(p, name, "RateLimit") ||
                                        proxy_name_is(p, name, "RateLimit-Policy") ||
                                        strncasecmp(p, "X-RateLimit-", 12) == 0);
        /* "Status" would be read by the web server as our status line: never pass it. */
        int drop = ours || proxy_hop_by_hop(p, name, connection) ||
                   proxy_name_is(p, name, "Status") ||
                   (te && proxy_name_is(p, name, "Content-Length"));
        if (drop) {
            if (p > run && io->write(io->ud, run, (int)(p - run)) != 0)
                return -1;
            run = p + line;
        }
        p += line;
    }
    if (x->head + x->head_len > run &&
        io->write(io->ud, run, (int)(x->head + x->head_len - run)) != 0)
        return -1;
    if (x->extra_len > 0 && io->write(io->ud, x->extra, (int)x->extra_len) != 0)
        return -1;
    if (io->write(io->ud, "\r\n", 2) != 0)
        return -1;
    x->write_failed = 0;
    return 0;
}

/* "HTTP/1.1 404 Not Found" -> status 404, "Status: 404 Not Found\r\n". */
static void proxy_status_line(proxy_xfer *x, const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n);
    size_t rest;

    x->status = 0;
    x->head_len = 0;
    if (sp == NULL || (size_t)(sp - p) + 4 > n)
        return;
    rest = n - (size_t)(sp + 1 - p);
    for (int i = 0; i < 3; i++) {
        if (sp[1 + i] < '0' || sp[1 + i] > '9')
            return;
        x->status = x->status * 10 + (sp[1 + i] - '0');
    }
    if (rest > sizeof x->status_line - 16)
        rest = sizeof x->status_line - 16;
    while (rest > 0 && (sp[rest] == '\r' || sp[rest] == '\n'))
        rest--;
    memcpy(x->status_line, "Status: ", 8);
    memcpy(x->status_line + 8, sp + 1, rest);
    memcpy(x->status_line + 8 + rest, "\r\n", 3);
}

int proxy_relay_header(void *ud, const char *line, size_t n)
{
    proxy_xfer *x = ud;
    const char *buf = line;
    size_t len = n;

    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
        len--;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        proxy_status_line(x, buf, n);
        return 0;
    }
    if (len == 0) { /* the end of a head: an interim 1xx one is dropped whole */
        if (x->status >= 200 && !x->sent_head && proxy_send_head(x) != 0)
            return -1;
        return 0;
    }
    if (x->status < 200)
        return 0;
    if (x->head_len + len + 2 > sizeof x->head) {
        log_error("the backend's response head is longer than %d bytes", PROXY_HEAD_MAX);
        x->status = -1;
        return -1;
    }
    memcpy(x->head + x->head_len, buf, len);
    memcpy(x->head + x->head_len + len, "\r\n", 2);
    x->head_len += len + 2;
    return 0;
}

int proxy_relay_body(void *ud, const char *buf, size_t n)
{
    proxy_xfer *x = ud;

    if (!x->sent_head) {
        if (x->status < 200) {
            x->write_failed = 1;
            return -1;
        }
        if (proxy_send_head(x) != 0)
            return -1;
    }
    if (n > 0 && x->io->write(x->io->ud, buf, (int)n) != 0) {
        x->write_failed = 1;
        return -1;
    }
    return 0;
}
