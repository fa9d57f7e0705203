/* lib_redis_server.c -- a throwaway redis-server for tests (see lib_redis_server.h)
 *
 * The server is exec'd directly by a forked child, so the pid we hold is the server's own
 * (no shell in between) and stopping it never depends on a pid file or a process name.
 */
#include "fmacros.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "lib_redis_server.h"

#define RLT_START_TRIES 5
#define RLT_START_WAIT_MS 5000

long long rlt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rlt_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int rlt_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

pid_t rlt_fork_child(void)
{
    pid_t parent = getpid(), pid = fork();

    if (pid != 0)
        return pid;
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
#endif
    (void)parent;
    return 0;
}

static pid_t rlt_spawn(const rlt_redis *s)
{
    char port[16], pidfile[300], logfile[300];
    const char *argv[32];
    int a = 0;
    pid_t pid;

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", s->dir);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", s->dir);
    argv[a++] = "redis-server";
    argv[a++] = "--port";
    argv[a++] = port;
    argv[a++] = "--bind";
    argv[a++] = "127.0.0.1";
    argv[a++] = "--save";
    argv[a++] = "";
    argv[a++] = "--appendonly";
    argv[a++] = "no";
    argv[a++] = "--daemonize";
    argv[a++] = "no";
    argv[a++] = "--dir";
    argv[a++] = s->dir;
    argv[a++] = "--pidfile";
    argv[a++] = pidfile;
    argv[a++] = "--logfile";
    argv[a++] = logfile;
    argv[a++] = "--unixsocket";
    argv[a++] = s->socket;
    argv[a++] = "--unixsocketperm";
    argv[a++] = "700";
    if (s->password[0] != '\0') {
        argv[a++] = "--requirepass";
        argv[a++] = s->password;
    }
    argv[a] = NULL;

    pid = rlt_fork_child();
    if (pid != 0)
        return pid;
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* Waits until the server answers PING (or NOAUTH, which also proves it is up). */
static int rlt_wait_ready(rlt_redis *s)
{
    long long deadline = rlt_now_ms() + RLT_START_WAIT_MS;

    while (rlt_now_ms() < deadline) {
        int status;
        redisContext *c;

        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1; /* exited: most likely the port was taken */
        }
        c = redisConnectWithTimeout("127.0.0.1", s->port, (struct timeval){0, 200000});
        if (c != NULL && c->err == 0) {
            redisReply *r;
            redisSetTimeout(c, (struct timeval){0, 500000});
            r = redisCommand(c, "PING");
            if (r != NULL) {
                int up = r->type == REDIS_REPLY_STATUS ||
                         (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0);
                freeReplyObject(r);
                if (up) {
                    redisFree(c);
                    return 0;
                }
            }
        }
        redisFree(c);
        rlt_sleep_ms(10);
    }
    fprintf(stderr, "rlt_redis: server on port %d did not answer PING in %d ms\n", s->port,
            RLT_START_WAIT_MS);
    return -1;
}

int rlt_redis_restart(rlt_redis *s)
{
    s->pid = rlt_spawn(s);
    if (s->pid < 0) {
        s->pid = 0;
        perror("rlt_redis: fork");
        return -1;
    }
    if (rlt_wait_ready(s) < 0) {
        rlt_redis_kill(s);
        return -1;
    }
    return 0;
}

int rlt_redis_start(rlt_redis *s, const char *password)
{
    int try;

    memset(s, 0, sizeof(*s));
    signal(SIGPIPE, SIG_IGN);
    snprintf(s->dir, sizeof(s->dir), "%s/rlt-redis-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(s->dir) == NULL) {
        perror("rlt_redis: mkdtemp");
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->socket, sizeof(s->socket), "%s/redis.sock", s->dir);
    if (password != NULL)
        snprintf(s->password, sizeof(s->password), "%s", password);
    /* The port may be taken between probing and binding: try a few. */
    for (try = 0; try < RLT_START_TRIES; try++) {
        s->port = rlt_free_port();
        if (s->port > 0 && rlt_redis_restart(s) == 0)
            return 0;
    }
    fprintf(stderr, "rlt_redis: could not start redis-server (see %s/redis.log)\n", s->dir);
    return -1;
}

void rlt_redis_kill(rlt_redis *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL); /* also ends a SIGSTOPped server */
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

void rlt_redis_stop(rlt_redis *s)
{
    static const char *const files[] = {"redis.pid", "redis.log", "redis.sock", "dump.rdb"};
    char path[320];
    size_t i;

    rlt_redis_kill(s);
    if (s->dir[0] == '\0')
        return;
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
        unlink(path);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}

redisContext *rlt_redis_client(const rlt_redis *s)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, (struct timeval){1, 0});

    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    if (s->password[0] != '\0') {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}
