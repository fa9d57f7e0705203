/* lib_redis_fake.h -- a hostile fake Redis for tests
 *
 * rlt_fake_start() forks a child that listens on a free 127.0.0.1 port and serves one
 * connection at a time. It reads RESP commands and answers them as Redis would for the
 * decision script (AUTH, SELECT: +OK; SCRIPT LOAD: a SHA1; EVALSHA: every rule admitted;
 * PING: +PONG; CLUSTER and EVALSHA as set below), except the command named `target` (or every command, target "*"), which gets
 * the hostile answer of `mode`. rlt_fake_stop() kills the child by PID and reaps it; it also
 * dies with the test process (PR_SET_PDEATHSIG). The test process must ignore SIGPIPE.
 */
#ifndef RLT_REDIS_FAKE_H
#define RLT_REDIS_FAKE_H

#include <sys/types.h>

typedef enum rlt_fake_mode {
    RLT_FAKE_OK,         /* a normal answer */
    RLT_FAKE_SILENT,     /* reads the command, never answers */
    RLT_FAKE_DRIP,       /* a reply that never ends, one byte every drip_ms */
    RLT_FAKE_SLOW,       /* the normal answer, after delay_ms */
    RLT_FAKE_HUGE_ARRAY, /* "*2147483647\r\n", then silence */
    RLT_FAKE_HUGE_BULK,  /* "$2147483647\r\n", then bytes as fast as they go */
    RLT_FAKE_LONG_LINE,  /* "-ERR " and then bytes without an end of line, as fast as they go */
    RLT_FAKE_BIG_STRING, /* a whole 5000-byte bulk string */
    RLT_FAKE_NESTED,     /* "*1\r\n*1\r\n:1\r\n" */
    RLT_FAKE_GARBAGE,    /* "?garbage\r\n", not RESP */
    RLT_FAKE_EXTRA,      /* the normal answer and bytes nobody asked for */
    RLT_FAKE_CLOSE_MID,  /* half a reply, then close */
    RLT_FAKE_CLOSE,      /* close without a byte */
    RLT_FAKE_ERROR,      /* "-ERR hostile" */
    RLT_FAKE_MODES
} rlt_fake_mode;

typedef struct rlt_fake {
    pid_t pid; /* 0 when not running */
    int port;
    rlt_fake_mode mode;
    const char *target; /* "EVALSHA", "SCRIPT", "AUTH", "SELECT", "PING", "*", or NULL */
    int drip_ms;        /* RLT_FAKE_DRIP */
    int delay_ms;       /* RLT_FAKE_SLOW */
    int noscript;       /* also answer the first EVALSHA of each connection with NOSCRIPT */
    int after;          /* answer the target normally this many times first (all connections) */
    int once;           /* then be hostile once only, and normal again after */
    /* Redis Cluster (redis_cluster.c): the answer to CLUSTER (a whole RESP reply, e.g. a
     * recorded CLUSTER SLOTS) when not NULL; the answer to EVALSHA, an error line without
     * "-" and CRLF (e.g. "MOVED 12 127.0.0.1:PORT"; a trailing ":SELF" stands for the fake's own port), when not NULL; with asking_only, an
     * EVALSHA not right after ASKING on its connection is answered "-MOVED 0 127.0.0.1:1"
     * (the target of an ASK redirect refuses a command that was not asked). */
    const char *cluster_reply;
    const char *sentinel_reply; /* the answer to SENTINEL (a whole RESP reply) when not NULL */
    const char *eval_error;
    int asking_only;
} rlt_fake;

/* Starts the fake with f's mode, target and times (set them first). 0, or -1 with a message
 * on stderr. */
int rlt_fake_start(rlt_fake *f);
/* Kills and reaps it. Safe when not running. */
void rlt_fake_stop(rlt_fake *f);
/* The mode's name, for messages and FIGURE lines. */
const char *rlt_fake_mode_name(rlt_fake_mode m);

#endif
