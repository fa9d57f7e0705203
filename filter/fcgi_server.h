/* fcgi_server.h -- the FastCGI server loop: many connections per process, none owns it
 *
 * One loop per process (the --listen daemon's workers and the pool a web server spawns alike)
 * accepts on the listening socket and holds up to fastcgi.max_connections connections in one
 * epoll set. It reads each connection's records as they come (fcgi_conn.c) and answers a
 * request, in order, as soon as its parameters are complete; a connection that is idle, slow
 * or hostile costs a slot and its buffers, never the process. Deadlines close a connection
 * that does not finish a request's parameters within fastcgi.read_timeout_ms of their first
 * byte, does not send the next request within fastcgi.idle_timeout_ms, or does not take its
 * answer; at max_connections the oldest connection (by the start of its current state) makes
 * room for a new one.
 */
#ifndef FILTER_FCGI_SERVER_H
#define FILTER_FCGI_SERVER_H

#include <signal.h>

#include "proxy.h"
#include "ratelimit.h"

typedef struct fcgi_server_hooks {
    /* Answers one request (io->params NULL: its parameters were malformed or too long).
     * Returns 0, or -1 when the answer was cut: the connection is then closed without
     * FCGI_END_REQUEST. */
    int (*serve)(void *ud, const proxy_io *io);
    /* Called before every wait (signals were handled): returns 1 to stop. */
    int (*tick)(void *ud);
    /* The configuration in force: its fastcgi group (a reload may change it; connections
     * keep the deadlines they were accepted with) and proxy.timeout_ms, the longest a cut
     * answer waits for the web server to read what was sent (fcgi_conn_abort). */
    const rl_config *(*config)(void *ud);
    const sigset_t *wait_mask; /* the signal mask while waiting */
    void *ud;
} fcgi_server_hooks;

/* Serves on listen_fd (made non-blocking; not closed) until tick says stop. Returns 0, or -1
 * on a failure it cannot serve through (logged). */
int fcgi_server_run(int listen_fd, const fcgi_server_hooks *h);

#endif
