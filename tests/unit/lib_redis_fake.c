/* lib_redis_fake.c -- a hostile fake Redis for tests (see lib_redis_fake.h)
 *
 * The parent binds and listens, so the port is known and taken before the child runs; the
 * child only accepts. The child is single-threaded and serves connections one after the
 * other: a client that gave up on a dripping reply closes, the next write fails (EPIPE,
 * SIGPIPE ignored) and the child goes back to accept.
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
#include <unistd.h>

#include "lib_redis_fake.h"
#include "redis_script.h"
#include "lib_redis_server.h"

#define FAKE_ARGS_MAX 256
#define FAKE_ARG_MAX 65536 /* SCRIPT LOAD carries the whole script */

static const char *const mode_names[RLT_FAKE_MODES] = {
    "ok",         "silence", "drip",    "slow",        "huge-array",      "huge-bulk", "long-line",
    "big-string", "nested",  "garbage", "extra-bytes", "close-mid-reply", "close",     "error",
};

const char *rlt_fake_mode_name(rlt_fake_mode m)
{
    return m < RLT_FAKE_MODES ? mode_names[m] : "?";
}

/* Writes all of buf; -1 when the client went away. */
static int fake_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one RESP command: its argument count, the first argument (upper-cased) in name and,
 * for EVALSHA, the number of keys. -1 at EOF or on anything that is not a command. */
static int fake_read_command(FILE *in, char *name, size_t namesize, long *numkeys)
{
    static char arg[FAKE_ARG_MAX + 3];
    long argc, len;
    char line[64];

    if (fgets(line, sizeof line, in) == NULL || line[0] != '*')
        return -1;
    argc = strtol(line + 1, NULL, 10);
    if (argc < 1 || argc > FAKE_ARGS_MAX)
        return -1;
    name[0] = '\0';
    *numkeys = 0;
    for (long i = 0; i < argc; i++) {
        if (fgets(line, sizeof line, in) == NULL || line[0] != '$')
            return -1;
        len = strtol(line + 1, NULL, 10);
        if (len < 0 || len > FAKE_ARG_MAX || fread(arg, 1, (size_t)len + 2, in) != (size_t)len + 2)
            return -1;
        arg[len] = '\0';
        if (i == 0) {
            size_t k = (size_t)len < namesize - 1 ? (size_t)len : namesize - 1;
            memcpy(name, arg, k);
            name[k] = '\0';
            for (char *p = name; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 'a' + 'A');
        } else if (i == 2 && strcmp(name, "EVALSHA") == 0) {
            *numkeys = strtol(arg, NULL, 10);
        }
    }
    return 0;
}

/* What Redis would answer, into buf. */
static size_t fake_normal(const char *name, long numkeys, char *buf, size_t size)
{
    size_t o = 0;

    if (strcmp(name, "SCRIPT") == 0)
        return (size_t)snprintf(buf, size, "$40\r\n%s\r\n", rl_redis_script_sha); /* as Redis */
    if (strcmp(name, "PING") == 0)
        return (size_t)snprintf(buf, size, "+PONG\r\n");
    if (strcmp(name, "FUNCTION") == 0) /* a server before Redis 7 */
        return (size_t)snprintf(buf, size, "-ERR unknown command 'FUNCTION'\r\n");
    if (strcmp(name, "EVALSHA") != 0)
        return (size_t)snprintf(buf, size, "+OK\r\n");
    /* Every rule admitted: allowed 1, remaining 0, reset 1, retry 0; then the time. */
    o += (size_t)snprintf(buf + o, size - o, "*%ld\r\n", 4 * numkeys + 1);
    for (long i = 0; i < numkeys; i++)
        o += (size_t)snprintf(buf + o, size - o, ":1\r\n:0\r\n:1\r\n:0\r\n");
    o += (size_t)snprintf(buf + o, size - o, ":1700000000000\r\n");
    return o;
}

/* Writes bytes until the client goes away. */
static void fake_flood(int fd, const char *head, char fill)
{
    char buf[4096];

    memset(buf, fill, sizeof buf);
    if (fake_write(fd, head, strlen(head)) < 0)
        return;
    while (fake_write(fd, buf, sizeof buf) == 0)
        ;
}

/* Answers one command of a connection. 0 to go on reading, -1 to close it. */
static int fake_answer(const rlt_fake *f, int fd, const char *name, long numkeys, int *evals,
                       int *asked)
{
    static char big[5100];
    char buf[8192];
    size_t len = fake_normal(name, numkeys, buf, sizeof buf);
    static int seen; /* target commands so far, over every connection */
    int hostile =
        f->target != NULL && (strcmp(f->target, "*") == 0 || strcmp(f->target, name) == 0);

    int was_asked = *asked;

    *asked = strcmp(name, "ASKING") == 0;
    if (strcmp(name, "CLUSTER") == 0 && f->cluster_reply != NULL)
        return fake_write(fd, f->cluster_reply, strlen(f->cluster_reply));
    if (strcmp(name, "SENTINEL") == 0 && f->sentinel_reply != NULL)
        return fake_write(fd, f->sentinel_reply, strlen(f->sentinel_reply));
    if (strcmp(name, "EVALSHA") == 0 && f->asking_only && !was_asked)
        return fake_write(fd, "-MOVED 0 127.0.0.1:1\r\n", 22);
    if (strcmp(name, "EVALSHA") == 0 && f->eval_error != NULL) {
        size_t n = strlen(f->eval_error);
        /* A trailing ":SELF" names this fake's own port (a node redirecting to itself). */
        if (n >= 5 && strcmp(f->eval_error + n - 5, ":SELF") == 0)
            snprintf(buf, sizeof buf, "-%.*s:%d\r\n", (int)(n - 5), f->eval_error, f->port);
        else
            snprintf(buf, sizeof buf, "-%s\r\n", f->eval_error);
        return fake_write(fd, buf, strlen(buf));
    }
    if (strcmp(name, "EVALSHA") == 0 && f->noscript && (*evals)++ == 0)
        return fake_write(fd, "-NOSCRIPT No matching script.\r\n", 31);
    if (hostile) {
        seen++;
        hostile = seen > f->after && (!f->once || seen == f->after + 1);
    }
    if (!hostile)
        return fake_write(fd, buf, len);
    switch (f->mode) {
    case RLT_FAKE_OK: return fake_write(fd, buf, len);
    case RLT_FAKE_SILENT: return 0; /* the next read waits for a command that never comes */
    case RLT_FAKE_DRIP:
        /* The right start of the reply, then an integer line that never ends. */
        for (size_t i = 0;; i++) {
            char c = i + 1 < len ? buf[i] : '7';
            if (fake_write(fd, &c, 1) < 0)
                return -1;
            rlt_sleep_ms(f->drip_ms);
        }
    case RLT_FAKE_SLOW: rlt_sleep_ms(f->delay_ms); return fake_write(fd, buf, len);
    case RLT_FAKE_HUGE_ARRAY: return fake_write(fd, "*2147483647\r\n", 13);
    case RLT_FAKE_HUGE_BULK: fake_flood(fd, "$2147483647\r\n", 'x'); return -1;
    case RLT_FAKE_LONG_LINE: fake_flood(fd, "-ERR ", 'x'); return -1;
    case RLT_FAKE_BIG_STRING:
        memset(big, 'x', sizeof big);
        memcpy(big, "$5000\r\n", 7);
        memcpy(big + 7 + 5000, "\r\n", 2);
        return fake_write(fd, big, 7 + 5000 + 2);
    case RLT_FAKE_NESTED: return fake_write(fd, "*1\r\n*1\r\n:1\r\n", 12);
    case RLT_FAKE_GARBAGE: return fake_write(fd, "?garbage\r\n", 10);
    case RLT_FAKE_EXTRA: /* in one write, so that the client reads both at once */
        memcpy(buf + len, "+EXTRA\r\n", 8);
        return fake_write(fd, buf, len + 8);
    case RLT_FAKE_CLOSE_MID: fake_write(fd, buf, len / 2); return -1;
    case RLT_FAKE_CLOSE: return -1;
    case RLT_FAKE_ERROR: return fake_write(fd, "-ERR hostile\r\n", 14);
    case RLT_FAKE_MODES: break;
    }
    return -1;
}

static void fake_serve(const rlt_fake *f, int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL), evals = 0, asked = 0;
        char name[32];
        long numkeys;
        FILE *in;

        if (fd < 0)
            continue;
        in = fdopen(dup(fd), "r");
        if (in == NULL) {
            close(fd);
            continue;
        }
        while (fake_read_command(in, name, sizeof name, &numkeys) == 0 &&
               fake_answer(f, fd, name, numkeys, &evals, &asked) == 0)
            ;
        fclose(in);
        close(fd);
    }
}

int rlt_fake_start(rlt_fake *f)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    f->pid = 0;
    signal(SIGPIPE, SIG_IGN);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
        perror("rlt_fake: listen");
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    f->port = ntohs(sa.sin_port);
    f->pid = rlt_fork_child();
    if (f->pid < 0) {
        perror("rlt_fake: fork");
        f->pid = 0;
        close(lfd);
        return -1;
    }
    if (f->pid == 0) {
        fake_serve(f, lfd);
        _exit(0);
    }
    close(lfd);
    return 0;
}

void rlt_fake_stop(rlt_fake *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGKILL);
    while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    f->pid = 0;
}
