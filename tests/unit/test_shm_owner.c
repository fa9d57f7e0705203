/* test_shm_owner.c -- the owner, group and mode a created segment gets (shm_owner.c)
 *
 * The mode is checked as any user; the owner tests need root (the suite runs as root; they
 * are skipped otherwise) and use `nobody`, reached in a forked child with setuid, as the
 * unprivileged pool. Every segment is named after the pid and removed at teardown.
 * Generations: a replacement (another capacity) is a new segment, given to shm.user by root,
 * or keeping the replaced one's owner when shm.user is unset; a user that does not own the
 * segment cannot replace it (the sticky /dev/shm) and rl_shm_plan (-t) says so in the same
 * words; nothing is left under a private name.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asuser.h"
#include "backend.h"
#include "clock.h"
#include "leakcheck.h"
#include "shm_owner.h"
#include "stats.h"

#define KEY_MAX 80
#define WORDS 3

static char tname[64];
static char tpath[80];

static void setup(void)
{
    snprintf(tname, sizeof tname, "/rl-test-owner-%d", (int)getpid());
    snprintf(tpath, sizeof tpath, "/dev/shm%s", tname);
    rl_shm_unlink(tname);
    rl_stats_unlink(tname);
}

static void teardown(void)
{
    rl_shm_unlink(tname);
    rl_stats_unlink(tname);
    rl_test_leak_check();
}

TestSuite(shm_owner, .init = setup, .fini = teardown, .timeout = 30);

static struct stat stat_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st;
}

/* One attempt of child_run: open the table (or, plan set, ask rl_shm_plan). */
typedef struct {
    const rl_shm_config *own;
    int64_t capacity;
    int plan;
} open_try;

static int try_open(void *arg, char *msg, size_t size)
{
    const open_try *t = arg;
    rl_error err = {{0}};
    rl_shm *shm;

    if (t->plan)
        return rl_shm_plan(tname, t->capacity, KEY_MAX, WORDS, t->own, msg, size) >= 0;
    if ((shm = rl_shm_open_owned(tname, t->capacity, KEY_MAX, WORDS, t->own, &err)) != NULL) {
        rl_shm_close(shm);
        return 1;
    }
    snprintf(msg, size, "%s", err.text);
    return 0;
}

/* In a child running as pw: opens the table of `capacity` with own (or, plan set, asks
 * rl_shm_plan); exit 0 when it opened (the plan succeeded), 1 when refused with a message
 * containing want (NULL: any), 2 otherwise. */
static int child_run(const struct passwd *pw, const rl_shm_config *own, int64_t capacity,
                     int plan, const char *want)
{
    open_try t = {own, capacity, plan};
    return rl_test_as_user(pw, try_open, &t, want);
}

/* shm.user and shm.group set to pw's, mode 0660: what root configures for the pool. */
static rl_shm_config given_to(const struct passwd *pw)
{
    rl_shm_config own = {.uid_set = 1,
                         .uid = (uint32_t)pw->pw_uid,
                         .gid_set = 1,
                         .gid = (uint32_t)pw->pw_gid,
                         .mode = 0660};
    return own;
}

/* Private names (NAME.new-PID-N) of the test's table left in /dev/shm. */
static int leftovers(void)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char prefix[80];
    int n = 0;

    cr_assert_not_null(d);
    snprintf(prefix, sizeof prefix, "%s.new-", tname + 1);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* In a child running as pw: opens the table with own; exit 0 when it opened, 1 when
 * refused with err containing want (NULL: any), 2 otherwise. */
static int child_open(const struct passwd *pw, const rl_shm_config *own, const char *want)
{
    return child_run(pw, own, 1000, 0, want);
}

Test(shm_owner, default_mode_0600_whatever_the_umask)
{
    rl_error err;
    mode_t old = umask(0);
    rl_shm *shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, NULL, &err);
    rl_stats_seg *st = rl_stats_open(tname, NULL, &err);

    umask(old);
    cr_assert_not_null(shm, "%s", err.text);
    cr_assert_not_null(st, "%s", err.text);
    cr_expect_eq(stat_of(tpath).st_mode & 07777, 0600);
    cr_expect_eq(stat_of(tpath).st_uid, geteuid());
    rl_shm_close(shm);
    rl_stats_close(st);
}

Test(shm_owner, mode_applied_to_table_and_stats)
{
    rl_shm_config own = {.mode = 0640};
    char spath[96];
    rl_error err;
    mode_t old = umask(077); /* fchmod, not the umask, decides */
    rl_shm *shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, &own, &err);
    rl_stats_seg *st = rl_stats_open(tname, &own, &err);

    umask(old);
    cr_assert_not_null(shm, "%s", err.text);
    cr_assert_not_null(st, "%s", err.text);
    snprintf(spath, sizeof spath, "%s-stats", tpath);
    cr_expect_eq(stat_of(tpath).st_mode & 07777, 0640);
    cr_expect_eq(stat_of(spath).st_mode & 07777, 0640);
    rl_shm_close(shm);
    rl_stats_close(st);
}

Test(shm_owner, root_gives_both_segments_to_the_user)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_shm_config own = given_to(pw);
    char spath[96];
    rl_error err;
    rl_shm *shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, &own, &err);
    rl_stats_seg *st = rl_stats_open(tname, &own, &err);
    struct stat s;

    cr_assert_not_null(shm, "%s", err.text);
    cr_assert_not_null(st, "%s", err.text);
    snprintf(spath, sizeof spath, "%s-stats", tpath);
    s = stat_of(tpath);
    cr_expect_eq(s.st_uid, pw->pw_uid);
    cr_expect_eq(s.st_gid, pw->pw_gid);
    cr_expect_eq(s.st_mode & 07777, 0660);
    s = stat_of(spath);
    cr_expect_eq(s.st_uid, pw->pw_uid);
    cr_expect_eq(s.st_gid, pw->pw_gid);
    cr_expect_eq(s.st_mode & 07777, 0660);
    /* The user attaches to what root created. */
    cr_expect_eq(child_open(pw, NULL, NULL), 0);
    rl_shm_close(shm);
    rl_stats_close(st);
}

Test(shm_owner, attaching_changes_no_owner)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_shm_config mine = {.uid_set = 1, .uid = 0, .gid_set = 1, .gid = 0, .mode = 0600};
    rl_error err;
    rl_shm *shm;

    /* The user creates it (no owner configured), then root attaches asking for root. */
    cr_assert_eq(child_open(pw, NULL, NULL), 0);
    shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, &mine, &err);
    cr_assert_not_null(shm, "%s", err.text);
    cr_expect_eq(stat_of(tpath).st_uid, pw->pw_uid);
    cr_expect_eq(stat_of(tpath).st_mode & 07777, 0600);
    rl_shm_close(shm);
}

Test(shm_owner, who_may_not_give_it_away_creates_nothing)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_shm_config own = {.uid_set = 1, .uid = 0, .gid_set = 1, .gid = 0};

    cr_expect_eq(child_open(pw, &own, "cannot give it to uid 0, gid 0"), 1);
    cr_expect_eq(access(tpath, F_OK), -1, "the half-made segment was removed");
}

Test(shm_owner, another_users_segment_is_explained)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_error err;
    rl_shm *shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, NULL, &err);

    cr_assert_not_null(shm, "%s", err.text);
    cr_expect_eq(child_open(pw, NULL,
                            "Permission denied (it belongs to uid 0, gid 0, mode 0600"),
                 1);
    rl_shm_close(shm);
}

/* ---- generations: a replacement is a new segment, owned anew ------------------------------ */

Test(shm_owner, root_gives_a_new_generation_to_the_user)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_shm_config own = given_to(pw);
    rl_error err;
    rl_shm *shm;
    struct stat before, s;

    /* The pool's user made generation 1; root needs another capacity. */
    cr_assert_eq(child_open(pw, &own, NULL), 0);
    before = stat_of(tpath);
    shm = rl_shm_open_owned(tname, 2000, KEY_MAX, WORDS, &own, &err);
    cr_assert_not_null(shm, "%s", err.text);
    cr_expect(strstr(rl_shm_note(shm), "generation 2 replaced generation 1") != NULL, "%s",
              rl_shm_note(shm));
    s = stat_of(tpath);
    cr_expect_neq(s.st_ino, before.st_ino, "a new segment");
    cr_expect_eq(s.st_uid, pw->pw_uid);
    cr_expect_eq(s.st_gid, pw->pw_gid);
    cr_expect_eq(s.st_mode & 07777, 0660);
    cr_expect_eq(leftovers(), 0);
    /* The user attaches to root's generation, and could replace it again. */
    cr_expect_eq(child_run(pw, &own, 2000, 0, NULL), 0);
    cr_expect_eq(child_run(pw, &own, 3000, 1, NULL), 0);
    rl_shm_close(shm);
}

Test(shm_owner, root_without_shm_user_keeps_the_owner_of_the_generation_it_replaces)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_error err;
    rl_shm *shm;
    struct stat s;

    cr_assert_eq(child_open(pw, NULL, NULL), 0);
    shm = rl_shm_open_owned(tname, 2000, KEY_MAX, WORDS, NULL, &err);
    cr_assert_not_null(shm, "%s", err.text);
    cr_expect_neq(rl_shm_note(shm)[0], '\0', "replaced");
    s = stat_of(tpath);
    cr_expect_eq(s.st_uid, pw->pw_uid, "not root's: the pool could not open it");
    cr_expect_eq(s.st_gid, pw->pw_gid);
    cr_expect_eq(s.st_mode & 07777, 0600);
    cr_expect_eq(child_run(pw, NULL, 2000, 0, NULL), 0);
    rl_shm_close(shm);
}

Test(shm_owner, who_does_not_own_a_generation_cannot_replace_it)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    /* root:nobody's group 0660: the user may use it, but not rename over it (sticky). */
    rl_shm_config shared = {.gid_set = 1, .gid = (uint32_t)pw->pw_gid, .mode = 0660};
    const char *want = "cannot replace it by a new generation: it belongs to uid 0";
    rl_error err;
    rl_shm *shm = rl_shm_open_owned(tname, 1000, KEY_MAX, WORDS, &shared, &err);
    struct stat before;

    cr_assert_not_null(shm, "%s", err.text);
    before = stat_of(tpath);
    cr_expect_eq(child_run(pw, NULL, 1000, 0, NULL), 0, "it fits: attached");
    cr_expect_eq(child_run(pw, NULL, 2000, 0, want), 1);
    /* -t as that user says the same, and neither touched anything. */
    cr_expect_eq(child_run(pw, NULL, 2000, 1, want), 1);
    cr_expect_eq(stat_of(tpath).st_ino, before.st_ino);
    cr_expect_eq(leftovers(), 0);
    rl_shm_close(shm);
}

Test(shm_owner, the_plan_says_when_a_user_may_not_give_a_segment_away)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    rl_shm_config own = {.uid_set = 1, .uid = 0, .gid_set = 1, .gid = 0};

    /* -t as the user: a start would fail with the same words, and nothing is created. */
    cr_expect_eq(child_run(pw, &own, 1000, 1, "cannot give it to uid 0, gid 0"),
                 1);
    cr_expect_eq(child_run(pw, &own, 1000, 0, "cannot give it to uid 0, gid 0"),
                 1);
    cr_expect_eq(access(tpath, F_OK), -1);
    cr_expect_eq(leftovers(), 0);
}

/* An attacher waits, bounded, for the creator to size the segment (the table and the
 * statistics alike): an empty one is refused once the wait is over, a sized one is taken. */
Test(shm_owner, an_empty_segment_is_waited_for_then_refused)
{
    int fd = shm_open(tname, O_RDWR | O_CREAT | O_EXCL, 0600);
    struct stat st;
    rl_error err = {{0}};

    cr_assert_geq(fd, 0, "shm_open: %s", strerror(errno));
    cr_expect_eq(rl_shm_wait_sized(fd, tname, rl_clock_mono_ms(), 20, &st, &err), -1);
    cr_expect(strstr(err.text, "exists but is empty after 20 ms (its creator died?)") != NULL,
              "%s", err.text);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    cr_expect_eq(rl_shm_wait_sized(fd, tname, rl_clock_mono_ms(), 20, &st, &err), 0, "%s",
                 err.text);
    cr_expect_eq(st.st_size, 4096);
    close(fd);
    shm_unlink(tname);
}
