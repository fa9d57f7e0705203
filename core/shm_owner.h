/* shm_owner.h -- creating a shared-memory segment owned as the configuration says (internal)
 *
 * The table's generations (shm_gen.c, under a private name) and its statistics (stats.c) are
 * created the same way: O_EXCL with mode 0600, so that until rl_shm_create_owned returns only
 * the creating process can open it, then fchown/fchmod on the fd to shm.user, shm.group and
 * shm.mode, all before the segment is sized or has its real name. One that meets EACCES on a
 * still-empty segment (an older build's, or the statistics being made) waits for the owner
 * (rl_shm_wait_owner). An existing segment is never changed: attaching changes no owner; a
 * replacement is a new segment, owned anew (rl_shm_owner_adopt).
 */
#ifndef RL_SHM_OWNER_H
#define RL_SHM_OWNER_H

#include <sys/stat.h>

#include "config_types.h"

/* rl_shm_create_owned's "ownership failed, err set, name removed". */
#define RL_SHM_OWN_FAILED (-2)

/* Creates NAME (O_RDWR | O_CREAT | O_EXCL) owned per own (NULL: the process's user and group,
 * mode 0600). Returns the fd; -1 with errno when shm_open failed (EEXIST: it exists, attach
 * to it); RL_SHM_OWN_FAILED with err set when the owner or mode could not be applied, the name
 * then removed again. err may be NULL. */
int rl_shm_create_owned(const char *name, const rl_shm_config *own, rl_error *err);
/* The same, its messages calling the segment `shown` (a private name's real one). */
int rl_shm_create_owned_as(const char *name, const char *shown, const rl_shm_config *own,
                           rl_error *err);

/* 0 when this process may give a segment it creates to own's user and group (root, or own's
 * user with own's group among its groups); else -1 with err set (may be NULL) as
 * rl_shm_create_owned's fchown failure would. Creates nothing: for -t. */
int rl_shm_may_give(const char *name, const rl_shm_config *own, rl_error *err);

/* 0 when this process may rename a new generation over the segment `old` describes (stat):
 * in the sticky /dev/shm only its owner or root may; else -1 with err (may be NULL). */
int rl_shm_may_replace(const char *name, const struct stat *old, rl_error *err);

/* Run as root, fills what own leaves unset (user, group, mode 0) from the generation being
 * replaced (stat), so that a new generation keeps the pool's owner; otherwise does nothing. */
void rl_shm_owner_adopt(rl_shm_config *own, const struct stat *old);

/* For shm_open(NAME, O_RDWR) that failed with errnum: 1 after a 2 ms nap when it was EACCES
 * on a segment still empty (its creator has not given it to its owner yet: try again, within
 * the caller's bound), else 0. errno is kept. */
int rl_shm_wait_owner(const char *name, int errnum);

/* For a segment another process made (fd open on NAME): fstat until its creator has sized
 * it, napping 2 ms between looks, until wait_ms after start (monotonic ms). 0 with *st, or -1
 * with err set (fstat failed, or still empty: its creator died?). The table and the
 * statistics attach so. */
int rl_shm_wait_sized(int fd, const char *name, int64_t start, int wait_ms, struct stat *st,
                      rl_error *err);

/* flock(LOCK_EX) on the segment fd has open, waiting (napping 2 ms) up to wait_ms for its
 * holder: a replacer holds the old segment's lock while it replaces it. 0 held, or -1 with
 * errno (EWOULDBLOCK: still held after wait_ms). The table and the statistics replace so. */
int rl_shm_flock_wait(int fd, int64_t wait_ms);

/* 1 when /dev/shm NAME still leads to the file fd has open, else 0. A replacer asks under
 * the old segment's flock: another process may have replaced or removed it meanwhile. The
 * table and the statistics replace so. */
int rl_shm_still_named(const char *name, int fd);

/* Sets err (may be NULL) for shm_open(NAME, O_RDWR) that failed with errnum: for EACCES, who
 * owns the segment, who we are, and what to do. */
void rl_shm_open_error(const char *name, int errnum, rl_error *err);

#endif
