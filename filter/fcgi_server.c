/* fcgi_server.c -- the FastCGI server loop (see fcgi_server.h)
 *
 * Data: a doubly linked list of connections (fcgi_conn), each registered in the epoll set
 * with its own pointer; the listening socket is registered with a NULL pointer.
 * Invariants: a connection is in the epoll set exactly while it is in the list; it waits for
 * EPOLLOUT while output is pending (and reads nothing more: back-pressure), else for EPOLLIN.
 * Deadlines are checked by a scan of the list at every wake-up (max_connections bounds it).
 *
 * Answers are made synchronously: while a request is answered (a decision, an admin page, a
 * forwarded exchange), the process serves nothing else; each wait of that answer on its own
 * connection is bounded by read_timeout_ms (fcgi_conn.c). So a process accepts as little as
 * it can while it may be about to be busy: one connection per wake-up, and only after the
 * connections' own events of that wake-up were handled (an answer among them may take long;
 * meanwhile the connection it did not accept goes to a sibling). Every process waiting on the
 * socket is woken for a new connection (no EPOLLEXCLUSIVE, which wakes one, possibly one that
 * is about to answer at length) and the first to accept it has it.
 */
#define _GNU_SOURCE /* accept4 */
#include "../core/fmacros.h"

#include "fcgi_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fcgi_conn.h"
#include "log.h"
#include "clock.h"
#include "settings.h"

#define SRV_EVENTS 64
#define SRV_FD_RESERVE 64       /* descriptors kept for Redis, the proxy, logs */
#define SRV_ACCEPT_PAUSE_MS 100 /* after running out of descriptors with nothing to evict */
#define SRV_REPORT_MS 60000

typedef struct srv {
    const fcgi_server_hooks *h;
    const rl_config *cfg;         /* the configuration fcgi was read from */
    const settings_fastcgi *fcgi; /* its fastcgi section */
    int ep, lfd;
    int listening; /* lfd is in the epoll set */
    int64_t paused_until;
    fcgi_conn *head;
    fcgi_conn *dead; /* removed during this wake-up, freed after it (evs may name them) */
    int n, cap;
    long expired, evicted; /* since the last report */
    int64_t reported;
} srv;

static void srv_remove(srv *s, fcgi_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n--;
    close(c->fd); /* which takes it out of the epoll set */
    c->fd = -1;
    c->is_dead = 1;
    c->next = s->dead;
    s->dead = c;
}

static void srv_bury(srv *s)
{
    while (s->dead != NULL) {
        fcgi_conn *c = s->dead;
        s->dead = c->next;
        fcgi_conn_free(c);
    }
}

static void srv_interest(srv *s, fcgi_conn *c, int out)
{
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};

    if (c->want_out == out)
        return;
    c->want_out = out;
    if (out)
        c->wdeadline = rl_clock_mono_ms() + c->read_ms;
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Once a minute at most: what the deadlines and the cap did. */
static void srv_report(srv *s, int64_t now)
{
    if ((s->expired == 0 && s->evicted == 0) ||
        (s->reported != 0 && now - s->reported < SRV_REPORT_MS))
        return;
    log_warn("fastcgi: closed %ld connection(s) past their deadline and %ld to stay within "
             "max_connections %d (reported at most once a minute)",
             s->expired, s->evicted, s->cap);
    s->expired = s->evicted = 0;
    s->reported = now;
}

/* Answers the ready request of c. Returns 0, or -1 when c was closed. */
static int srv_serve(srv *s, fcgi_conn *c)
{
    char **params = fcgi_conn_params(c);
    proxy_io io = {.params = params,
                   .read = fcgi_conn_read_stdin,
                   .write = fcgi_conn_write_stdout,
                   .ud = c,
                   .body_to_eof = 1};

    if (params == NULL)
        log_warn("400: a request's parameters were malformed or longer than %d bytes",
                 FCGI_PARAMS_MAX);
    int rc = s->h->serve(s->h->ud, &io);
    if (rc != 0) /* cut: the web server must see a failure, never a complete answer */
        fcgi_conn_abort(c, settings_get_proxy(s->h->config(s->h->ud))->timeout_ms);
    if (fcgi_conn_end(c, rc == 0) == FCGI_STEP_CLOSE && !c->closing) {
        srv_remove(s, c);
        return -1;
    }
    return 0;
}

/* Everything c can do now without waiting: send, step through its records, answer. */
static void srv_process(srv *s, fcgi_conn *c)
{
    for (;;) {
        if (c->broken) {
            srv_remove(s, c);
            return;
        }
        if (c->olen > c->ooff) {
            int r = fcgi_conn_flush(c, 0);
            if (r < 0) {
                srv_remove(s, c);
                return;
            }
            if (r > 0) {
                srv_interest(s, c, 1);
                return;
            }
        }
        if (c->closing) {
            srv_remove(s, c);
            return;
        }
        fcgi_step st = fcgi_conn_step(c);
        if (st == FCGI_STEP_READY) {
            if (srv_serve(s, c) != 0)
                return;
            continue;
        }
        if (st == FCGI_STEP_CLOSE) {
            if (c->closing)
                continue; /* send what it is owed first */
            srv_remove(s, c);
            return;
        }
        if (c->olen > c->ooff)
            continue; /* records answered on the spot (FCGI_GET_VALUES...): send them */
        if (c->eof) { /* nothing more will come */
            srv_remove(s, c);
            return;
        }
        srv_interest(s, c, 0);
        return;
    }
}

static void srv_readable(srv *s, fcgi_conn *c)
{
    long n = fcgi_conn_fill(c);

    if (n < 0 && !c->broken)
        return; /* spurious */
    srv_process(s, c);
}

/* Closes the connection that has been in its state the longest, to make room. */
static void srv_evict(srv *s)
{
    fcgi_conn *old = s->head;

    for (fcgi_conn *c = s->head; c != NULL; c = c->next)
        if (c->since < old->since)
            old = c;
    if (old != NULL) {
        srv_remove(s, old);
        s->evicted++;
    }
}

static void srv_listen(srv *s, int on)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    if (on == s->listening)
        return;
    if (epoll_ctl(s->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->lfd, &ev) == 0)
        s->listening = on;
}

/* now: the monotonic ms read last, after the wake-up's events. */
static void srv_accept(srv *s, int64_t now)
{
    const settings_fastcgi *lim = s->fcgi;

    for (int tries = 0; tries < 2; tries++) { /* once more after making room */
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                return; /* the socket is still readable: the next wake-up tries again */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (s->n > 0) {
                    srv_evict(s);
                    continue;
                }
                log_error("fastcgi: cannot accept: %s; pausing %d ms", strerror(errno),
                          SRV_ACCEPT_PAUSE_MS);
                srv_listen(s, 0);
                s->paused_until = rl_clock_mono_ms() + SRV_ACCEPT_PAUSE_MS;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                log_error("fastcgi: accept: %s", strerror(errno));
            }
            return;
        }
        if (s->n >= s->cap)
            srv_evict(s);
        fcgi_conn *c = fcgi_conn_new(fd, lim->read_timeout_ms, lim->idle_timeout_ms, s->cap, now);
        if (c == NULL) {
            log_error("fastcgi: out of memory for a connection");
            close(fd);
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log_error("fastcgi: epoll_ctl: %s", strerror(errno));
            fcgi_conn_free(c);
            return;
        }
        c->next = s->head;
        if (s->head)
            s->head->prev = c;
        s->head = c;
        s->n++;
        return;
    }
}

/* Pushes every deadline but busy's back by ms: the time this process spent answering busy,
 * during which it read nothing from the others. Without it, a client whose request came on
 * time while a sibling connection's answer took long (an admin body, a forwarded exchange)
 * would be closed unread -- a reset for a client that did nothing wrong. Each answer is
 * bounded, so the push is too. */
static void srv_push_deadlines(srv *s, const fcgi_conn *busy, int64_t ms)
{
    for (fcgi_conn *c = s->head; c != NULL; c = c->next) {
        if (c == busy)
            continue;
        c->deadline += ms;
        c->wdeadline += ms;
    }
}

/* Closes every connection past its deadline; returns the ms until the next one (-1: none). */
static int srv_expire(srv *s, int64_t now)
{
    int64_t next = -1;
    fcgi_conn *c = s->head;

    while (c != NULL) {
        fcgi_conn *nx = c->next;
        int64_t dl = c->deadline;
        if (c->want_out && c->wdeadline < dl)
            dl = c->wdeadline;
        if (dl <= now) {
            srv_remove(s, c);
            s->expired++;
        } else if (next < 0 || dl < next) {
            next = dl;
        }
        c = nx;
    }
    if (!s->listening && s->paused_until <= now)
        srv_listen(s, 1);
    if (!s->listening && (next < 0 || s->paused_until < next))
        next = s->paused_until;
    if (next < 0)
        return -1;
    return next - now > SRV_REPORT_MS ? SRV_REPORT_MS : (int)(next - now);
}

/* max_connections, lowered to what the descriptor limit allows (raised when it can be). */
static int srv_cap(int want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + SRV_FD_RESERVE) {
        rlim_t need = (rlim_t)want + SRV_FD_RESERVE;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + SRV_FD_RESERVE) {
        int can = rl.rlim_cur > SRV_FD_RESERVE + 1 ? (int)(rl.rlim_cur - SRV_FD_RESERVE) : 1;
        log_warn("fastcgi: max_connections %d lowered to %d by the descriptor limit (%ld)", want,
                 can, (long)rl.rlim_cur);
        return can;
    }
    return want;
}

int fcgi_server_run(int listen_fd, const fcgi_server_hooks *h)
{
    struct epoll_event evs[SRV_EVENTS];
    srv s = {.h = h, .lfd = listen_fd, .ep = -1};
    int fl = fcntl(listen_fd, F_GETFL), rc = 0, cap_for = 0;
    int64_t now = rl_clock_mono_ms();

    /* Every process sharing the socket runs this loop: none may sleep in accept(). */
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        log_error("fastcgi: cannot make the listening socket non-blocking: %s", strerror(errno));
        return -1;
    }
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (s.ep < 0) {
        log_error("fastcgi: epoll_create1: %s", strerror(errno));
        return -1;
    }
    srv_listen(&s, 1);
    if (!s.listening) {
        log_error("fastcgi: cannot wait on the listening socket: %s", strerror(errno));
        close(s.ep);
        return -1;
    }
    for (;;) {
        if (h->tick(h->ud))
            break;
        /* At start and after a reload (tick swaps it in). The new configuration was made
         * while the one seen last was still in use, so the two never share an address. */
        if (h->config(h->ud) != s.cfg) {
            s.cfg = h->config(h->ud);
            s.fcgi = settings_get_fastcgi(s.cfg);
            if (s.fcgi->max_connections != cap_for) {
                s.cap = srv_cap(s.fcgi->max_connections);
                cap_for = s.fcgi->max_connections;
            }
        }
        /* now is the clock read after the last event (a reload since only makes it early,
         * which never closes a connection too soon): one read per event, not three. */
        int timeout = srv_expire(&s, now);
        srv_bury(&s);
        srv_report(&s, now);
        int n = epoll_pwait(s.ep, evs, SRV_EVENTS, timeout, h->wait_mask);
        now = rl_clock_mono_ms();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("fastcgi: epoll_wait: %s", strerror(errno));
            rc = -1;
            break;
        }
        int accept_now = 0;
        for (int i = 0; i < n; i++) {
            fcgi_conn *c = evs[i].data.ptr;
            if (c == NULL) {
                accept_now = 1; /* after the connections' events: see the header comment */
                continue;
            }
            if (c->is_dead) /* closed earlier in this batch (evicted, say) */
                continue;
            if (c->want_out)
                srv_process(&s, c);
            else
                srv_readable(&s, c);
            int64_t t1 = rl_clock_mono_ms();
            if (t1 > now)
                srv_push_deadlines(&s, c, t1 - now);
            now = t1;
        }
        if (accept_now)
            srv_accept(&s, now);
        srv_bury(&s);
    }
    while (s.head != NULL)
        srv_remove(&s, s.head);
    srv_bury(&s);
    close(s.ep);
    fcgi_conn_free_kept();
    return rc;
}
