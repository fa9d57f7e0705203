/* proxy_parse.h -- the backend's HTTP/1.1 response, parsed as its bytes arrive
 *
 * A push parser over whatever recv() returned: it keeps only the line it is in the middle of
 * (a status, header, chunk-size or trailer line, at most PROXY_PARSE_LINE_MAX bytes) and the
 * counts of what the framing still expects; body bytes are handed on as slices of the caller's
 * buffer, never copied. Framing (RFC 9112 6.3): no body for a 1xx (interim: the next status
 * line follows), 204, 304 or the answer to HEAD; chunked when the last transfer coding is
 * "chunked"; until the connection closes for another transfer coding or when no length is
 * given; else Content-Length bytes (Transfer-Encoding wins over it, and the connection is then
 * not used again). Trailers are read and dropped. Anything that does not parse is an error
 * (why says what) and the connection cannot be used again: besides bad framing, a status
 * outside 100-599 or 101 (never asked for), a head line with a control byte but HTAB (a NUL, a
 * bare CR, ...), a header line
 * that is not "token:value" (no colon, a blank before it, an obsolete folded line), a head
 * (interim answers included) or trailer section over PROXY_PARSE_LINE_MAX bytes.
 */
#ifndef FILTER_PROXY_PARSE_H
#define FILTER_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_PARSE_LINE_MAX 65536 /* bytes of one head line; of the whole head too (its
                                      interim answers included), and of the trailers */

typedef struct proxy_parse_cb {
    /* One line of a head, its line end included (CRLF or a bare LF): the status line of each
     * answer (interim ones too), its header lines, then its blank line.
     * Returns 0, or non-zero to stop. */
    int (*header)(void *ud, const char *line, size_t len);
    /* Bytes of the final answer's body, de-chunked. Returns 0, or non-zero to stop. */
    int (*body)(void *ud, const char *buf, size_t len);
    void *ud;
} proxy_parse_cb;

typedef struct proxy_parse {
    int state;
    int head_request;   /* the request was HEAD: no body whatever the head says */
    int status;         /* of the answer being read; the final one once past its head */
    int close;          /* the connection cannot carry another request after this one */
    int chunked;        /* the final answer's body is chunked */
    int until_close;    /* ... runs until the connection closes */
    int transfer_encoding; /* the answer being read has a Transfer-Encoding */
    int64_t length;     /* Content-Length of the answer being read, -1 when none */
    uint64_t left;      /* body (or chunk) bytes still to come */
    size_t head_bytes;  /* bytes of the current head so far */
    int touched;        /* a byte of an answer was taken */
    const char *why;    /* what was wrong, when proxy_parse_feed returned -1 */
    size_t line_len;
    char line[PROXY_PARSE_LINE_MAX];
} proxy_parse;

/* Starts a new answer; head_request: the request was HEAD. */
void proxy_parse_start(proxy_parse *p, int head_request);

/* Feeds buf[0..n). Returns the bytes taken: n, or fewer when the answer ended before (the rest
 * belongs to no answer); -1 when the bytes do not parse (p->why), -2 when a callback stopped. */
long proxy_parse_feed(proxy_parse *p, const char *buf, size_t n, const proxy_parse_cb *cb);

/* 1 when the answer is complete. */
int proxy_parse_done(const proxy_parse *p);

/* The connection closed: 1 when that completes the answer (a body read until the close), 0
 * when the answer is cut short. */
int proxy_parse_eof(proxy_parse *p);

/* 1 when the comma-separated list v[0..n) holds the token t (case-insensitive); last: only
 * as its last element (a Transfer-Encoding is chunked when "chunked" is its last coding). */
int proxy_has_token(const char *v, size_t n, const char *t, int last);

/* 1 when not a byte of an answer has been taken yet. */
int proxy_parse_untouched(const proxy_parse *p);

#endif
