/* shm_gen.c -- generations of the shared-memory table: making a segment, replacing one that
 * cannot serve a configuration, carrying its live entries over, and the plan -t prints
 *
 * A segment under the configured name is always complete: it is made under a private name,
 * NAME ".new-" PID "-" SERIAL, and only then given the real name, with link(2) when the name
 * is free (EEXIST: another process won the race, and we attach to its segment) or rename(2)
 * over the segment it replaces. A process that opens the name therefore never waits for a
 * creator (only segments of older builds can be seen unpublished, shm.c).
 *
 * Generations. A configuration whose table differs from the segment in place (another
 * shm.capacity; keys or state words larger than its slots: a longer rule name, a first
 * sliding_log rule, Redis switched on) is not refused: the opener replaces the segment by a
 * new generation (header.generation + 1) made for the new capacity and for slots at least
 * as large as the old ones (the larger of each size, so that a process still running the
 * previous configuration, respawned, fits the new generation instead of replacing it back),
 * and copies into it every live entry of the old one. Keys carry the rule's identity
 * (keys.c): entries of unchanged rules are read again under the new configuration, entries
 * of changed or removed rules are carried but never read, and expire. A segment of another
 * layout, or one whose header is inconsistent, is replaced by an empty generation (nothing
 * of it can be trusted). A segment that fits is attached as it is, larger slots included.
 *
 * Locks, not guesses:
 *  - the replacer holds flock(LOCK_EX) on the old segment's file from before it reads it
 *    until the new one has the name, so two processes never replace one generation twice:
 *    the second waits (bounded), then finds the name on another file (st_ino) and starts
 *    over, attaching to the new generation when it fits;
 *  - a segment being made is flock(LOCK_EX)ed by its maker until it has the real name (and
 *    unlocked explicitly then: its mapping keeps the open file, and so the lock, alive), so a
 *    leftover private name whose lock can be had is one whose maker died: it is removed
 *    (rl_shm_sweep) by the next maker or --shm-remove, never one still being made;
 *  - the old generation loses its name at the rename; processes attached to it keep their
 *    mapping and the kernel frees it when the last one unmaps it (exit, reload, restart).
 *    Decisions they make on it after their stripe was copied are not carried: a reload moves
 *    every process of a pool within one request each.
 * Each old stripe is copied under its own lock (validated and repaired like any lock), so a
 * pool keeps deciding during the copy; a stripe whose lock cannot be had is skipped (its
 * clients start fresh) rather than blocking the start.
 *
 * Owners (shm_owner.c). Every segment, the first and each new generation, is created O_EXCL
 * under its private name and given to shm.user/shm.group/shm.mode on its fd before it is
 * sized, so it has its final owner before any other process can open it by its real name.
 * /dev/shm is sticky: rename(2) over the old generation needs its owner or root, which
 * rl_shm_replace checks before making or copying anything (a clear error, nothing left). Run
 * as root, what the configuration leaves unset is the old generation's (the pool keeps its
 * table). rl_shm_plan asks the same questions for -t's user, so -t fails exactly when a start
 * by that user would, in the same words.
 */
#include "fmacros.h"

#include <dirent.h>
#include <sys/statvfs.h>

#include "shm_int.h"
#include "shm_owner.h"
#include "clock.h"
#include "error.h"

/* Is d_name NAME ".new-" DIGITS "-" DIGITS, NAME being `base` (the name without its '/')? */
static int shm_is_leftover(const char *d_name, const char *base)
{
    size_t blen = strlen(base), tlen = strlen(SHM_NEW_TAG);
    const char *p = d_name + blen + tlen;
    int dash = 0, digits = 0;

    if (strncmp(d_name, base, blen) != 0 || strncmp(d_name + blen, SHM_NEW_TAG, tlen) != 0)
        return 0;
    for (; *p != '\0'; p++) {
        if (*p == '-' && digits > 0 && !dash) {
            dash = 1;
            digits = 0;
        } else if (*p >= '0' && *p <= '9') {
            digits++;
        } else {
            return 0;
        }
    }
    return dash && digits > 0;
}

/* Removes the private names of makers that died: their flock can be had. */
void rl_shm_sweep(const char *name)
{
    DIR *d = opendir(SHM_DIR);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        int fd;
        if (!shm_is_leftover(e->d_name, name + 1))
            continue;
        fd = openat(dirfd(d), e->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* Puts entry (key, words, expiry, ref) into `to`, under its stripe's lock. 0, or -1 when it
 * found no slot (a smaller capacity full of live entries) or no lock. */
static int shm_put_entry(rl_shm *to, const char *key, size_t len, const rl_state *st, size_t words,
                         const shm_slot *from, int64_t now_ms)
{
    uint64_t h = rl_shm_hash(to, key, len);
    uint32_t s = rl_shm_stripe_of(to, h), i;

    if (rl_shm_lock(to, s) < 0)
        return -1;
    to->stripes[s].dirty = 1;
    i = rl_shm_find(to, s, h, key, len);
    if (i == SHM_NIL)
        i = rl_shm_insert(to, s, h, key, len, now_ms, NULL, 0);
    if (i != SHM_NIL) {
        shm_slot *sl = rl_shm_slot_at(to, i);
        rl_shm_store_state(to, sl, st, words);
        sl->expires_ms = from->expires_ms;
        sl->ref = from->ref;
    }
    to->stripes[s].dirty = 0;
    rl_shm_unlock(to, s);
    return i != SHM_NIL ? 0 : -1;
}

/* Copies every live entry of `from` into `to`; returns how many, and in *skipped the stripes
 * left behind. A stripe whose lock is not had (a stuck holder: 2 s each) is skipped, and once
 * half the time other openers wait for us is spent, so are the rest: those clients start
 * fresh rather than every opener giving up on the table. */
static int64_t shm_carry(rl_shm *to, rl_shm *from, uint32_t *skipped)
{
    const int64_t now = rl_clock_real_ms();
    const int64_t deadline =
        rl_clock_mono_ms() +
        (SHM_REPLACE_WAIT_MS + (int64_t)(from->size >> 20) * SHM_REPLACE_WAIT_MS_PER_MIB) / 2;
    int64_t n = 0;

    *skipped = 0;
    for (uint32_t s = 0; s < from->nstripes; s++) {
        const shm_stripe *st = &from->stripes[s];
        if (rl_clock_mono_ms() > deadline || rl_shm_lock(from, s) < 0) {
            ++*skipped;
            continue;
        }
        /* The stripe's slots from our own copy of the geometry; fresh read once and bounded
         * by it (the lock validated it too). */
        const uint32_t first = from->span[s].first;
        const uint32_t fresh = st->fresh < from->span[s].nslots ? st->fresh : from->span[s].nslots;
        for (uint32_t i = first; i - first < fresh; i++) {
            shm_slot *sl = rl_shm_slot_at(from, i);
            rl_state w;
            if (sl->in_use != 1 || sl->keylen > from->key_max || rl_shm_expired(sl, now))
                continue;
            memset(&w, 0, sizeof w);
            rl_shm_load_state(from, sl, &w, from->state_words);
            if (shm_put_entry(to, rl_shm_key(from, sl), sl->keylen, &w, from->state_words, sl,
                              now) == 0)
                n++;
        }
        rl_shm_unlock(from, s);
    }
    return n;
}

/* Makes a segment of geometry g under a private name, owned as own says (before it is sized),
 * and gives it shm->name: link(2) when `replace` is 0 (the name is free), rename(2) over the
 * old generation when it is 1; `from` (or NULL) is the generation whose live entries it
 * starts with. shm is left bound to it. 0, 1 when the name was taken first (start over and
 * attach), or -1 with err. */
int rl_shm_make(rl_shm *shm, const shm_geom *g, int64_t capacity, rl_shm *from, int replace,
                const rl_shm_config *own, rl_error *err)
{
    static _Atomic unsigned serial;
    /* shm_check_name left SHM_NEW_SUFFIX_MAX bytes of NAME_MAX for the suffix. */
    char made[NAME_MAX + 1 + SHM_NEW_SUFFIX_MAX], path[sizeof SHM_DIR + sizeof made],
        dst[sizeof path];
    int fd, rc;

    rl_shm_sweep(shm->name);
    snprintf(made, sizeof made, "%s" SHM_NEW_TAG "%ld-%u", shm->name, (long)getpid(),
             atomic_fetch_add(&serial, 1));
    fd = rl_shm_create_owned_as(made, shm->name, own, err); /* O_EXCL, given to its owner */
    if (fd == RL_SHM_OWN_FAILED)
        return -1;
    if (fd < 0) {
        rl_errorf(err, "shm \"%s\": cannot create it: %s", shm->name, strerror(errno));
        return -1;
    }
    /* Held until the segment has its name: a sweeper never takes it for a dead maker's. */
    flock(fd, LOCK_EX);
    if (rl_shm_create(shm, fd, made, g, capacity, err) < 0) {
        close(fd);
        return -1;
    }
    if (from != NULL) {
        shm->hdr->generation = from->hdr->generation + 1;
        uint32_t skipped;
        const int64_t carried = shm_carry(shm, from, &skipped);
        snprintf(shm->note, sizeof shm->note,
                 "shm \"%s\": generation %u replaced generation %u (capacity %llu -> %lld, keys "
                 "of up to %u -> %u bytes, %u -> %u state words): %lld live entries carried "
                 "over%s",
                 shm->name, shm->hdr->generation, from->hdr->generation,
                 (unsigned long long)from->capacity, (long long)capacity, from->key_max,
                 shm->key_max, from->state_words, shm->state_words, (long long)carried,
                 skipped > 0 ? " (some stripes skipped: their locks were held too long)" : "");
    } else if (replace) {
        shm->hdr->generation = 2; /* after one we could not read */
        snprintf(shm->note, sizeof shm->note,
                 "shm \"%s\": replaced a segment of another layout or a damaged one by an empty "
                 "table: every client's state restarts",
                 shm->name);
    }
    snprintf(path, sizeof path, SHM_DIR "%s", made);
    snprintf(dst, sizeof dst, SHM_DIR "%s", shm->name);
    rc = replace ? rename(path, dst) : link(path, dst);
    if (rc < 0) {
        int e = errno;
        munmap(shm->base, shm->size);
        shm->base = NULL;
        unlink(path);
        flock(fd, LOCK_UN);
        close(fd);
        /* EEXIST: another process created the name first; ENOENT: a sweep took our private
         * name in the instant before we locked it. Either way, start over. */
        if (e == EEXIST || e == ENOENT)
            return 1;
        rl_errorf(err, "shm \"%s\": cannot put %s in place: %s%s", shm->name, path, strerror(e),
                  e == EPERM || e == EACCES ? " (in the sticky " SHM_DIR
                                              " only the segment's owner or root may "
                                              "replace it)"
                                            : "");
        return -1;
    }
    if (!replace)
        unlink(path);
    /* Explicitly: the mapping holds the open file, and with it the lock, past close(). */
    flock(fd, LOCK_UN);
    close(fd);
    return 0;
}

/* Waits (bounded) for the old segment's flock. 0 held, -1 with err. */
static int shm_lock_old(rl_shm *shm, int fd, size_t size, rl_error *err)
{
    const int64_t wait_ms =
        SHM_REPLACE_WAIT_MS + (int64_t)(size >> 20) * SHM_REPLACE_WAIT_MS_PER_MIB;

    if (rl_shm_flock_wait(fd, wait_ms) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        rl_errorf(err, "shm \"%s\": another process has been replacing it for %d ms (stuck?)",
                  shm->name, (int)wait_ms);
    else
        rl_errorf(err, "shm \"%s\": flock: %s", shm->name, strerror(errno));
    return -1;
}

/* Replaces the segment fd has open (mapped at base, size bytes), which cannot serve `want`:
 * og is its own geometry when its entries can be carried over, NULL when it is replaced by an
 * empty generation. 0 (shm bound to the new generation), 1 to start over, -1 with err. */
int rl_shm_replace(rl_shm *shm, int fd, unsigned char *base, size_t size, const shm_geom *og,
                   const shm_geom *want, int64_t capacity, rl_error *err)
{
    const shm_header *h = (const shm_header *)base;
    rl_shm_config own = shm->own;
    rl_shm *from = NULL;
    shm_geom g = *want;
    struct stat old;
    int rc;

    if (shm_lock_old(shm, fd, size, err) < 0)
        return -1;
    if (!rl_shm_still_named(shm->name, fd)) {
        flock(fd, LOCK_UN);
        return 1; /* replaced (or removed) while we waited: look again */
    }
    /* Before any work: the rename at the end needs the old segment's owner (or root). */
    if (fstat(fd, &old) < 0) {
        rl_errorf(err, "shm \"%s\": fstat: %s", shm->name, strerror(errno));
        flock(fd, LOCK_UN);
        return -1;
    }
    if (rl_shm_may_replace(shm->name, &old, err) < 0) {
        flock(fd, LOCK_UN);
        return -1;
    }
    rl_shm_owner_adopt(&own, &old); /* root: what the configuration leaves unset, kept */
    if (og != NULL) {
        /* Slots as large as the old ones: the previous configuration fits the new one. */
        shm->key_max = shm->key_max > h->key_max ? shm->key_max : h->key_max;
        shm->state_words = shm->state_words > h->state_words ? shm->state_words : h->state_words;
        if (rl_shm_geometry(capacity, shm->key_max, shm->state_words, &g) < 0) {
            flock(fd, LOCK_UN);
            rl_errorf(err, "shm \"%s\": capacity %lld is too large", shm->name,
                      (long long)capacity);
            return -1;
        }
        from = calloc(1, sizeof *from);
        if (from == NULL) {
            flock(fd, LOCK_UN);
            rl_errorf(err, "shm \"%s\": out of memory", shm->name);
            return -1;
        }
        snprintf(from->name, sizeof from->name, "%s", shm->name);
        from->capacity = h->capacity;
        from->key_max = h->key_max;
        from->state_words = h->state_words;
        rl_shm_bind(from, base, size, og);
        memcpy(from->hash_key, h->hash_key, sizeof from->hash_key);
    }
    rc = rl_shm_make(shm, &g, capacity, from, 1, &own, err);
    free(from);
    flock(fd, LOCK_UN);
    return rc;
}

const char *rl_shm_note(const rl_shm *shm)
{
    return shm->note;
}

/* ---- the plan (-t) ---------------------------------------------------------------------- */

static int shm_plan_space(const char *name, size_t need, char *out, size_t len, const char *what)
{
    struct statvfs vfs;
    uint64_t avail;

    if (statvfs(SHM_DIR, &vfs) < 0)
        return 0; /* cannot tell: the start will say */
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (need <= avail)
        return 0;
    snprintf(out, len,
             "shm \"%s\": %s needs %zu MiB of shared memory, %s has %llu MiB free: a start "
             "would fail (lower shm.capacity, or make room in %s)",
             name, what, need >> 20, SHM_DIR, (unsigned long long)(avail >> 20), SHM_DIR);
    return -1;
}

/* Fails the plan (-1) when this process could not make the segment own says: out then holds
 * the error a start by this user would give. Else appends who the segment would belong to. */
static int shm_plan_owner(const char *name, const rl_shm_config *own, char *out, size_t len)
{
    size_t used = strlen(out);
    rl_error e;

    if (rl_shm_may_give(name, own, &e) < 0) {
        snprintf(out, len, "%s: a start by this user (uid %ld) would fail", e.text,
                 (long)geteuid());
        return -1;
    }
    snprintf(out + used, len - used, " (owned by uid %ld, gid %ld, mode %04o)",
             own->uid_set ? (long)own->uid : (long)geteuid(),
             own->gid_set ? (long)own->gid : (long)getegid(),
             (unsigned)(own->mode != 0 ? own->mode : 0600));
    return 0;
}

/* The plan when the segment does not exist yet: a start creates it. */
static int shm_plan_new(const char *name, int64_t capacity, const shm_geom *g,
                        const rl_shm_config *own, char *out, size_t len)
{
    if (shm_plan_space(name, g->size, out, len, "the new table") < 0)
        return -1;
    snprintf(out, len,
             "shm \"%s\": does not exist yet: a start creates it (capacity %lld, %.1f MiB); "
             "every client starts fresh",
             name, (long long)capacity, (double)g->size / (1 << 20));
    if (shm_plan_owner(name, own, out, len) < 0)
        return -1;
    if (geteuid() == 0 && !own->uid_set) {
        size_t used = strlen(out);
        snprintf(out + used, len - used,
                 "; made by root without shm.user, it is root's: a pool running as another "
                 "user could not open it (set shm.user)");
    }
    return RL_SHM_PLAN_NEW;
}

/* The plan for an existing table h (st: its segment's stat) judged against the wanted one
 * (want: the geometry of a new table for this configuration). */
static int shm_plan_existing(const char *name, const shm_header *h, const struct stat *st,
                             int64_t capacity, size_t key_max, size_t state_words,
                             const shm_geom *want, const rl_shm_config *own, char *out, size_t len)
{
    rl_shm_config adopted;
    rl_error e;
    char why[200];
    shm_geom g, og;
    int rc;

    switch (rl_shm_judge(h, (size_t)st->st_size, capacity, key_max, state_words, &og, why,
                         sizeof why)) {
    case SHM_FITS:
        snprintf(out, len,
                 "shm \"%s\": exists (generation %u, capacity %lld, keys of up to %u bytes, %u "
                 "state words) and fits: it is used as it is, every live entry kept",
                 name, h->generation, (long long)capacity, h->key_max, h->state_words);
        return RL_SHM_PLAN_KEEP;
    case SHM_CARRY:
        key_max = key_max > h->key_max ? key_max : h->key_max;
        state_words = state_words > h->state_words ? state_words : h->state_words;
        if (rl_shm_geometry(capacity, key_max, state_words, &g) < 0 ||
            shm_plan_space(name, g.size, out, len, "the new generation") < 0)
            return -1;
        snprintf(out, len,
                 "shm \"%s\": exists but %s: a start or reload replaces it by generation %u "
                 "(capacity %lld, keys of up to %zu bytes, %zu state words, %.1f MiB) and "
                 "carries its live entries over: the clients of unchanged rules keep their "
                 "state%s",
                 name, why, h->generation + 1, (long long)capacity, key_max, state_words,
                 (double)g.size / (1 << 20),
                 (uint64_t)capacity < h->capacity
                     ? " (the smaller capacity keeps the most recently used entries)"
                     : "");
        rc = RL_SHM_PLAN_CARRY;
        break;
    case SHM_FRESH:
        if (shm_plan_space(name, want->size, out, len, "the new table") < 0)
            return -1;
        snprintf(out, len,
                 "shm \"%s\": exists but %s: a start or reload replaces it by an empty table: "
                 "EVERY CLIENT'S STATE RESTARTS",
                 name, why);
        rc = RL_SHM_PLAN_FRESH;
        break;
    default:
        snprintf(out, len,
                 "shm \"%s\": exists but %s: a start would fail; remove it with: rm "
                 "%s%s",
                 name, why, SHM_DIR, name);
        return -1;
    }
    /* A replacement renames over the segment (only its owner or root may, in the sticky
     * /dev/shm) and makes one owned as the configuration says, as rl_shm_replace checks. */
    adopted = *own;
    rl_shm_owner_adopt(&adopted, st);
    if (rl_shm_may_replace(name, st, &e) < 0) {
        snprintf(out, len, "%s: a start by this user would fail", e.text);
        return -1;
    }
    if (shm_plan_owner(name, &adopted, out, len) < 0)
        return -1;
    return rc;
}

int rl_shm_plan(const char *name, int64_t capacity, size_t key_max, size_t state_words,
                const rl_shm_config *own, char *out, size_t len)
{
    const rl_shm_config none = {0};
    shm_geom g;
    struct stat st;
    rl_error e;
    unsigned char *base;
    int fd, rc;

    if (rl_shm_geometry(capacity, key_max, state_words, &g) < 0) {
        snprintf(out, len,
                 "shm \"%s\": capacity %lld, keys of %zu bytes or %zu state words out "
                 "of range",
                 name, (long long)capacity, key_max, state_words);
        return -1;
    }
    key_max = rl_shm_key_room(key_max, state_words); /* as rl_shm_open asks */
    if (own == NULL)
        own = &none;
    fd = shm_open(name, O_RDWR, 0); /* as rl_shm_open: creates nothing */
    if (fd < 0 && errno == ENOENT)
        return shm_plan_new(name, capacity, &g, own, out, len);
    if (fd < 0 && errno == EACCES) {
        /* The error a start by this user gives (a start by the pool's user may work). */
        rl_shm_open_error(name, errno, &e);
        snprintf(out, len, "%s: a start by this user (uid %ld) would fail", e.text,
                 (long)geteuid());
        return -1;
    }
    if (fd < 0) {
        snprintf(out, len,
                 "shm \"%s\": cannot be checked (%s): a start by another user may "
                 "still work",
                 name, strerror(errno));
        return RL_SHM_PLAN_UNKNOWN;
    }
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < sizeof(shm_header) ||
        (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        snprintf(out, len,
                 "shm \"%s\": exists but is not a rate-limit table (%lld bytes): a start would "
                 "fail; remove it with: rm %s%s",
                 name, (long long)st.st_size, SHM_DIR, name);
        return -1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        snprintf(out, len, "shm \"%s\": cannot be checked (mmap: %s)", name, strerror(errno));
        return RL_SHM_PLAN_UNKNOWN;
    }
    rc = shm_plan_existing(name, (const shm_header *)base, &st, capacity, key_max, state_words, &g,
                           own, out, len);
    munmap(base, (size_t)st.st_size);
    return rc;
}

/* ---- the census (-t) -------------------------------------------------------------------- */

int rl_shm_scan(const char *name, void (*fn)(const char *key, size_t len, void *ud), void *ud)
{
    const int64_t now = rl_clock_real_ms();
    rl_shm *view;
    shm_geom og;
    struct stat st;
    unsigned char *base;
    const shm_header *h;
    char why[200];
    int fd = shm_open(name, O_RDONLY, 0), rc = -1;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < sizeof(shm_header) ||
        (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return -1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return -1;
    h = (const shm_header *)base;
    view = calloc(1, sizeof *view);
    /* Judged against its own sizes: sound or not, nothing else. */
    if (view != NULL && h->capacity <= (uint64_t)RL_SHM_CAPACITY_MAX &&
        rl_shm_judge(h, (size_t)st.st_size, (int64_t)h->capacity, h->key_max, h->state_words, &og,
                     why, sizeof why) == SHM_FITS) {
        view->capacity = h->capacity;
        view->key_max = h->key_max;
        view->state_words = h->state_words;
        rl_shm_bind(view, base, (size_t)st.st_size, &og);
        for (uint32_t s = 0; s < view->nstripes; s++) {
            /* The stripe's own count of used slots, capped by the span it must own. */
            uint32_t fresh = view->stripes[s].fresh;
            if (fresh > view->span[s].nslots)
                fresh = view->span[s].nslots;
            for (uint32_t k = 0; k < fresh; k++) {
                shm_slot *sl = rl_shm_slot_at(view, view->span[s].first + k);
                uint16_t len = sl->keylen;
                if (sl->in_use == 1 && len <= view->key_max && !rl_shm_expired(sl, now))
                    fn(rl_shm_key(view, sl), len, ud);
            }
        }
        rc = 0;
    }
    free(view);
    munmap(base, (size_t)st.st_size);
    return rc;
}
