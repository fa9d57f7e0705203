/* fcgi_loop.c -- serve requests: the FastCGI server loop, or one plain CGI request
 *
 * The web server spawns us with the listening socket on fd 0 (the prefork daemon does the
 * same for its workers). The FastCGI side is fcgi_server.c: many connections per process,
 * each with its deadlines. This file carries out what handle.c decided a request is
 * (loop_serve: an answer, an admin page or a forwarded exchange), the one dispatch of
 * FastCGI and plain CGI alike, and handles the signals.
 *
 * Stopping on SIGTERM/SIGINT without breaking a request half way: both signals stay blocked
 * all the time, except inside the one epoll_pwait() that waits for the next thing to do. It
 * unblocks them atomically, so a signal is either seen before we wait or wakes the wait; a
 * signal during an answer is handled after it. SIGHUP reloads the configuration the same
 * way, so a reload always happens between two requests, never during one: the new
 * configuration is loaded and its limiter opened first (reload.c); only then are they
 * swapped in and the old ones closed, so a bad file or an incompatible table leaves the
 * process serving the old one. The listening socket is left open: siblings may share it.
 */
#include "../core/fmacros.h"

#include "fcgi_loop.h"

#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "fcgi_server.h"
#include "forward.h"
#include "handle.h"
#include "log.h"
#include "reload.h"
#include "response.h"
#include "settings.h"

extern char **environ;

#define LOOP_LISTEN_FD 0

static volatile sig_atomic_t loop_stop;
static volatile sig_atomic_t loop_reload;
static sigset_t loop_wait_mask; /* the mask while waiting: ours without SIGTERM/SIGINT/SIGHUP */

static void loop_on_signal(int sig)
{
    if (sig == SIGHUP)
        loop_reload = 1;
    else
        loop_stop = 1;
}

/* Installs the handlers and blocks SIGTERM/SIGINT/SIGHUP from now on (see the header
 * comment). */
static int loop_signals(void)
{
    struct sigaction sa;
    sigset_t stop;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN; /* a web server that went away is an error, not a death */
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &stop, &loop_wait_mask) != 0)
        return -1;
    sigdelset(&loop_wait_mask, SIGTERM);
    sigdelset(&loop_wait_mask, SIGINT);
    sigdelset(&loop_wait_mask, SIGHUP);
    sa.sa_handler = loop_on_signal;
    sa.sa_mask = stop;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* SIGHUP: the new configuration and limiter, or (logged) the old ones kept. */
static void loop_reload_config(handle_ctx *ctx, rl_config **cfg, rl_limiter **lim)
{
    rl_config *ncfg;
    rl_limiter *nlim;

    loop_reload = 0;
    if (reload_load(rl_config_path(*cfg), &ncfg, &nlim) != 0)
        return;
    /* Everything that borrows the old config goes first. */
    forward_close();
    admin_close();
    rl_limiter_close(*lim);
    rl_config_free(*cfg);
    *cfg = ncfg;
    *lim = nlim;
    ctx->cfg = ncfg;
    ctx->lim = nlim;
    ctx->degraded = 0;
    request_init(&ctx->req, ncfg);
    log_info("reload: %s: %zu rule(s) now in force", rl_config_path(ncfg), rl_config_nrules(ncfg));
}

/* Decides the request in io and answers it through io: the one dispatch of FastCGI and CGI
 * requests (handle_request says what the request is). Returns 0, or -1 when the answer was
 * cut (a forwarded response that failed after its head went out, or the web server went
 * away): the caller must not end it as complete. */
static int loop_serve(handle_ctx *ctx, response *rsp, const proxy_io *io)
{
    handle_action act = HANDLE_ANSWER;

    if (io->params == NULL)
        response_error(rsp, 400);
    else
        act = handle_request(ctx, io->params, rsp);
    switch (act) {
    case HANDLE_ADMIN:
        if (admin_serve(ctx, (admin_endpoint)ctx->admin, io) != 0) {
            log_warn("the web server closed the connection before the admin response");
            return -1;
        }
        return 0;
    case HANDLE_FORWARD: return forward_serve(ctx, rsp, io); /* failures are logged */
    case HANDLE_ANSWER: break;
    }
    if (io->write(io->ud, rsp->buf, (int)rsp->len) != 0) {
        log_warn("the web server closed the connection before the response");
        return -1;
    }
    return 0;
}

/* Plain CGI's body: read(2), not fread, so a piece is handed on as soon as it arrives and
 * the proxy checks proxy.total_timeout_ms between pieces (fread waited for a whole 16 KiB, so a
 * client trickling its upload held the process for as long as it liked). Each wait for a
 * piece is bounded by fastcgi.read_timeout_ms (ud), as a FastCGI body's is: a client that says
 * CONTENT_LENGTH and sends nothing would otherwise hold the process for good, before any
 * check between pieces could run. Nothing else reads stdin, so no stdio buffer holds bytes
 * this would miss. */
static int loop_stdin_read(void *ud, char *buf, int n)
{
    const int *read_ms = ud;
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    ssize_t got;
    int r;

    do
        r = poll(&p, 1, *read_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        log_warn("CGI: no more of the request's body within %d ms (fastcgi.read_timeout_ms)",
                 *read_ms);
    if (r <= 0)
        return -1;
    do
        got = read(STDIN_FILENO, buf, (size_t)n);
    while (got < 0 && errno == EINTR);
    return got < 0 ? -1 : (int)got;
}

static int loop_stdout_write(void *ud, const char *buf, int n)
{
    (void)ud;
    return fwrite(buf, 1, (size_t)n, stdout) == (size_t)n ? 0 : -1;
}

/* Plain CGI: the request is our environment, the response goes to stdout. */
static int loop_cgi(handle_ctx *ctx, response *rsp)
{
    /* No end-of-stream marker beyond CONTENT_LENGTH: a body without one is not read. */
    int read_ms = settings_get_fastcgi(ctx->cfg)->read_timeout_ms;
    proxy_io io = {.params = environ,
                   .read = loop_stdin_read,
                   .write = loop_stdout_write,
                   .ud = &read_ms,
                   .body_to_eof = 0};
    int rc = loop_serve(ctx, rsp, &io);

    admin_close();
    forward_close();
    if (fflush(stdout) != 0) {
        log_error("cannot write the CGI response: %s", strerror(errno));
        return -1;
    }
    return rc;
}

typedef struct loop_state {
    handle_ctx *ctx;
    response *rsp;
    rl_config **cfg;
    rl_limiter **lim;
} loop_state;

static int loop_hook_serve(void *ud, const proxy_io *io)
{
    loop_state *st = ud;
    return loop_serve(st->ctx, st->rsp, io);
}

static int loop_hook_tick(void *ud)
{
    loop_state *st = ud;

    if (loop_reload && !loop_stop)
        loop_reload_config(st->ctx, st->cfg, st->lim);
    return loop_stop != 0;
}

static const rl_config *loop_hook_config(void *ud)
{
    const loop_state *st = ud;
    return *st->cfg;
}

static int loop_fcgi(handle_ctx *ctx, response *rsp, rl_config **cfg, rl_limiter **lim)
{
    loop_state st = {.ctx = ctx, .rsp = rsp, .cfg = cfg, .lim = lim};
    fcgi_server_hooks hooks = {.serve = loop_hook_serve,
                               .tick = loop_hook_tick,
                               .config = loop_hook_config,
                               .wait_mask = &loop_wait_mask,
                               .ud = &st};
    int rc = fcgi_server_run(LOOP_LISTEN_FD, &hooks);

    forward_close();
    admin_close();
    return rc;
}

int loop_run(rl_config **cfg, rl_limiter **lim)
{
    static handle_ctx ctx; /* large (a request and a decision): kept off the stack */
    static response rsp;

    ctx.cfg = *cfg;
    ctx.lim = *lim;
    request_init(&ctx.req, *cfg);
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return -1;
    }
    if (FCGX_IsCGI())
        return loop_cgi(&ctx, &rsp);
    if (loop_signals() != 0) {
        log_error("cannot install signal handlers: %s", strerror(errno));
        return -1;
    }
    return loop_fcgi(&ctx, &rsp, cfg, lim);
}
