/* listen.c -- the prefork daemon's listening socket (see listen.h)
 *
 * The socket is non-blocking because every worker waits on it and only one wins each
 * connection: the others must get EAGAIN from accept(), not sleep in it (fcgi_loop.c).
 * Accepted sockets are made non-blocking by the server loop itself (fcgi_server.c, accept4).
 */
#include "../core/fmacros.h"

#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ratelimit.h"
#include "error.h"

#define LISTEN_BACKLOG 1024

static int listen_fail(char *err, size_t size, const char *fmt, ...) RL_PRINTF(3, 4);
static int listen_fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rl_errbuf_vset(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

static int listen_finish(int fd, const char *spec, char *err, size_t size)
{
    int fl = fcntl(fd, F_GETFL);

    if (listen(fd, LISTEN_BACKLOG) != 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        listen_fail(err, size, "cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* A socket file left by a daemon that died is removed; one somebody accepts on is not. */
static int listen_unix_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t size)
{
    struct stat st;
    int fd, live;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : listen_fail(err, size, "%s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return listen_fail(err, size, "%s exists and is not a socket", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return listen_fail(err, size, "socket: %s", strerror(errno));
    live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    close(fd);
    if (live)
        return listen_fail(err, size, "%s is in use by a running server", path);
    if (unlink(path) != 0)
        return listen_fail(err, size, "cannot remove the stale socket %s: %s", path,
                           strerror(errno));
    return 0;
}

static int listen_unix(const char *path, char *err, size_t size)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd, rc;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return listen_fail(err, size, "socket path %s is longer than %zu bytes", path,
                           sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (listen_unix_stale(path, &sa, err, size) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return listen_fail(err, size, "socket: %s", strerror(errno));
    old = umask(0117); /* the file is born 0660: the web server's group may connect */
    rc = bind(fd, (const struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || chmod(path, 0660) != 0) {
        listen_fail(err, size, "cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return listen_finish(fd, path, err, size);
}

static int listen_tcp(const char *spec, char *err, size_t size)
{
    char host[128];
    const char *colon = strrchr(spec, ':'), *h = spec;
    size_t hlen;
    struct addrinfo hints, *ai = NULL;
    int fd, one = 1, rc;

    if (colon == NULL || colon[1] == '\0')
        return listen_fail(err, size, "--listen \"%s\": expected ADDRESS:PORT or /path.sock", spec);
    hlen = (size_t)(colon - spec);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof host)
        return listen_fail(err, size, "--listen \"%s\": expected ADDRESS:PORT or /path.sock", spec);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0)
        return listen_fail(err, size, "--listen \"%s\": %s (a numeric address and port)", spec,
                           gai_strerror(rc));
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return listen_fail(err, size, "socket: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0) {
        listen_fail(err, size, "cannot bind %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return listen_finish(fd, spec, err, size);
}

int listen_open(const char *spec, char *err, size_t size)
{
    return spec[0] == '/' ? listen_unix(spec, err, size) : listen_tcp(spec, err, size);
}

void listen_close(int fd, const char *spec)
{
    if (fd >= 0)
        close(fd);
    if (spec[0] == '/')
        unlink(spec);
}
