/* fcgi_loop.c -- serve requests: the FastCGI accept loop, or one plain CGI request
 *
 * The web server spawns us with the listening socket on fd 0. Stopping on SIGTERM/SIGINT
 * without breaking a request half way: both signals stay blocked all the time, except inside
 * one pselect() that waits for the next request (a connection on fd 0, or the next request on
 * a connection the web server keeps open). pselect unblocks them atomically, so a signal is
 * either seen before we wait or wakes the wait; it never lands inside libfcgi, whose reads,
 * writes and accept() therefore never see EINTR. A signal during a request is handled after
 * it is finished. The listening socket is left alone: siblings may share it.
 *
 * SIGHUP reloads the configuration the same way: blocked but inside that pselect(), so a
 * reload always happens between two requests, never during one. The new configuration is
 * loaded and its limiter opened first (reload.c); only then are they swapped in and the old
 * ones closed, so a bad file or an incompatible table leaves the process serving the old
 * one. A request already read (or waiting on the socket) is answered on whichever
 * configuration is current when it is accepted.
 *
 * On a listening socket shared by several processes another one may take the connection
 * pselect saw. The prefork daemon makes its socket non-blocking, so accept() then fails with
 * EAGAIN and we wait again; a blocking socket handed over by a web server makes accept() wait
 * (signals still blocked) until the next connection.
 */
#include "../core/fmacros.h"

#include "fcgi_loop.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "admin.h"
#include "forward.h"
#include "handle.h"
#include "log.h"
#include "reload.h"
#include "response.h"

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

/* Waits, with SIGTERM/SIGINT/SIGHUP unblocked, until the next request can be read. Returns 0
 * when it can, 1 when a stop signal came, 2 when a reload was asked, -1 on error. */
static int loop_wait(const FCGX_Request *fr)
{
    /* The next request comes on the kept connection when the web server asked for
     * FCGI_KEEP_CONN, else on the listening socket. ipcFd is marked private in fcgiapp.h but
     * is the only way to know; it is -1 when no connection is open. */
    int fd = fr->ipcFd >= 0 ? fr->ipcFd : LOOP_LISTEN_FD;
    fd_set rd;

    if (fd >= FD_SETSIZE)
        return loop_stop ? 1 : loop_reload ? 2 : 0; /* cannot wait: let libfcgi block */
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    while (!loop_stop && !loop_reload) {
        int n = pselect(fd + 1, &rd, NULL, NULL, NULL, &loop_wait_mask);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            log_error("waiting for a request: %s", strerror(errno));
            return -1;
        }
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
    }
    return loop_stop ? 1 : 2;
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

/* Plain CGI: the request is our environment, the response goes to stdout. */
static int loop_cgi(handle_ctx *ctx, response *rsp)
{
    handle_request(ctx, environ, rsp);
    if (ctx->admin != ADMIN_NONE) {
        int rc = admin_cgi(ctx, (admin_endpoint)ctx->admin, environ);
        admin_close();
        return rc;
    }
    if (forward_wanted(ctx, rsp)) {
        int rc = forward_cgi(ctx, environ);
        forward_close();
        return rc;
    }
    if (response_write(rsp, stdout) != 0) {
        log_error("cannot write the CGI response: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int loop_fcgi(handle_ctx *ctx, response *rsp, rl_config **cfg, rl_limiter **lim)
{
    FCGX_Request fr;
    int ret;

    if (FCGX_InitRequest(&fr, LOOP_LISTEN_FD, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return -1;
    }
    while ((ret = loop_wait(&fr)) == 0 || ret == 2) {
        if (ret == 2) {
            loop_reload_config(ctx, cfg, lim);
            continue;
        }
        int rc = FCGX_Accept_r(&fr);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            continue; /* a sibling took the connection (non-blocking shared socket) */
        if (rc < 0) {
            log_error("FastCGI accept failed (%d): %s", rc, strerror(errno));
            ret = -1;
            break;
        }
        handle_request(ctx, fr.envp, rsp);
        if (ctx->admin != ADMIN_NONE) {
            if (admin_fcgi(ctx, (admin_endpoint)ctx->admin, &fr) != 0)
                log_warn("the web server closed the connection before the admin response");
        } else if (forward_wanted(ctx, rsp))
            forward_fcgi(ctx, &fr); /* failures are logged; the next request is another day */
        else if (response_send(rsp, fr.out, fr.err) != 0)
            log_warn("the web server closed the connection before the response (%d)",
                     FCGX_GetError(fr.out));
        FCGX_Finish_r(&fr);
    }
    FCGX_Free(&fr, 1);
    forward_close();
    admin_close();
    return ret < 0 ? -1 : 0;
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
