/* shm_owner.c -- the owner, group and mode of the segments this process creates
 *
 * See shm_owner.h. The ownership is applied to the fd returned by the O_EXCL create, before
 * ftruncate: until then the segment is the creator's, mode 0600 (nobody else can open it),
 * and empty. The table's segments are made under a private name and only then given the real
 * one (shm_gen.c), the statistics' under the real name (an attacher waits for its size); so
 * no process ever maps a segment whose owner or mode is not the configured one. fchown is
 * skipped when the segment already has the wanted ids, so a pool running as shm.user itself
 * needs no privilege; a process that is neither root nor that user cannot give the segment
 * away and fails with a message instead of creating one the pool could not open.
 *
 * A new generation replaces the old one with rename(2) in the sticky /dev/shm, which only the
 * old segment's owner or root may do (rl_shm_may_replace says so before any work). Root
 * gives it to shm.user/shm.group/shm.mode, and what the configuration leaves unset is taken
 * from the generation it replaces (rl_shm_owner_adopt): a replacement run as root never
 * leaves the pool a segment it cannot open. -t asks the same questions (rl_shm_may_give,
 * rl_shm_may_replace) so that it fails exactly when a start by its user would.
 */
#include "fmacros.h"

#include "shm_owner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"

#define SHM_OWNER_MODE_DEFAULT 0600
#define SHM_OWNER_DIR "/dev/shm" /* where glibc keeps POSIX shared memory */

/* The error of a process that may not give a segment to own's ids (fchown's errnum). */
static void owner_give_err(rl_error *err, const char *name, const rl_shm_config *own, int errnum)
{
    rl_errorf(err,
              "shm \"%s\": cannot give it to uid %ld, gid %ld (shm.user, shm.group): %s; "
              "create it as root or as that user",
              name, own->uid_set ? (long)own->uid : -1L, own->gid_set ? (long)own->gid : -1L,
              strerror(errnum));
}

/* Gives the fresh segment on fd to own's user and group, with own's mode; name is what the
 * messages call it. 0, or -1 with err. */
static int owner_apply(int fd, const char *name, const rl_shm_config *own, rl_error *err)
{
    mode_t mode = own != NULL && own->mode != 0 ? (mode_t)own->mode : SHM_OWNER_MODE_DEFAULT;
    struct stat st;

    if (own != NULL && (own->uid_set || own->gid_set)) {
        uid_t uid = own->uid_set ? (uid_t)own->uid : (uid_t)-1;
        gid_t gid = own->gid_set ? (gid_t)own->gid : (gid_t)-1;

        if (fstat(fd, &st) < 0) {
            rl_errorf(err, "shm \"%s\": fstat: %s", name, strerror(errno));
            return -1;
        }
        if ((uid != (uid_t)-1 && uid != st.st_uid) || (gid != (gid_t)-1 && gid != st.st_gid)) {
            if (fchown(fd, uid, gid) < 0) {
                owner_give_err(err, name, own, errno);
                return -1;
            }
        }
    }
    if (fchmod(fd, mode) < 0) {
        rl_errorf(err, "shm \"%s\": cannot set its mode to %04o (shm.mode): %s", name,
                  (unsigned)mode, strerror(errno));
        return -1;
    }
    return 0;
}

int rl_shm_create_owned_as(const char *name, const char *shown, const rl_shm_config *own,
                           rl_error *err)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

    if (fd < 0)
        return -1;
    if (owner_apply(fd, shown, own, err) < 0) {
        close(fd);
        shm_unlink(name);
        return RL_SHM_OWN_FAILED;
    }
    return fd;
}

int rl_shm_create_owned(const char *name, const rl_shm_config *own, rl_error *err)
{
    return rl_shm_create_owned_as(name, name, own, err);
}

/* Is gid this process's effective group or one of its supplementary groups? */
static int owner_in_group(gid_t gid)
{
    int n = getgroups(0, NULL), found = gid == getegid();
    gid_t *groups = n > 0 && !found ? calloc((size_t)n, sizeof *groups) : NULL;

    if (groups != NULL) {
        n = getgroups(n, groups);
        for (int i = 0; i < n && !found; i++)
            found = groups[i] == gid;
    }
    free(groups);
    return found;
}

int rl_shm_may_give(const char *name, const rl_shm_config *own, rl_error *err)
{
    /* As owner_apply on a segment this process just made (its euid and egid): fchown without
     * root keeps the user and may only pick one of the process's own groups. */
    if (own == NULL || geteuid() == 0)
        return 0;
    if ((own->uid_set && (uid_t)own->uid != geteuid()) ||
        (own->gid_set && !owner_in_group((gid_t)own->gid))) {
        owner_give_err(err, name, own, EPERM);
        return -1;
    }
    return 0;
}

void rl_shm_owner_adopt(rl_shm_config *own, const struct stat *old)
{
    if (geteuid() != 0)
        return;
    if (!own->uid_set) {
        own->uid_set = 1;
        own->uid = (uint32_t)old->st_uid;
    }
    if (!own->gid_set) {
        own->gid_set = 1;
        own->gid = (uint32_t)old->st_gid;
    }
    if (own->mode == 0) /* as shm.mode allows: the owner reads and writes, others nothing */
        own->mode = (int)((old->st_mode & 0770) | 0600);
}

int rl_shm_may_replace(const char *name, const struct stat *old, rl_error *err)
{
    if (geteuid() == 0 || geteuid() == old->st_uid)
        return 0;
    rl_errorf(err,
              "shm \"%s\": cannot replace it by a new generation: it belongs to uid %ld (gid %ld, "
              "mode %04o) and this process runs as uid %ld; in the sticky " SHM_OWNER_DIR
              " only its owner or root may replace it: %s",
              name, (long)old->st_uid, (long)old->st_gid, (unsigned)(old->st_mode & 07777),
              (long)geteuid(),
              old->st_uid == 0 ? "start or reload once as root with shm.user set to the pool's "
                                 "user (the new generation is then the pool's), or remove it "
                                 "as root (ratelimit-filter --shm-remove: counters restart)"
                               : "start or reload as its owner or as root");
    return -1;
}

/* "/dev/shm" + name into buf. 0, or -1 when it does not fit. */
static int owner_path(const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, SHM_OWNER_DIR "%s", name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int rl_shm_wait_owner(const char *name, int errnum)
{
    char path[sizeof SHM_OWNER_DIR + NAME_MAX + 1];
    struct stat st;
    int waited = 0;

    if (errnum == EACCES && owner_path(name, path, sizeof path) == 0 && stat(path, &st) == 0 &&
        st.st_size == 0) {
        rl_clock_nap_ms(2);
        waited = 1;
    }
    errno = errnum;
    return waited;
}

int rl_shm_wait_sized(int fd, const char *name, int64_t start, int wait_ms, struct stat *st,
                      rl_error *err)
{
    for (;;) {
        if (fstat(fd, st) < 0) {
            rl_errorf(err, "shm \"%s\": fstat: %s", name, strerror(errno));
            return -1;
        }
        if (st->st_size != 0)
            return 0;
        if (rl_clock_mono_ms() - start > wait_ms) {
            rl_errorf(err,
                      "shm \"%s\": exists but is empty after %d ms (its creator died?); "
                      "remove it with: rm /dev/shm%s",
                      name, wait_ms, name);
            return -1;
        }
        rl_clock_nap_ms(2);
    }
}

int rl_shm_flock_wait(int fd, int64_t wait_ms)
{
    const int64_t deadline = rl_clock_mono_ms() + wait_ms;

    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (rl_clock_mono_ms() > deadline) {
            errno = EWOULDBLOCK;
            return -1;
        }
        rl_clock_nap_ms(2);
    }
    return 0;
}

int rl_shm_still_named(const char *name, int fd)
{
    char path[sizeof SHM_OWNER_DIR + NAME_MAX + 1];
    struct stat a, b;

    return owner_path(name, path, sizeof path) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
           a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

void rl_shm_open_error(const char *name, int errnum, rl_error *err)
{
    char path[sizeof SHM_OWNER_DIR + NAME_MAX + 1];
    struct stat st;

    if (errnum == EACCES && owner_path(name, path, sizeof path) == 0 && stat(path, &st) == 0) {
        rl_errorf(err,
                  "shm \"%s\": cannot open it: %s (it belongs to uid %ld, gid %ld, mode %04o; "
                  "this process runs as uid %ld, gid %ld): another user created it; set "
                  "shm.user (and shm.group) to the pool's user so that whoever creates it "
                  "gives it to the pool, and remove it as root: rm %s",
                  name, strerror(errnum), (long)st.st_uid, (long)st.st_gid,
                  (unsigned)(st.st_mode & 07777), (long)geteuid(), (long)getegid(), path);
        return;
    }
    rl_errorf(err, "shm \"%s\": cannot open it: %s", name, strerror(errnum));
}
