/* proxy.h -- forward an allowed responder request to the HTTP backend and relay its answer
 *
 * One proxy per process, made after fork: it keeps its connection to the backend alive
 * between requests (an HTTP/1.1 client of its own, proxy.c). The request body and the response body are
 * streamed (never held whole), byte for byte both ways.
 */
#ifndef FILTER_PROXY_H
#define FILTER_PROXY_H

#include <stddef.h>

#include "ratelimit.h"

/* Where the request comes from and the response goes to: the FastCGI streams, or stdin and
 * stdout in plain CGI mode. */
typedef struct proxy_io {
    char **params;  /* "NAME=value" request parameters, borrowed for the request */
    /* Reads up to n bytes of the request body: the count, 0 at its end, -1 on error. */
    int (*read)(void *ud, char *buf, int n);
    /* Writes n bytes of the response: 0, or -1 when the web server went away. */
    int (*write)(void *ud, const char *buf, int n);
    void *ud;
    int body_to_eof; /* the body stream has a definite end (FastCGI), so a body without
                        CONTENT_LENGTH (chunked) can be read until it */
} proxy_io;

typedef struct proxy proxy;

/* A proxy for the proxy section of cfg (borrowed; must outlive it); NULL when out of memory or the
 * backend URL cannot be used (logged). */
proxy *proxy_new(const rl_config *cfg);
void proxy_free(proxy *px);

/* Forwards the request in io to the backend and writes the backend's response, plus the
 * header lines in extra (borrowed; "Name: value\r\n" lines, e.g. the RateLimit fields), to io.
 * On failure before any byte of the response was written, writes a 400, 502 or 504 itself.
 * Returns the status the client got, or -1 when the response was cut (logged). */
int proxy_forward(proxy *px, const proxy_io *io, const char *extra, size_t extra_len);

#endif
