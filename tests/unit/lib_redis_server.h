/* lib_redis_server.h -- a throwaway redis-server for tests
 *
 * rlt_redis_start() runs `redis-server` (from PATH) as a child of the calling process in a
 * fresh temp dir, on a free 127.0.0.1 port and on a unix socket, with no persistence, and
 * waits (at most 5 s) until it answers PING. rlt_redis_stop() kills it by PID, reaps it and
 * removes the dir; call it from a .fini so it runs on failed assertions too. On Linux the
 * server also dies with the test process (PR_SET_PDEATHSIG), so a crashing test leaks none.
 * The test process must ignore SIGPIPE; rlt_redis_start() does that. rlt_redis_setup and
 * rlt_redis_teardown are the usual .init and .fini around one such server, rlt_srv.
 */
#ifndef RLT_REDIS_SERVER_H
#define RLT_REDIS_SERVER_H

#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct rlt_redis {
    pid_t pid;              /* 0 when not running */
    int port;
    char dir[256];          /* temp dir, owned: removed by rlt_redis_stop */
    char socket[300];       /* unix socket path inside dir */
    char password[64];      /* requirepass, "" for none */
} rlt_redis;

/* Starts a server; password may be NULL. 0, or -1 with a message on stderr. */
int rlt_redis_start(rlt_redis *s, const char *password);
/* Starts it again on the same port and socket after rlt_redis_kill. 0 or -1. */
int rlt_redis_restart(rlt_redis *s);
/* Kills the server (SIGKILL) and reaps it, keeping its dir. Safe when not running. */
void rlt_redis_kill(rlt_redis *s);
/* Kills the server and removes its dir. Safe to call twice or after a failed start. */
void rlt_redis_stop(rlt_redis *s);
/* A new client connection (authenticated when a password is set), or NULL. */
redisContext *rlt_redis_client(const rlt_redis *s);
/* The test's one server (lib_redis_fixture.c: criterion), for a suite's or a test's .init
 * and .fini:
 *   TestSuite(x, .init = rlt_redis_setup, .fini = rlt_redis_teardown);
 * rlt_redis_setup starts rlt_srv (no password) or fails the test; rlt_redis_teardown stops it
 * (also when it never started) and then fails the test if it leaked (rl_test_leak_check). */
extern rlt_redis rlt_srv;
void rlt_redis_setup(void);
void rlt_redis_teardown(void);
/* fork(), the child dying with the test process (PR_SET_PDEATHSIG on Linux; it exits at once
 * when the parent is already gone). The child's servers never outlive a crashed test. */
pid_t rlt_fork_child(void);
/* A port on 127.0.0.1 that was free a moment ago, or -1. */
int rlt_free_port(void);
/* Monotonic milliseconds. */
long long rlt_now_ms(void);
void rlt_sleep_ms(long ms);

#endif
