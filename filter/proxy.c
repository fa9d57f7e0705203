/* proxy.c -- forward an allowed responder request to the backend (see proxy.h)
 *
 * The easy handle lives as long as the process: curl_easy_reset() between requests clears
 * the options but keeps the live connection, so the backend sees one kept-alive connection
 * per filter process. An exchange that fails before the response head went out is answered
 * here: 502 when the backend cannot be reached or answers garbage, 504 when it is too slow;
 * after the head went out the response can only be cut short (logged).
 */
#include "../core/fmacros.h"

#include "proxy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "log.h"
#include "proxy_int.h"
#include "clock.h"
#include "http.h"
#include "settings.h"

proxy *proxy_new(const rl_config *cfg)
{
    proxy *px = calloc(1, sizeof *px);

    if (px == NULL) {
        log_error("out of memory for the proxy");
        return NULL;
    }
    px->cfg = cfg;
    px->curl = curl_easy_init();
    if (px->curl == NULL) {
        log_error("libcurl could not make a handle for the proxy");
        free(px);
        return NULL;
    }
    return px;
}

void proxy_free(proxy *px)
{
    if (px == NULL)
        return;
    curl_easy_cleanup(px->curl);
    curl_slist_free_all(px->headers);
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

static void proxy_options(proxy *px)
{
    CURL *c = px->curl;
    const settings_proxy *pc = settings_get_proxy(px->cfg);

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, pc->backend);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never an http_proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L); /* bytes pass as they are */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)pc->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, px->errbuf);
    px->errbuf[0] = '\0';
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
    proxy_options(px);
    proxy_relay_setup(px);
    status = proxy_request_setup(px, io);
    if (status != 0) {
        curl_slist_free_all(px->headers);
        px->headers = NULL;
        return proxy_answer(x, status,
                            status == 500   ? "Internal Server Error\n"
                            : status == 414 ? "URI Too Long\n"
                                            : "Bad Request\n");
    }
    rc = curl_easy_perform(px->curl);
    curl_slist_free_all(px->headers);
    px->headers = NULL;
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
