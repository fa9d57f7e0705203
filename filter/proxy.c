/* proxy.c -- forward an allowed responder request to the backend (see proxy.h)
 *
 * The easy handle and the multi handle that runs it live as long as the process, and so does
 * their connection: the backend sees one kept-alive connection per filter process. The
 * options that never change (the backend URL, parsed once, timeouts, callbacks) are set once
 * when the handle is made; per request only the method, body length, target and header list
 * are set, each of them every time, so nothing is left over from the request before (no
 * curl_easy_reset, which would make every option be set again). The exchange runs on the
 * proxy's own poll() loop (proxy_perform), which also keeps the idle timeout. An exchange
 * that fails before the response head went out is answered here: 502 when the backend cannot
 * be reached or answers garbage, 504 when it is too slow; after the head went out the
 * response can only be cut short (logged).
 */
#include "../core/fmacros.h"

#include "proxy.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proxy_int.h"
#include "clock.h"
#include "http.h"
#include "settings.h"

/* The options of every request, set once. */
static void proxy_options(proxy *px)
{
    CURL *c = px->curl;
    const settings_proxy *pc = settings_get_proxy(px->cfg);

    /* The backend URL parsed once (libcurl parses a CURLOPT_URL string on every request). */
    curl_easy_setopt(c, CURLOPT_CURLU, px->url);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never an http_proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L); /* bytes pass as they are */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)pc->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, px->errbuf);
}

/* libcurl says which sockets to wait on, and for what. */
static int proxy_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    proxy *px = ud;
    int i = 0;

    (void)e, (void)sockp;
    while (i < px->nfd && px->pfd[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < px->nfd)
            px->pfd[i] = px->pfd[--px->nfd];
        return 0;
    }
    if (i == px->nfd) {
        if (px->nfd == PROXY_SOCKS)
            return -1; /* cannot happen with one backend address family; the exchange fails */
        px->nfd++;
        px->pfd[i].fd = fd;
    }
    px->pfd[i].events =
        (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    px->pfd[i].revents = 0;
    return 0;
}

/* ...and when to call it back without a socket event (-1: no timer). */
static int proxy_on_timer(CURLM *m, long ms, void *ud)
{
    proxy *px = ud;

    (void)m;
    px->timer_at = ms < 0 ? -1 : rl_clock_mono_ms() + ms;
    return 0;
}

/* curl_easy_perform() on our own loop: one poll() per wait, and libcurl told what each socket
 * is ready for, instead of its own zero-timeout poll() before every read (two system calls
 * less per request: libcurl still polls once to see that the kept connection is alive, and
 * once right after it sent the request). At most a second between two calls into libcurl, as
 * curl_easy_perform() does. The idle timeout is kept here: when no byte moved either way for
 * timeout_ms (proxy_relay.c's callbacks note every byte), the exchange is abandoned (removing
 * the handle closes its connection). Returns what curl_easy_perform() would, or
 * CURLE_OPERATION_TIMEDOUT with x->timed_out set. */
static CURLcode proxy_perform(proxy *px)
{
    proxy_xfer *x = &px->x;
    CURLcode rc = CURLE_OK;
    CURLMsg *msg;
    int running = 1, left;

    px->timer_at = -1;
    if (curl_multi_add_handle(px->multi, px->curl) != CURLM_OK)
        return CURLE_FAILED_INIT;
    while (running) {
        struct pollfd ready[PROXY_SOCKS];
        int64_t now = rl_clock_mono_ms(), wait = 1000;
        int n, nready = 0;

        if (now - x->last_ms > x->timeout_ms) {
            x->timed_out = 1;
            rc = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        if (px->timer_at >= 0 && px->timer_at - now < wait)
            wait = px->timer_at - now;
        if (x->last_ms + x->timeout_ms + 1 - now < wait)
            wait = x->last_ms + x->timeout_ms + 1 - now;
        n = wait > 0 ? poll(px->pfd, (nfds_t)px->nfd, (int)wait) : 0; /* else: time is up */
        if (n < 0 && errno != EINTR) {
            log_error("poll for the backend failed: %s", strerror(errno));
            rc = CURLE_RECV_ERROR;
            break;
        }
        /* libcurl's callbacks may change pfd: take the ready sockets out first. */
        for (int i = 0; n > 0 && i < px->nfd; i++)
            if (px->pfd[i].revents != 0)
                ready[nready++] = px->pfd[i];
        for (int i = 0; i < nready; i++) {
            int bits =
                ((ready[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ? CURL_CSELECT_IN
                                                                              : 0) |
                ((ready[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                ((ready[i].revents & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(px->multi, ready[i].fd, bits, &running);
        }
        if (nready == 0 && running) {
            px->timer_at = -1; /* fired, or the second is up: libcurl sets it again if needed */
            curl_multi_socket_action(px->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
    }
    while ((msg = curl_multi_info_read(px->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            rc = msg->data.result;
    curl_multi_remove_handle(px->multi, px->curl);
    return rc;
}

proxy *proxy_new(const rl_config *cfg)
{
    proxy *px = calloc(1, sizeof *px);

    if (px == NULL) {
        log_error("out of memory for the proxy");
        return NULL;
    }
    px->cfg = cfg;
    px->curl = curl_easy_init();
    px->multi = curl_multi_init();
    px->url = curl_url();
    if (px->curl == NULL || px->multi == NULL || px->url == NULL) {
        log_error("libcurl could not make a handle for the proxy");
        proxy_free(px);
        return NULL;
    }
    if (curl_url_set(px->url, CURLUPART_URL, settings_get_proxy(cfg)->backend, 0) != CURLUE_OK) {
        log_error("libcurl cannot use the backend URL %s", settings_get_proxy(cfg)->backend);
        proxy_free(px);
        return NULL;
    }
    curl_multi_setopt(px->multi, CURLMOPT_SOCKETFUNCTION, proxy_on_socket);
    curl_multi_setopt(px->multi, CURLMOPT_SOCKETDATA, px);
    curl_multi_setopt(px->multi, CURLMOPT_TIMERFUNCTION, proxy_on_timer);
    curl_multi_setopt(px->multi, CURLMOPT_TIMERDATA, px);
    proxy_options(px);
    proxy_relay_setup(px);
    return px;
}

void proxy_free(proxy *px)
{
    if (px == NULL)
        return;
    curl_multi_cleanup(px->multi); /* the kept-alive connection is the multi's */
    curl_easy_cleanup(px->curl);
    curl_url_cleanup(px->url);
    free(px->hbuf);
    free(px->hoff);
    free(px->node);
    free(px);
}

/* Answers the client ourselves, with the rate-limit lines: the request was counted. */
static int proxy_answer(const proxy_xfer *x, int status, const char *text)
{
    char head[512];
    const proxy_io *io = x->io;
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Cache-Control: no-store\r\n",
                     status, rl_http_reason(status));
    if (io->write(io->ud, head, n) != 0 ||
        (x->extra_len > 0 && io->write(io->ud, x->extra, (int)x->extra_len) != 0) ||
        io->write(io->ud, "\r\n", 2) != 0 || io->write(io->ud, text, (int)strlen(text)) != 0)
        return -1;
    return status;
}

/* What went wrong before the head went out, said to the client and the log. */
static int proxy_failed(proxy *px, CURLcode rc)
{
    proxy_xfer *x = &px->x;
    const char *why = px->errbuf[0] ? px->errbuf : curl_easy_strerror(rc);
    char target[256];

    log_escape(target, sizeof target, px->target);
    if (x->write_failed) {
        log_warn("the web server went away during the response to \"%s\"", target);
        return -1;
    }
    if (x->read_failed) {
        log_warn("the client's request body for \"%s\" ended early: not forwarded", target);
        return -1;
    }
    if (x->timed_out || rc == CURLE_OPERATION_TIMEDOUT) {
        int ms = x->timed_out ? settings_get_proxy(px->cfg)->timeout_ms
                              : settings_get_proxy(px->cfg)->connect_timeout_ms;
        log_error("504: backend %s did not answer \"%s\" within %d ms",
                  settings_get_proxy(px->cfg)->backend, target, ms);
        return proxy_answer(x, 504, "Gateway Timeout: the backend did not answer in time\n");
    }
    log_error("502: backend %s failed for \"%s\": %s", settings_get_proxy(px->cfg)->backend, target,
              why);
    if (rc == CURLE_COULDNT_CONNECT)
        return proxy_answer(x, 502, "Bad Gateway: the backend refused the connection\n");
    return proxy_answer(x, 502, "Bad Gateway: the backend failed\n");
}

int proxy_forward(proxy *px, const proxy_io *io, const char *extra, size_t extra_len)
{
    proxy_xfer *x = &px->x;
    CURLcode rc;
    int status;

    memset(x, 0, offsetof(proxy_xfer, head));
    x->io = io;
    x->extra = extra;
    x->extra_len = extra_len;
    x->timeout_ms = settings_get_proxy(px->cfg)->timeout_ms;
    x->last_ms = rl_clock_mono_ms();
    px->target[0] = '\0';
    px->errbuf[0] = '\0';
    status = proxy_request_setup(px, io);
    if (status != 0)
        return proxy_answer(x, status,
                            status == 500   ? "Internal Server Error\n"
                            : status == 414 ? "URI Too Long\n"
                                            : "Bad Request\n");
    rc = proxy_perform(px);
    if (x->sent_head) {
        if (rc == CURLE_OK && !x->write_failed)
            return x->status;
        char target[256];
        log_error("backend %s: the response to \"%s\" was cut short: %s",
                  settings_get_proxy(px->cfg)->backend,
                  log_escape(target, sizeof target, px->target),
                  x->write_failed ? "the web server went away"
                  : px->errbuf[0] ? px->errbuf
                                  : curl_easy_strerror(rc));
        return -1;
    }
    if (rc == CURLE_OK) /* a response that never finished its head */
        rc = CURLE_WEIRD_SERVER_REPLY;
    return proxy_failed(px, rc);
}
