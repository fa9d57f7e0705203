/* fcgi_loop.c -- serve requests: the FastCGI accept loop, or one plain CGI request
 *
 * The web server spawns us with the listening socket on fd 0. Stopping: SIGTERM or SIGINT
 * sets loop_stop and shuts the listening socket down, which wakes an accept() that is
 * blocked (or about to block) without touching the connection of a request being served;
 * that request is finished, then the loop returns. The handlers use SA_RESTART so that a
 * signal never breaks a write to the web server half way.
 */
#include "../core/fmacros.h"

#include "fcgi_loop.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handle.h"
#include "log.h"
#include "response.h"

extern char **environ;

#define LOOP_LISTEN_FD 0

static volatile sig_atomic_t loop_stop;

static void loop_on_signal(int sig)
{
    int saved = errno;
    (void)sig;
    loop_stop = 1;
    FCGX_ShutdownPending();
    shutdown(LOOP_LISTEN_FD, SHUT_RDWR); /* async-signal-safe; fails harmlessly if unneeded */
    errno = saved;
}

static int loop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN; /* a web server that went away is an error, not a death */
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = loop_on_signal;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Plain CGI: the request is our environment, the response goes to stdout. */
static int loop_cgi(handle_ctx *ctx, response *rsp)
{
    handle_request(ctx, environ, rsp);
    if (response_write(rsp, stdout) != 0) {
        log_error("cannot write the CGI response: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int loop_fcgi(handle_ctx *ctx, response *rsp)
{
    FCGX_Request fr;
    int ret = 0;

    if (FCGX_InitRequest(&fr, LOOP_LISTEN_FD, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_error("FCGX_InitRequest failed");
        return -1;
    }
    while (!loop_stop) {
        int rc = FCGX_Accept_r(&fr);
        if (rc < 0) {
            if (!loop_stop) {
                log_error("FastCGI accept failed (%d): %s", rc, strerror(errno));
                ret = -1;
            }
            break;
        }
        handle_request(ctx, fr.envp, rsp);
        if (response_send(rsp, fr.out) != 0)
            log_warn("the web server closed the connection before the response (%d)",
                     FCGX_GetError(fr.out));
        FCGX_Finish_r(&fr);
    }
    FCGX_Free(&fr, 1);
    return ret;
}

int loop_run(const rl_config *cfg, rl_limiter *lim)
{
    static handle_ctx ctx; /* large (a request and a decision): kept off the stack */
    static response rsp;

    ctx.cfg = cfg;
    ctx.lim = lim;
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
    return loop_fcgi(&ctx, &rsp);
}
