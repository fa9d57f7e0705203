/* admin.h -- the admin endpoints: health, statistics, a test decision, Prometheus metrics
 *
 * Served in the responder role only (an authorizer's 200 body never reaches the client), to
 * clients in admin.allow; never rate-limited, never forwarded. In the authorizer role an admin
 * path is answered 200 without a decision (handle.c), so the responder mount behind it serves
 * it uncharged. Paths are matched exactly on the canonical path. Each answer is built whole
 * in an admin_out (allocated: the answers are small, but grow with the number of rules, and
 * admin requests are not the hot path), then sent.
 */
#ifndef FILTER_ADMIN_H
#define FILTER_ADMIN_H

#include <stddef.h>

#include "handle.h"
#include "proxy.h"

typedef enum admin_endpoint {
    ADMIN_NONE = 0,
    ADMIN_HEALTH,
    ADMIN_STATS,
    ADMIN_TEST,
    ADMIN_METRICS,
} admin_endpoint;

/* A growing text buffer; on allocation failure `failed` is set and appends stop. */
typedef struct admin_out {
    char *buf;
    size_t len, cap;
    int failed;
} admin_out;

void admin_outf(admin_out *o, const char *fmt, ...) RL_PRINTF(2, 3);
/* Appends n bytes of p (any bytes; NUL-terminated after). */
void admin_outn(admin_out *o, const char *p, size_t n);
void admin_out_free(admin_out *o);

/* The endpoint a loaded request (ctx->req, its canonical path) is for, in either role, or
 * ADMIN_NONE (also when admin.enabled is off). */
admin_endpoint admin_match(const handle_ctx *ctx);

/* Answers the request through io (FastCGI or plain CGI: reads a POST body from io->read).
 * Returns 0, or -1 when the web server went away (logged by the caller). */
int admin_serve(handle_ctx *ctx, admin_endpoint ep, const proxy_io *io);

/* Frees this process's sandbox limiter (before a reload frees the config it borrows). */
void admin_close(void);

/* ---- the bodies (admin_json.c, admin_metrics.c) ---- */
/* The health JSON into o; returns the HTTP status (200 ok/degraded, 503 down). */
int admin_health(handle_ctx *ctx, admin_out *o);
/* The statistics JSON into o. */
void admin_stats(handle_ctx *ctx, admin_out *o);
/* One decision of the JSON request in body[0..len) on lim (the sandbox) into o; returns the
 * HTTP status (200, or 400 with {"error":...}). */
int admin_test(handle_ctx *ctx, rl_limiter *lim, const char *body, size_t len, admin_out *o);
/* The Prometheus text exposition into o. */
void admin_metrics(handle_ctx *ctx, admin_out *o);

#endif
