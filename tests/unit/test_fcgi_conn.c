/* test_fcgi_conn.c -- one FastCGI connection's output (filter/fcgi_conn.c) over a socketpair
 * whose send buffer is small, so a write meets EAGAIN as with a web server that reads slowly
 *
 * The daemon's behaviour on the wire is shown by test_fastcgi_conns.sh; here, the write
 * deadline the server loop keeps while it waits for output (wdeadline), which no wire test can
 * reach on time: a pipelined answer must not inherit the previous answer's deadline.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../filter/fcgi_conn.h"
#include "leakcheck.h"

static void fini(void)
{
    fcgi_conn_free_kept();
    rl_test_leak_check();
}

TestSuite(fcgi_conn, .fini = fini);

/* Reads everything the peer has, without waiting. */
static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* The loop waits for output (want_out) with an old deadline; the answer then goes out in one
 * write: the next answer's wait must start from now, not from the old deadline. */
Test(fcgi_conn, finished_output_restarts_the_write_deadline)
{
    int sv[2], small = 4096;
    static char body[32768];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    cr_assert_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    fcgi_conn *c = fcgi_conn_new(sv[0], 5000, 5000, 8, rl_clock_mono_ms());
    cr_assert_not_null(c);
    c->id = 1;
    memset(body, 'x', sizeof body);
    cr_assert_eq(fcgi_conn_write_stdout(c, body, (int)sizeof body), 0);
    cr_assert_eq(fcgi_conn_flush(c, 0), 1, "the small send buffer must fill");

    c->want_out = 1; /* as srv_interest does on EAGAIN */
    int64_t before = rl_clock_mono_ms();
    int r;
    do { /* the peer reads; the rest goes out, the last of it in one write */
        drain(sv[1]);
        c->wdeadline = 1; /* long past: as if set for an earlier answer */
        r = fcgi_conn_flush(c, 0);
    } while (r == 1);
    cr_assert_eq(r, 0);
    cr_expect_geq(c->wdeadline, before + 5000, "wdeadline %lld, flush began at %lld",
                  (long long)c->wdeadline, (long long)before);
    fcgi_conn_free(c);
    close(sv[1]);
}
