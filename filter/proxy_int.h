/* proxy_int.h -- what the proxy's files share: the handle and one exchange's state
 *
 * proxy.c owns the handle and runs an exchange; proxy_request.c says what is sent;
 * proxy_relay.c moves the bytes (libcurl callbacks). Private to those three files.
 */
#ifndef FILTER_PROXY_INT_H
#define FILTER_PROXY_INT_H

#include <curl/curl.h>
#include <poll.h>
#include <stdint.h>

#include "proxy.h"

#define PROXY_HEAD_MAX 65536  /* bytes of the backend's response header block */
#define PROXY_TARGET_MAX 8192 /* bytes of a request target (path and query) */
#define PROXY_SOCKS 8         /* sockets libcurl may have open for one exchange at once */

typedef struct proxy_xfer {
    const proxy_io *io;
    const char *extra;       /* header lines to add to the response */
    size_t extra_len;
    int64_t body_left;       /* request body bytes still to send; -1 = until EOF */
    int empty_length;        /* the body is empty and must say so: "Content-Length: 0" */
    int read_failed;         /* the client's body ended early or could not be read */
    int write_failed;        /* the web server went away */
    int timed_out;           /* the backend stayed silent longer than timeout_ms */
    int64_t last_ms;         /* monotonic time of the last byte either way */
    int64_t timeout_ms;
    int status;              /* the backend's final status, 0 before it */
    int sent_head;           /* the response head went out: errors can no longer be shown */
    size_t head_len;         /* bytes in head: the final response's header lines so far */
    char status_line[256];   /* "Status: 404 Not Found\r\n" */
    char head[PROXY_HEAD_MAX];
} proxy_xfer;

struct proxy {
    const rl_config *cfg;
    CURL *curl;
    /* The exchange runs in px->multi, which owns the kept-alive connection, driven by
     * proxy.c's own poll() on the sockets and timer libcurl asks for (pfd[0..nfd), timer_at
     * monotonic ms or -1): told which socket is ready, libcurl does not poll it again. */
    CURLM *multi;
    CURLU *url; /* the backend URL, parsed once; curl reads it on every request */
    struct pollfd pfd[PROXY_SOCKS];
    int nfd;
    int64_t timer_at;
    /* The request's header lines, "Name: value" and a NUL each, back to back in hbuf (hlen of
     * hcap bytes used); hoff[0..nh) their offsets (maxh allocated); node[0..nh) the
     * curl_slist libcurl reads, linked over them once hbuf is complete (maxnode allocated).
     * Kept for the process, reused by every request. */
    char *hbuf;
    size_t hlen, hcap;
    size_t *hoff;
    size_t nh, maxh;
    struct curl_slist *node;
    size_t maxnode;
    char errbuf[CURL_ERROR_SIZE];
    char target[PROXY_TARGET_MAX];
    proxy_xfer x;               /* large: kept off the stack */
};

/* proxy_request.c: sets the method, target, body and headers of the request in px->curl.
 * Returns 0, or the HTTP status to refuse it with (400) after logging why. */
int proxy_request_setup(proxy *px, const proxy_io *io);

/* proxy_relay.c: installs the callbacks that move the bytes of px->x. */
void proxy_relay_setup(proxy *px);

#endif
