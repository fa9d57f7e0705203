/* redis_io.h -- Redis exchanges against one deadline, with replies of bounded size (internal;
 * see redis_io.c) */
#ifndef RL_REDIS_IO_H
#define RL_REDIS_IO_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "ratelimit.h"

/* The largest reply a command of a decision can legitimately get. EVALSHA answers an array of
 * 4 integers per rule and one more (redis_script.c); AUTH, SELECT and PING a status; SCRIPT LOAD
 * a 40-byte SHA1; any of them an error line of a few hundred bytes. Anything larger is refused
 * before hiredis allocates it: an array or nested array longer than ELEMENTS_MAX, a string
 * (bulk, status or error) longer than STRING_MAX, a reply of more than BYTES_MAX bytes. */
#define RL_RIO_ELEMENTS_MAX (4 * RL_MAX_MATCH + 1)
#define RL_RIO_STRING_MAX 4096
/* One array of ELEMENTS_MAX integers (":" + 20 digits + CRLF each) or one string, framed. */
#define RL_RIO_BYTES_MAX (RL_RIO_STRING_MAX + 24 * RL_RIO_ELEMENTS_MAX + 64)

/* The outcome of an exchange. */
typedef enum rl_rio_status {
    RL_RIO_OK = 0,
    RL_RIO_TIMEOUT,  /* the deadline passed */
    RL_RIO_CLOSED,   /* the server closed or reset the connection before any byte of the reply */
    RL_RIO_IO,       /* any other I/O error, or closed mid-reply */
    RL_RIO_PROTOCOL, /* bytes that are no reply, or a reply over the bounds above */
    RL_RIO_NOMEM,
} rl_rio_status;

/* Monotonic milliseconds: the clock deadlines are on. */
int64_t rl_rio_now_ms(void);

/* Opens a non-blocking context to cfg's socket or host:port, waiting for the connect until
 * `deadline` or connect_ms from now (when > 0), whichever is sooner. RL_RIO_OK and *out, or a
 * status with a one-line reason in err (nothing to free). A host name is resolved first, in a
 * blocking lookup no deadline covers (the MANUAL recommends an address). */
rl_rio_status rl_rio_connect(const rl_redis_config *cfg, int64_t deadline, int connect_ms,
                             redisContext **out, char *err, size_t errsize);

/* Sends what c's output buffer holds (redisAppend*) and reads one reply, by `deadline`. The
 * reply must fit the bounds above and be the only thing the server sent. RL_RIO_OK and *reply
 * (freeReplyObject), or a status with a reason in err; the context is then unusable. */
rl_rio_status rl_rio_exchange(redisContext *c, int64_t deadline, redisReply **reply, char *err,
                              size_t errsize);

/* A Redis Cluster slot map (CLUSTER SLOTS, redis_cluster.c) is the one reply with nested
 * arrays: per slot range [start, end, [host, port, id, [metadata]], replicas...]. Bounds: arrays
 * nested up to MAP_DEPTH, each of at most MAP_ELEMENTS, MAP_BYTES in all (a fully fragmented
 * map of 16384 ranges with two nodes each is about 2.5 MB: beyond that, refused). */
#define RL_RIO_MAP_ELEMENTS 16384
#define RL_RIO_MAP_DEPTH 4
#define RL_RIO_MAP_BYTES (4 << 20)

/* rl_rio_exchange with the slot map's bounds. */
rl_rio_status rl_rio_exchange_map(redisContext *c, int64_t deadline, redisReply **reply, char *err,
                                  size_t errsize);

/* Whether a connection idle since its last exchange still looks usable: 0 when the server
 * closed or reset it (or sent bytes nobody asked for), 1 otherwise. Never waits. */
int rl_rio_alive(const redisContext *c);

/* The reply object functions behind rl_rio_exchange's bounds, for a reader of one's own (the
 * fuzz target): install with reader->fn = &rl_rio_bounded_fns and reader->privdata pointing
 * to an rl_rio_bound whose dflt is the reader's original fn. A refused object makes the reader
 * fail (hiredis calls it out of memory); why then says what was refused. */
typedef struct rl_rio_bound {
    redisReplyObjectFunctions *dflt; /* hiredis' own functions, which build the reply */
    char why[96];                    /* "" until something is refused */
    int map; /* 0: a decision's bounds (above); 1: a slot map's (RL_RIO_MAP_*) */
} rl_rio_bound;
extern redisReplyObjectFunctions rl_rio_bounded_fns;

#endif
