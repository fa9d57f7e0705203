/* admin.c -- the admin endpoints: which one, who may ask, which method, reading and sending
 * (see admin.h; the bodies are made by admin_json.c and admin_metrics.c)
 *
 *   health_path   GET   200 ok|degraded, 503 down
 *   stats_path    GET   200 pool-wide counters
 *   test_path     POST  200 one decision in this process's sandbox limiter (never the real
 *                       table, never Redis, never counted: rl_limiter_open_sandbox)
 *   metrics_path  GET   200 text/plain; version=0.0.4
 * A client outside admin.allow gets 403 {"error":"forbidden"} whatever the method; a wrong
 * method 405 with Allow. Every answer carries Cache-Control: no-store.
 */
#include "../core/fmacros.h"

#include "admin.h"

#include <fcgiapp.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define ADMIN_BODY_MAX 65536 /* bytes of a test request's JSON */

static rl_limiter *admin_sandbox; /* made at the first test request, per process */

void admin_outf(admin_out *o, const char *fmt, ...)
{
    va_list ap;

    if (o->failed)
        return;
    for (;;) {
        size_t room = o->cap - o->len;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf != NULL ? o->buf + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap : 4096;
        while (cap - o->len <= (size_t)n)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

void admin_outn(admin_out *o, const char *p, size_t n)
{
    if (o->failed || n == 0)
        return;
    if (o->cap - o->len < n + 1) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap - o->len < n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

void admin_out_free(admin_out *o)
{
    free(o->buf);
    *o = (admin_out){0};
}

void admin_close(void)
{
    rl_limiter_close(admin_sandbox);
    admin_sandbox = NULL;
}

admin_endpoint admin_match(const handle_ctx *ctx)
{
    const rl_admin_config *ac = &ctx->cfg->admin;
    const char *p = ctx->req.path;

    if (!ac->enabled)
        return ADMIN_NONE;
    if (strcmp(p, ac->health_path) == 0)
        return ADMIN_HEALTH;
    if (strcmp(p, ac->stats_path) == 0)
        return ADMIN_STATS;
    if (strcmp(p, ac->test_path) == 0)
        return ADMIN_TEST;
    if (strcmp(p, ac->metrics_path) == 0)
        return ADMIN_METRICS;
    return ADMIN_NONE;
}

static const char *admin_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* The whole answer: status line, headers, body (`allow`: the Allow header of a 405). */
static void admin_answer(admin_out *out, int status, const char *type, const char *allow,
                         const admin_out *body)
{
    admin_outf(out, "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n", status,
               admin_reason(status), type);
    if (allow != NULL)
        admin_outf(out, "Allow: %s\r\n", allow);
    admin_outf(out, "Content-Length: %zu\r\n\r\n", body->len);
    admin_outn(out, body->buf, body->len);
}

static int admin_error(admin_out *body, int status, const char *what)
{
    admin_outf(body, "{\"error\":\"%s\"}\n", what);
    return status;
}

/* The client as rl_decide would see it, for admin.allow. */
static int admin_allowed(handle_ctx *ctx)
{
    rl_request rq = {
        .remote_addr = ctx->req.client, .header = request_get_header, .header_ud = &ctx->req};
    return rl_client_in(ctx->cfg, &rq, ctx->cfg->admin.allow, ctx->cfg->admin.nallow);
}

typedef int (*admin_read_fn)(void *ud, char *buf, int n);

/* Reads the request body (up to ADMIN_BODY_MAX + 1 bytes) into *body. -1 on a read error. */
static int admin_read_body(admin_read_fn rd, void *ud, long limit, admin_out *body)
{
    char chunk[4096];

    while (limit != 0 && body->len <= ADMIN_BODY_MAX) {
        int want = limit > 0 && limit < (long)sizeof chunk ? (int)limit : (int)sizeof chunk;
        int got = rd(ud, chunk, want);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        admin_outn(body, chunk, (size_t)got);
        if (limit > 0)
            limit -= got;
    }
    return 0;
}

static int admin_run_test(handle_ctx *ctx, const admin_out *in, admin_out *body)
{
    rl_error err;

    if (in->len > ADMIN_BODY_MAX)
        return admin_error(body, 413, "request body over 65536 bytes");
    if (admin_sandbox == NULL &&
        (admin_sandbox = rl_limiter_open_sandbox(ctx->cfg, &err)) == NULL) {
        log_error("admin: cannot open the test limiter: %s", err.text);
        return admin_error(body, 503, "the test limiter cannot be opened");
    }
    return admin_test(ctx, admin_sandbox, in->buf != NULL ? in->buf : "", in->len, body);
}

/* Builds the answer to ep into out; rd/ud read the request body, limit its length (-1: to
 * the end of the stream). */
static void admin_build(handle_ctx *ctx, admin_endpoint ep, admin_read_fn rd, void *ud, long limit,
                        admin_out *out)
{
    const char *method = ctx->req.method;
    const char *want = ep == ADMIN_TEST ? "POST" : "GET";
    const char *type = "application/json";
    admin_out body = {0}, in = {0};
    int status = 200;

    if (!admin_allowed(ctx)) {
        char path[256];
        log_warn("admin: 403 client=%s path=\"%s\" not in admin.allow", ctx->req.client,
                 log_escape(path, sizeof path, ctx->req.path));
        status = admin_error(&body, 403, "forbidden");
    } else if (strcmp(method, want) != 0) {
        status = admin_error(&body, 405, "method not allowed");
    } else {
        switch (ep) {
        case ADMIN_HEALTH: status = admin_health(ctx, &body); break;
        case ADMIN_STATS: admin_stats(ctx, &body); break;
        case ADMIN_METRICS:
            type = "text/plain; version=0.0.4; charset=utf-8";
            admin_metrics(ctx, &body);
            break;
        default:
            if (admin_read_body(rd, ud, limit, &in) < 0)
                status = admin_error(&body, 400, "cannot read the request body");
            else
                status = admin_run_test(ctx, &in, &body);
            break;
        }
    }
    if (body.failed || in.failed) {
        admin_out_free(&body);
        type = "application/json";
        status = admin_error(&body, 500, "out of memory");
    }
    admin_answer(out, status, type, status == 405 ? want : NULL, &body);
    admin_out_free(&body);
    admin_out_free(&in);
}

static long admin_content_length(char **params)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", params);
    char *end;
    long n;

    if (cl == NULL || cl[0] == '\0')
        return -1;
    n = strtol(cl, &end, 10);
    return *end == '\0' && n >= 0 ? n : -1;
}

/* The test body through io, which must all arrive within fastcgi.read_timeout_ms (checked
 * between reads, each of which waits at most that long): a client trickling it cannot hold
 * the process. */
typedef struct admin_body_in {
    const proxy_io *io;
    int64_t deadline;
    int ms;
} admin_body_in;

static int64_t admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int admin_body_read(void *ud, char *buf, int n)
{
    admin_body_in *in = ud;

    if (admin_now_ms() >= in->deadline) {
        log_warn("admin: the test request's body did not arrive within %d ms", in->ms);
        return -1;
    }
    return in->io->read(in->io->ud, buf, n);
}

int admin_serve(handle_ctx *ctx, admin_endpoint ep, const proxy_io *io)
{
    admin_out out = {0};
    long limit = admin_content_length(io->params);
    int ms = ctx->cfg->fastcgi.read_timeout_ms;
    admin_body_in in = {.io = io, .deadline = admin_now_ms() + ms, .ms = ms};
    int rc = 0;

    /* Without an end-of-stream marker (CGI) nothing beyond CONTENT_LENGTH: none, no body. */
    if (limit < 0 && !io->body_to_eof)
        limit = 0;
    admin_build(ctx, ep, admin_body_read, &in, limit, &out);
    if (out.failed || io->write(io->ud, out.buf, (int)out.len) != 0)
        rc = -1;
    admin_out_free(&out);
    return rc;
}
