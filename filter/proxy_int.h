/* proxy_int.h -- what the proxy's files share: the handle and one exchange's state
 *
 * proxy.c owns the handle, its kept connection and runs an exchange; proxy_request.c writes
 * the request head; proxy_relay.c moves the bytes between the exchange and the web server;
 * proxy_parse.c reads the backend's answer. Private to those files.
 */
#ifndef FILTER_PROXY_INT_H
#define FILTER_PROXY_INT_H

#include <stdint.h>

#include "proxy.h"
#include "siphash.h"
#include "proxy_parse.h"

#define PROXY_HEAD_MAX 65536  /* bytes of the backend's response header block */
#define PROXY_TARGET_MAX 8192 /* bytes of a request target (path and query) */
#define PROXY_IO_BUF 16384    /* bytes moved per recv() from, or per send() of a body to, the backend */
#define PROXY_ERR_MAX 256
/* Distinct HTTP_* names one request may bring: far above what a web server passes (Apache
 * LimitRequestFields: 100), a bound on a hostile FastCGI peer's thousands. A power of two. */
#define PROXY_SEEN_MAX 4096

typedef struct proxy_xfer {
    const proxy_io *io;
    const char *extra;       /* header lines to add to the response */
    size_t extra_len;
    int64_t body_left;       /* request body bytes still to send; -1 = until EOF, chunked */
    int64_t body_read;       /* request body bytes taken from the client so far */
    int empty_length;        /* the body is empty and must say so: "Content-Length: 0" */
    int head_request;        /* the method is HEAD: the answer has no body */
    int read_failed;         /* the client's body ended early or could not be read */
    int write_failed;        /* the web server went away */
    int timed_out;           /* the backend stayed silent longer than timeout_ms, or the
                                exchange ran past its end (then total_out too) */
    int total_out;           /* the exchange ran past end_ms */
    int64_t last_ms;         /* monotonic time of the last byte either way */
    int64_t timeout_ms;
    int64_t end_ms;          /* monotonic time the exchange must be over by (total_timeout_ms) */
    int status;              /* the backend's final status, 0 before it */
    int sent_head;           /* the response head went out: errors can no longer be shown */
    size_t head_len;         /* bytes in head: the final response's header lines so far */
    char status_line[256];   /* "Status: 404 Not Found\r\n" */
    char head[PROXY_HEAD_MAX];
} proxy_xfer;

struct proxy {
    const rl_config *cfg;
    char host[256];      /* of the backend URL, parsed once: what getaddrinfo() is given */
    char port[8];
    char authority[280]; /* "host[:port]" as in the URL: the Host header when the client sent none */
    int fd;              /* the kept-alive connection to the backend, -1 when none */
    int reused;          /* this try of the exchange went on a connection kept from before */
    /* The request head, "METHOD target HTTP/1.1\r\n", its header lines and the blank line,
     * in hbuf (hlen of hcap bytes used), kept for the process and reused by every request. */
    char *hbuf;
    size_t hlen, hcap;
    /* The HTTP_* names of the request being built, an open-addressing table of indexes into
     * its params (twice PROXY_SEEN_MAX slots): a slot is used when its stamp is seen_stamp,
     * so a new request empties it by a new stamp. Finds a repeated name in O(1): keyed by
     * SipHash under seen_key, a peer cannot send names that all land in one chain. */
    struct {
        uint32_t stamp, at;
    } seen[2 * PROXY_SEEN_MAX];
    uint32_t seen_stamp;
    unsigned seen_count;
    uint8_t seen_key[RL_SIPHASH_KEY_SIZE]; /* random, per process: no collisions to pick */
    char errbuf[PROXY_ERR_MAX]; /* why the exchange failed, for the log */
    char target[PROXY_TARGET_MAX];
    char rbuf[PROXY_IO_BUF];      /* the backend's answer, as recv() gives it */
    char sbuf[PROXY_IO_BUF + 32]; /* a piece of the request body, room for chunk framing */
    proxy_parse parse;            /* large: kept off the stack, like the rest */
    proxy_xfer x;
};

/* proxy_request.c: writes the request head of io into px->hbuf and sets the body fields of
 * px->x. Returns 0, or the HTTP status to refuse it with (400, 414, 500) after logging why. */
int proxy_request_setup(proxy *px, const proxy_io *io);

/* proxy_relay.c: the request body from the client, up to n bytes: the count, 0 at its end,
 * -1 when it ended early or could not be read (x->read_failed). */
long proxy_relay_read(proxy_xfer *x, char *buf, size_t n);

/* proxy_relay.c: the parser's callbacks (ud is the proxy_xfer): the answer's head lines and
 * body bytes to the web server. */
int proxy_relay_header(void *ud, const char *line, size_t n);
int proxy_relay_body(void *ud, const char *buf, size_t n);

#endif
