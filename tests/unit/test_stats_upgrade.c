/* test_stats_upgrade.c -- a statistics segment made by another build (stats.c) is replaced,
 * never refused: one of another version (a v3-sized one with version 2 written in, and a
 * hand-made v2 one: "RLTSTT01", version 2, 65800 bytes) or of another size is replaced by a
 * new one whose counters start at 0, with a note for the log; a process still attached to
 * the old one keeps counting there, unseen; of several processes opening one stale segment at
 * once exactly one replaces it and all end on the same new one; a segment not yet published
 * is waited for (and then attached to, or replaced), one never published is refused as
 * before; one this user may not open or remove is refused and left in place (root tests, as
 * `nobody` in a forked child); rl_stats_probe (-t) says what an open would do and changes
 * nothing. Every segment is named after the pid and removed at teardown.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asuser.h"
#include "clock.h"
#include "leakcheck.h"
#include "ratelimit.h"
#include "stats.h"

#define V2_SIZE 65800 /* sizeof(stats_segment) of version 2 (no node table) */

static char shm_name[64], seg[80], path[96];

static void setup(void)
{
    snprintf(shm_name, sizeof shm_name, "/rl-stup-%d", (int)getpid());
    snprintf(seg, sizeof seg, "%s-stats", shm_name);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    rl_stats_unlink(shm_name);
}

static void teardown(void)
{
    rl_stats_unlink(shm_name);
    rl_test_leak_check();
}

TestSuite(stats_upgrade, .init = setup, .fini = teardown, .timeout = 60);

static struct stat stat_of(void)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st;
}

static rl_stats_seg *open_ok(void)
{
    rl_error err = {{0}};
    rl_stats_seg *st = rl_stats_open(shm_name, NULL, &err);
    cr_assert_not_null(st, "%s", err.text);
    return st;
}

/* A segment of this build with counts in every part (global, a rule's slot, a node row). */
static void make_counted(void)
{
    rl_stats_seg *st = open_ok();
    int slot = rl_stats_slot(st, "api"), row = rl_stats_node(st, "127.0.0.1:7001", RL_STAT_NODE_CLUSTER);

    cr_assert_geq(slot, 0);
    cr_assert_geq(row, 0);
    rl_stats_add(st, RL_STAT_REQUESTS, 5);
    rl_stats_rule_add(st, slot, RL_STAT_ALLOWED);
    rl_stats_node_add(st, row, RL_STAT_NODE_DECISIONS);
    rl_stats_close(st);
}

/* Writes len bytes at off into the segment in place. */
static void poke(off_t off, const void *buf, size_t len)
{
    int fd = shm_open(seg, O_RDWR, 0);
    cr_assert_geq(fd, 0, "%s", strerror(errno));
    cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
    close(fd);
}

static void set_version(uint32_t v)
{
    poke(8, &v, sizeof v); /* after the 8-byte magic, in every version */
}

/* The segment an older build made: its magic, its version, its size; the rest zero. */
static void plant(uint32_t version, off_t size)
{
    int fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);

    cr_assert_geq(fd, 0, "%s", strerror(errno));
    cr_assert_eq(ftruncate(fd, size), 0);
    cr_assert_eq(pwrite(fd, "RLTSTT01", 8, 0), 8);
    cr_assert_eq(pwrite(fd, &version, sizeof version, 8), (ssize_t)sizeof version);
    close(fd);
}

/* Every counter of st is 0, and no rule or node has been named in it. */
static void expect_fresh(rl_stats_seg *st)
{
    static rl_stats s;
    static rl_redis_node_stats n[RL_STATS_NODES + 1];
    int64_t c[RL_STAT_RULE_COUNTERS];

    rl_stats_read(st, &s);
    for (int i = 0; i < RL_STAT_COUNTERS; i++)
        cr_expect_eq(s.global[i], 0, "%s", rl_stat_counter_names[i]);
    for (int i = 0; i < RL_STATS_SLOTS; i++) {
        rl_stats_read_slot(st, i, c);
        for (int k = 0; k < RL_STAT_RULE_COUNTERS; k++)
            cr_expect_eq(c[k], 0, "slot %d", i);
    }
    cr_expect_eq(rl_stats_nodes_read(st, n, RL_STATS_NODES + 1), 0, "no node row");
}

static void expect_replaced(rl_stats_seg *st, const struct stat *old, const char *why)
{
    struct stat now = stat_of();

    cr_expect(now.st_ino != old->st_ino, "a new segment under the name");
    cr_expect_eq(now.st_mode & 07777, 0600);
    cr_expect(strstr(rl_stats_note(st), "statistics of another version") != NULL, "%s",
              rl_stats_note(st));
    cr_expect(strstr(rl_stats_note(st), why) != NULL, "%s", rl_stats_note(st));
    cr_expect(strstr(rl_stats_note(st), "the counters restart at 0") != NULL, "%s",
              rl_stats_note(st));
    expect_fresh(st);
}

Test(stats_upgrade, another_version_replaced_counters_restart)
{
    struct stat old;
    rl_stats_seg *st, *again;

    make_counted();
    set_version(2);
    old = stat_of();
    st = open_ok();
    expect_replaced(st, &old, "(version 2, this build's 3) replaced");
    /* The next process attaches to it as it is: no note, the new counts seen. */
    rl_stats_add(st, RL_STAT_REQUESTS, 7);
    old = stat_of();
    again = open_ok();
    cr_expect_str_eq(rl_stats_note(again), "");
    cr_expect_eq(stat_of().st_ino, old.st_ino);
    rl_stats seen;
    rl_stats_read(again, &seen);
    cr_expect_eq(seen.global[RL_STAT_REQUESTS], 7);
    rl_stats_close(again);
    rl_stats_close(st);
}

Test(stats_upgrade, older_layout_and_other_sizes_replaced)
{
    static const off_t sizes[] = {V2_SIZE, 4096, 64, 1 << 20};
    char why[64];

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct stat old;
        rl_stats_seg *st;

        plant(2, sizes[i]);
        old = stat_of();
        st = open_ok();
        snprintf(why, sizeof why, "(%lld bytes, this build's ", (long long)sizes[i]);
        expect_replaced(st, &old, why);
        rl_stats_close(st);
        rl_stats_unlink(shm_name);
    }
    /* A segment of this build cut to another size keeps its magic: replaced too. */
    make_counted();
    int fd = shm_open(seg, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    close(fd);
    struct stat old = stat_of();
    rl_stats_seg *st = open_ok();
    expect_replaced(st, &old, "(4096 bytes, this build's ");
    rl_stats_close(st);
}

/* A process attached to the old segment keeps its mapping and counts there: those counts
 * are not in the new one (counters: acceptable), and nothing of the new one reaches it. */
Test(stats_upgrade, old_mapping_kept_and_unseen)
{
    rl_stats_seg *old_proc = open_ok(), *st;
    rl_stats s;

    set_version(2); /* as if old_proc were the old build */
    st = open_ok();
    cr_assert_neq(rl_stats_note(st)[0], '\0');
    rl_stats_add(old_proc, RL_STAT_REQUESTS, 3);
    rl_stats_add(st, RL_STAT_ACCESS_DENIED, 1);
    rl_stats_read(st, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 0, "the old build's counts are not shown");
    rl_stats_read(old_proc, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 3, "the old process still counts");
    cr_expect_eq(s.global[RL_STAT_ACCESS_DENIED], 0);
    rl_stats_close(old_proc);
    rl_stats_close(st);
}

#define RACERS 6

/* RACERS processes open one stale segment at once (released together by closing a pipe):
 * exactly one replaces it, and every count each adds lands in the one segment a later open
 * finds. (Two replacements would lose the first new segment's counts, or leave a second
 * note.) */
static void race_once(void)
{
    int gate[2], replaced = 0, attached = 0;
    rl_stats_seg *st;
    rl_stats s;

    cr_assert_eq(pipe(gate), 0);
    for (int p = 0; p < RACERS; p++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            rl_error err;
            rl_stats_seg *mine;
            char c;

            close(gate[1]);
            if (read(gate[0], &c, 1) != 0)
                _exit(3);
            mine = rl_stats_open(shm_name, NULL, &err);
            if (mine == NULL) {
                fprintf(stderr, "racer: %s\n", err.text);
                _exit(2);
            }
            rl_stats_add(mine, RL_STAT_REQUESTS, 100);
            int r = rl_stats_note(mine)[0] != '\0' ? 10 : 0;
            rl_stats_close(mine);
            _exit(r);
        }
    }
    close(gate[0]);
    close(gate[1]); /* go */
    for (int p = 0; p < RACERS; p++) {
        int status;
        cr_assert_gt(wait(&status), 0);
        cr_assert(WIFEXITED(status), "a racer crashed (%d)", status);
        replaced += WEXITSTATUS(status) == 10;
        attached += WEXITSTATUS(status) == 0;
    }
    cr_expect_eq(replaced, 1, "exactly one replaces (%d did)", replaced);
    cr_expect_eq(attached, RACERS - 1, "the others attach (%d did)", attached);
    st = open_ok();
    cr_expect_str_eq(rl_stats_note(st), "", "no third replacement");
    rl_stats_read(st, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 100 * RACERS, "every racer counted in one segment");
    rl_stats_close(st);
}

Test(stats_upgrade, racing_openers_replace_once)
{
    for (int round = 0; round < 5; round++) {
        make_counted();
        set_version(2);
        race_once();
        rl_stats_unlink(shm_name);
        plant(2, V2_SIZE);
        race_once();
        rl_stats_unlink(shm_name);
    }
}

/* In a child: naps ms, then writes the magic (publishes the segment). */
static pid_t publish_later(int ms)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = shm_open(seg, O_RDWR, 0);
        rl_clock_nap_ms(ms);
        _exit(fd >= 0 && pwrite(fd, "RLTSTT01", 8, 0) == 8 ? 0 : 1);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A segment whose creator has not published it yet is waited for, not taken for stale: this
 * build's is attached to as it is; another build's is replaced once published. */
Test(stats_upgrade, unpublished_waited_for_then_judged)
{
    static const char zero[8];
    struct stat old;
    rl_stats_seg *st;
    pid_t pid;

    make_counted();
    poke(0, zero, sizeof zero);
    old = stat_of();
    pid = publish_later(300);
    st = open_ok();
    reap(pid);
    cr_expect_str_eq(rl_stats_note(st), "", "attached, not replaced");
    cr_expect_eq(stat_of().st_ino, old.st_ino);
    rl_stats s;
    rl_stats_read(st, &s);
    cr_expect_eq(s.global[RL_STAT_REQUESTS], 5, "the counts kept");
    rl_stats_close(st);

    rl_stats_unlink(shm_name);
    plant(2, V2_SIZE);
    poke(0, zero, sizeof zero);
    old = stat_of();
    pid = publish_later(300);
    st = open_ok();
    reap(pid);
    expect_replaced(st, &old, "(65800 bytes, this build's ");
    rl_stats_close(st);
}

/* One never published within the wait is refused, and left in place. */
Test(stats_upgrade, never_published_refused_not_replaced)
{
    static const char zero[8];
    rl_error err = {{0}};
    struct stat old;

    make_counted();
    poke(0, zero, sizeof zero);
    old = stat_of();
    cr_assert_null(rl_stats_open(shm_name, NULL, &err));
    cr_expect(strstr(err.text, "exists but was not initialised") != NULL, "%s", err.text);
    cr_expect(strstr(err.text, "rm /dev/shm") != NULL, "%s", err.text);
    cr_expect_eq(stat_of().st_ino, old.st_ino);
    cr_expect_eq(rl_stats_probe(shm_name, NULL, &err), -1);

    rl_stats_unlink(shm_name);
    plant(2, 4096);
    poke(0, "XXXXXXXX", 8); /* not a statistics segment at all */
    old = stat_of();
    cr_assert_null(rl_stats_open(shm_name, NULL, &err));
    cr_expect(strstr(err.text, "exists with 4096 bytes, statistics take") != NULL, "%s", err.text);
    cr_expect_eq(stat_of().st_ino, old.st_ino);
}

/* A replacer that holds the stale segment's lock and never finishes (stuck, stopped): an
 * opener waits for it, bounded, then gives up saying so; the stale segment stays, untouched,
 * for the next start. (The lock is another open of the segment: flock is per open file.) */
Test(stats_upgrade, a_stuck_replacer_is_waited_for_bounded_then_reported)
{
    rl_error err = {{0}};
    struct stat old;
    int fd;

    make_counted();
    set_version(2);
    old = stat_of();
    fd = shm_open(seg, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    cr_assert_null(rl_stats_open(shm_name, NULL, &err));
    cr_expect(strstr(err.text, "cannot lock it to replace it: another process held it too "
                               "long") != NULL,
              "%s", err.text);
    cr_expect_eq(stat_of().st_ino, old.st_ino, "not removed");
    close(fd);
    rl_stats_close(open_ok()); /* the lock gone, the next start replaces it */
    cr_expect_neq(stat_of().st_ino, old.st_ino);
}

Test(stats_upgrade, probe_says_replaced_and_changes_nothing)
{
    rl_error err = {{0}};
    struct stat old;
    rl_stats_seg *st;
    uint32_t v = 0;

    cr_expect_eq(rl_stats_probe(shm_name, NULL, &err), 0, "absent: a start creates it");
    make_counted();
    cr_expect_eq(rl_stats_probe(shm_name, NULL, &err), 0, "fits");
    set_version(2);
    old = stat_of();
    cr_assert_eq(rl_stats_probe(shm_name, NULL, &err), 1, "%s", err.text);
    cr_expect(strstr(err.text, "statistics of another version: replaced, counters restart "
                               "(version 2, this build's 3)") != NULL,
              "%s", err.text);
    cr_expect_eq(stat_of().st_ino, old.st_ino, "nothing changed");
    int fd = shm_open(seg, O_RDONLY, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &v, sizeof v, 8), (ssize_t)sizeof v);
    close(fd);
    cr_expect_eq(v, 2);

    rl_stats_unlink(shm_name);
    plant(2, V2_SIZE);
    cr_assert_eq(rl_stats_probe(shm_name, NULL, &err), 1, "%s", err.text);
    cr_expect(strstr(err.text, "replaced, counters restart (65800 bytes, this build's ") != NULL,
              "%s", err.text);
    st = open_ok(); /* and the start does what it said */
    cr_expect_neq(rl_stats_note(st)[0], '\0');
    rl_stats_close(st);
    cr_expect_eq(rl_stats_probe(shm_name, NULL, &err), 0);
}

/* ---- owners: root makes the stale segment, `nobody` opens it --------------------------- */

/* One attempt of child_open: rl_stats_open (probe 0) or rl_stats_probe (probe 1). */
static int try_open(void *arg, char *msg, size_t size)
{
    rl_error err = {{0}};
    rl_stats_seg *st;

    if (*(const int *)arg && rl_stats_probe(shm_name, NULL, &err) >= 0)
        return 1;
    if (!*(const int *)arg && (st = rl_stats_open(shm_name, NULL, &err)) != NULL) {
        rl_stats_close(st);
        return 1;
    }
    snprintf(msg, size, "%s", err.text);
    return 0;
}

/* In a child running as pw: rl_stats_open (probe 0) or rl_stats_probe (probe 1). Exit 0 when
 * it opened (the probe said 0 or 1), 1 when refused with a message containing want, 2
 * otherwise. */
static int child_open(const struct passwd *pw, int probe, const char *want)
{
    return rl_test_as_user(pw, try_open, &probe, want);
}

/* Root's stale segment: unreadable to nobody (0600), or readable but not nobody's to remove
 * in the sticky /dev/shm (0666): refused with a clear error, by the open and the probe, and
 * left as it is. */
Test(stats_upgrade, foreign_owned_refused_and_kept)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    struct stat old;

    plant(2, V2_SIZE);
    old = stat_of();
    cr_expect_eq(child_open(pw, 0, "cannot open it: Permission denied"), 1);
    cr_expect_eq(child_open(pw, 1, "cannot open it: Permission denied"), 1);
    cr_expect_eq(stat_of().st_ino, old.st_ino);
    cr_assert_eq(chmod(path, 0666), 0);
    cr_expect_eq(child_open(pw, 0, "which this process (uid"), 1);
    cr_expect_eq(child_open(pw, 1, "only their owner or root may remove them"), 1);
    cr_expect_eq(stat_of().st_ino, old.st_ino);
    cr_expect_eq(stat_of().st_mode & 07777, 0666);
}

/* Root replacing the pool user's stale segment without shm.user keeps it the pool's (as a
 * new generation of the table does); the pool's user replaces its own. */
Test(stats_upgrade, replacement_keeps_the_pools_owner)
{
    struct passwd *pw = rl_test_nobody_or_skip();
    struct stat old, now;
    rl_stats_seg *st;

    plant(2, V2_SIZE);
    cr_assert_eq(chown(path, pw->pw_uid, pw->pw_gid), 0);
    cr_assert_eq(chmod(path, 0660), 0);
    old = stat_of();
    st = open_ok();
    now = stat_of();
    cr_expect_neq(now.st_ino, old.st_ino);
    cr_expect_eq(now.st_uid, pw->pw_uid);
    cr_expect_eq(now.st_gid, pw->pw_gid);
    cr_expect_eq(now.st_mode & 07777, 0660);
    rl_stats_close(st);

    set_version(2);
    old = stat_of();
    cr_expect_eq(child_open(pw, 0, "-"), 0, "its owner replaces it");
    cr_expect_neq(stat_of().st_ino, old.st_ino);
    cr_expect_eq(stat_of().st_uid, pw->pw_uid);
}
