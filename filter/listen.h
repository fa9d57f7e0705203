/* listen.h -- the prefork daemon's listening socket: TCP ADDRESS:PORT or a unix socket path */
#ifndef FILTER_LISTEN_H
#define FILTER_LISTEN_H

#include <stddef.h>

/* Opens a non-blocking, close-on-exec listening socket for spec:
 *   "127.0.0.1:9000", "[::1]:9000"  TCP on exactly that numeric address
 *   "/run/ratelimit-filter.sock"     a unix socket, mode 0660; a stale socket file (nobody
 *                                    accepting on it) is replaced, a live one or any other
 *                                    kind of file is an error
 * Returns the descriptor, or -1 with why in err (size bytes). */
int listen_open(const char *spec, char *err, size_t size);

/* Closes fd and removes the socket file when spec is a path. */
void listen_close(int fd, const char *spec);

#endif
