/* fcgi_conn.h -- one FastCGI connection: its records in, its answers out, its deadline
 *
 * A connection is owned by the server loop (fcgi_server.c), which reads into it and asks it
 * to step through the records it has (fcgi_conn_step) until a request's parameters are
 * complete; the loop then answers the request through the connection's stream callbacks
 * (fcgi_conn_read_stdin, fcgi_conn_write_stdout: they wait, each wait bounded) and ends it
 * (fcgi_conn_end). One request at a time: a second FCGI_BEGIN_REQUEST while one is active is
 * refused with FCGI_CANT_MPX_CONN; pipelined requests are taken in order.
 *
 * Memory: the read buffer (FCGI_CONN_RBUF bytes), the parameters of the request being read
 * (at most FCGI_PARAMS_MAX: more are discarded and the request answered 400) and the output
 * not yet taken by the peer (sent with a wait when it passes FCGI_CONN_OUT_HIGH). The last
 * connection closed is kept, with its buffers when they are no larger than between two
 * requests, and reused by the next fcgi_conn_new (until fcgi_conn_free_kept).
 */
#ifndef FILTER_FCGI_CONN_H
#define FILTER_FCGI_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi_rec.h"

#define FCGI_CONN_RBUF 16384
#define FCGI_PARAMS_MAX 131072 /* bytes of one request's encoded parameters */
#define FCGI_CONN_OUT_HIGH 65536
#define FCGI_SMALL_MAX 1024 /* content kept of a management record (FCGI_GET_VALUES) */

typedef enum fcgi_conn_state {
    FCGI_CONN_READING, /* a request (or a fresh connection's first one) is being read */
    FCGI_CONN_IDLE,    /* a kept connection between requests */
    FCGI_CONN_DRAIN,   /* answered; the rest of its body is read and discarded */
} fcgi_conn_state;

typedef enum fcgi_step {
    FCGI_STEP_MORE = 0, /* every buffered byte was used: read more */
    FCGI_STEP_READY,    /* a request's parameters are complete: answer it */
    FCGI_STEP_CLOSE,    /* close the connection (protocol error, or done) */
} fcgi_step;

typedef struct fcgi_conn {
    int fd;
    struct fcgi_conn *prev, *next; /* the server's list */
    fcgi_conn_state state;
    int64_t since;    /* start of the current state, for eviction (oldest first) */
    int64_t deadline;  /* monotonic ms at which the state's time is up */
    int64_t wdeadline; /* while output is pending: when it must have moved again */
    int read_ms;       /* the read deadline (each wait during an answer, too) */
    int idle_ms;       /* the idle deadline */
    int max_conns;     /* said in FCGI_GET_VALUES_RESULT */
    int eof;           /* the peer closed its side */
    int broken;        /* a read or write failed or timed out: close it now */
    int closing;       /* close once the pending output went out */
    int want_out;      /* the server waits for EPOLLOUT (output pending), not EPOLLIN */
    int is_dead;       /* closed by the server, to be freed */
    fcgi_parser parser;
    uint8_t *rbuf;
    size_t roff, rlen; /* unread bytes: rbuf[roff..rlen) */
    /* the request */
    unsigned id; /* 0: none active */
    int role, keep;
    int params_done, params_over, stdin_done, answered, aborted;
    uint8_t *pbuf;
    size_t plen, pcap;
    uint8_t small[FCGI_SMALL_MAX];
    size_t small_len;
    /* output */
    uint8_t *obuf;
    size_t ooff, olen, ocap;
    size_t open_rec; /* offset in obuf of the STDOUT record still being filled, or SIZE_MAX */
} fcgi_conn;

/* A connection on fd (non-blocking, now owned), its first deadline counted from now
 * (monotonic ms); NULL when out of memory (fd not closed). */
fcgi_conn *fcgi_conn_new(int fd, int read_ms, int idle_ms, int max_conns, int64_t now);
/* Closes the descriptor and frees everything. NULL is fine. */
void fcgi_conn_free(fcgi_conn *c);

/* Reads what the socket has (never waits). Returns bytes read, 0 at EOF, -1 when nothing was
 * there (EAGAIN) or on error (then c->broken). */
long fcgi_conn_fill(fcgi_conn *c);

/* Steps through the buffered records (see fcgi_step). */
fcgi_step fcgi_conn_step(fcgi_conn *c);

/* The ready request's parameters as "NAME=value" strings (FCGI_ROLE first), in storage that
 * lives until the next call. NULL when they are malformed or were longer than
 * FCGI_PARAMS_MAX (answer 400). */
char **fcgi_conn_params(fcgi_conn *c);

/* proxy_io callbacks over the active request (ud = the connection): read its body (FCGI_STDIN)
 * and write its answer (FCGI_STDOUT). */
int fcgi_conn_read_stdin(void *ud, char *buf, int n);
int fcgi_conn_write_stdout(void *ud, const char *buf, int n);

/* Ends the active request: its end-of-stream and FCGI_END_REQUEST (when ok), and decides what
 * comes next (c->state; FCGI_STEP_CLOSE with c->closing when the web server did not ask to
 * keep the connection). When !ok the answer was cut: nothing more is sent, the connection
 * must be closed at once (FCGI_STEP_CLOSE, closing not set). */
fcgi_step fcgi_conn_end(fcgi_conn *c, int ok);

/* Ends a cut answer as an error: flushes what was made, waits (at most wait_ms) until the web
 * server has read every byte sent (TIOCOUTQ: on a unix socket the bytes its reader has not
 * consumed, on TCP the bytes it has not acknowledged), then shuts the connection down with no
 * FCGI_END_REQUEST. lighttpd, finding the end in the same event as the answer's head, would
 * pass on a Content-Length of what it got: a complete-looking truncated answer. The caller
 * closes the connection afterwards. */
void fcgi_conn_abort(fcgi_conn *c, int wait_ms);

/* Enters state st at now (its deadline: idle_ms for IDLE, read_ms otherwise). */
void fcgi_conn_set_state(fcgi_conn *c, fcgi_conn_state st, int64_t now);

/* Sends buffered output without waiting (wait == 0) or waiting up to read_ms for each bit of
 * progress. Returns 0 when all went, 1 when some is left (wait == 0), -1 on failure. */
int fcgi_conn_flush(fcgi_conn *c, int wait);

/* Frees what this module keeps between connections: the storage behind fcgi_conn_params and
 * the last closed connection, kept with its buffers for the next one. */
void fcgi_conn_free_kept(void);

#endif
