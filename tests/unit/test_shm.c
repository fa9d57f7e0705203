/* test_shm.c -- the shared-memory table: decisions, expiry, eviction, attach, concurrency and
 * crash repair
 *
 * Every test gets its own segment name (criterion runs each test in its own process, so the pid
 * makes it unique) and removes it in the suite's fini, which also runs after a failed assertion.
 * Time is always passed explicitly: nothing here depends on the wall clock.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "backend.h"

static char tname[64];

static void shm_setup(void)
{
    snprintf(tname, sizeof tname, "/rl-test-%d-0", (int)getpid());
    rl_shm_unlink(tname);
}

static void shm_teardown(void)
{
    rl_shm_unlink(tname);
}

TestSuite(shm, .init = shm_setup, .fini = shm_teardown, .timeout = 60);

#define T0 1700000000000LL /* some wall-clock-like instant, in ms */

static rl_rule mkrule(const char *name, int64_t count, int64_t period_ms, int64_t burst)
{
    rl_rule r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    r.algo = RL_ALGO_GCRA;
    r.count = count;
    r.period_ms = period_ms;
    r.burst = burst;
    return r;
}

static rl_item mkitem(const rl_rule *rule, const char *key, rl_rule_result *res)
{
    rl_item it = {.rule = rule, .client = "client", .key = key, .keylen = strlen(key), .cost = 1,
                  .res = res};
    return it;
}

/* One rule, one key: returns rl_shm_decide's result and fills *res. */
static int decide1(rl_shm *shm, const rl_rule *rule, const char *key, int64_t now,
                   rl_rule_result *res)
{
    rl_item it = mkitem(rule, key, res);
    return rl_shm_decide(shm, &it, 1, now);
}

static rl_shm *open_ok(const char *name, int64_t capacity)
{
    rl_error err = {{0}};
    rl_shm *shm = rl_shm_open(name, capacity, &err);
    cr_assert_not_null(shm, "rl_shm_open: %s", err.text);
    return shm;
}

static rl_shm_stat stats(rl_shm *shm)
{
    rl_shm_stat st;
    cr_assert_eq(rl_shm_stats(shm, &st), 0, "%s", rl_shm_errstr(shm));
    return st;
}

/* Admits n in a row at now, then refuses; checks remaining counts down. */
static void admit_n(rl_shm *shm, const rl_rule *rule, const char *key, int64_t now, int64_t n)
{
    rl_rule_result res;
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(decide1(shm, rule, key, now, &res), 1, "admission %lld", (long long)i);
        cr_assert(res.allowed);
    }
}

/* ---- one process ----------------------------------------------------------------------- */

Test(shm, admits_exactly_burst_then_refuses_with_retry_after)
{
    rl_shm *shm = open_ok(tname, 1000);
    rl_rule r = mkrule("api", 10, 1000, 5); /* T = 100 ms, 5 at once */
    rl_rule_result res;
    const char *key = "api\x1f" "192.0.2.1";

    for (int i = 0; i < 5; i++) {
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 1);
        cr_assert_eq(res.remaining, 4 - i);
        cr_assert_eq(res.retry_after_ms, 0);
        cr_assert_eq(res.limit, 10);
        cr_assert_eq(res.window_ms, 1000);
    }
    cr_assert_eq(decide1(shm, &r, key, T0, &res), 0);
    cr_assert_not(res.allowed);
    cr_assert_eq(res.retry_after_ms, 100);
    cr_assert_eq(res.remaining, 0);
    /* Refusals consume nothing: the same wait is announced again. */
    cr_assert_eq(decide1(shm, &r, key, T0 + 40, &res), 0);
    cr_assert_eq(res.retry_after_ms, 60);

    /* One emission interval later exactly one more fits. */
    cr_assert_eq(decide1(shm, &r, key, T0 + 100, &res), 1);
    cr_assert_eq(decide1(shm, &r, key, T0 + 100, &res), 0);
    /* Fully refilled after burst * T. */
    admit_n(shm, &r, key, T0 + 1000, 5);
    cr_assert_eq(decide1(shm, &r, key, T0 + 1000, &res), 0);

    /* Other keys are independent. */
    admit_n(shm, &r, "api\x1f" "192.0.2.2", T0, 5);
    rl_shm_close(shm);
}

Test(shm, fractional_rate_refills_exactly)
{
    rl_shm *shm = open_ok(tname, 16);
    rl_rule r = mkrule("third", 3, 1000, 1); /* T = 333.33 ms */
    rl_rule_result res;
    int admitted = 0;

    /* Each ms for 10 s, 3/s with burst 1 admits at k * 333.33 ms, k = 0..29: 30 in all. */
    for (int64_t t = 0; t < 10000; t++)
        admitted += decide1(shm, &r, "third\x1f" "c", T0 + t, &res);
    cr_assert_eq(admitted, 30);
    rl_shm_close(shm);
}

Test(shm, multi_rule_refusal_stores_nothing)
{
    rl_shm *shm = open_ok(tname, 1000);
    rl_rule a = mkrule("a", 10, 60000, 10), b = mkrule("b", 1, 60000, 1);
    rl_rule_result ra, rb;
    rl_item items[2] = {mkitem(&a, "a\x1f" "c", &ra), mkitem(&b, "b\x1f" "c", &rb)};

    cr_assert_eq(rl_shm_decide(shm, items, 2, T0), 1);
    cr_assert(ra.allowed && rb.allowed);
    cr_assert_eq(ra.remaining, 9);

    /* b refuses: a says it would admit, is not charged, and reports its state as it stays. */
    cr_assert_eq(rl_shm_decide(shm, items, 2, T0), 0);
    cr_assert(ra.allowed);
    cr_assert_not(rb.allowed);
    cr_assert_eq(ra.remaining, 9);
    cr_assert_eq(ra.reset_ms, 6000);
    cr_assert_gt(rb.retry_after_ms, 0);

    /* a alone: charged once before, so this is its second unit. */
    cr_assert_eq(decide1(shm, &a, "a\x1f" "c", T0, &ra), 1);
    cr_assert_eq(ra.remaining, 8);
    rl_shm_close(shm);
}

Test(shm, cost_counts_units)
{
    rl_shm *shm = open_ok(tname, 16);
    rl_rule r = mkrule("c", 10, 1000, 10);
    rl_rule_result res;
    rl_item it = mkitem(&r, "c\x1f" "x", &res);

    it.cost = 7;
    cr_assert_eq(rl_shm_decide(shm, &it, 1, T0), 1);
    cr_assert_eq(res.remaining, 3);
    it.cost = 4;
    cr_assert_eq(rl_shm_decide(shm, &it, 1, T0), 0);
    it.cost = 3;
    cr_assert_eq(rl_shm_decide(shm, &it, 1, T0), 1);
    cr_assert_eq(res.remaining, 0);
    rl_shm_close(shm);
}

Test(shm, expired_entry_is_absent_and_reclaimed)
{
    rl_shm *shm = open_ok(tname, 16); /* one stripe: every key shares the LRU */
    rl_rule r = mkrule("e", 1, 1000, 1);
    rl_rule_result res;
    rl_shm_stat st;

    cr_assert_eq(decide1(shm, &r, "e\x1f" "1", T0, &res), 1);
    cr_assert_eq(res.reset_ms, 1000); /* the entry is kept exactly this long */
    cr_assert_eq(decide1(shm, &r, "e\x1f" "1", T0 + 999, &res), 0);
    cr_assert_eq(res.retry_after_ms, 1);
    /* At its expiry the entry reads as absent: a fresh bucket, stored again in place. */
    cr_assert_eq(decide1(shm, &r, "e\x1f" "1", T0 + 1000, &res), 1);
    st = stats(shm);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.expired_reclaimed, 0);

    /* A later insert takes the expired slot back from the LRU tail. */
    cr_assert_eq(decide1(shm, &r, "e\x1f" "2", T0 + 5000, &res), 1);
    st = stats(shm);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.expired_reclaimed, 1);
    cr_assert_eq(st.evictions, 0);
    rl_shm_close(shm);
}

Test(shm, clock_stepping_back_neither_admits_extra_nor_breaks_expiry)
{
    rl_shm *shm = open_ok(tname, 16);
    rl_rule r = mkrule("b", 10, 1000, 5);
    rl_rule_result res;

    admit_n(shm, &r, "b\x1f" "c", T0, 5);
    /* 50 s back: the stored entry is still live (its expiry is ahead) and the bucket empty. */
    cr_assert_eq(decide1(shm, &r, "b\x1f" "c", T0 - 50000, &res), 0);
    cr_assert_eq(res.retry_after_ms, 100);
    cr_assert_eq(stats(shm).entries, 1);
    /* The step was repaired (algo.h): the bucket is empty as of the new time, so the key is
     * not blocked until the old time comes back: one interval later it admits one request. */
    cr_assert_eq(decide1(shm, &r, "b\x1f" "c", T0 - 50000 + 99, &res), 0);
    cr_assert_eq(decide1(shm, &r, "b\x1f" "c", T0 - 50000 + 100, &res), 1);
    cr_assert_eq(decide1(shm, &r, "b\x1f" "c", T0 - 50000 + 100, &res), 0);
    rl_shm_close(shm);
}

Test(shm, full_table_evicts_lru_and_never_fails)
{
    rl_shm *shm = open_ok(tname, RL_SHM_CAPACITY_MIN);
    rl_rule r = mkrule("cap", 5, 3600000, 5); /* entries live an hour: only eviction frees */
    rl_rule_result res;
    rl_shm_stat st;
    char key[64];

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "cap\x1f" "10.0.%d.%d", i / 256, i % 256);
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 1, "key %d", i);
        cr_assert_eq(res.remaining, 4);
    }
    st = stats(shm);
    cr_assert_eq(st.capacity, RL_SHM_CAPACITY_MIN);
    cr_assert_eq(st.entries, RL_SHM_CAPACITY_MIN);
    cr_assert_eq(st.evictions, 1000 - RL_SHM_CAPACITY_MIN);
    cr_assert_eq(st.insert_failures, 0);
    cr_assert_eq(st.stripes, 1);

    /* The most recent keys survived with their state; the oldest was evicted. */
    snprintf(key, sizeof key, "cap\x1f" "10.0.%d.%d", 999 / 256, 999 % 256);
    cr_assert_eq(decide1(shm, &r, key, T0, &res), 1);
    cr_assert_eq(res.remaining, 3);
    cr_assert_eq(decide1(shm, &r, "cap\x1f" "10.0.0.0", T0, &res), 1);
    cr_assert_eq(res.remaining, 4);
    rl_shm_close(shm);
}

Test(shm, striped_table_evicts_and_never_fails)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule r = mkrule("cap", 5, 3600000, 5);
    rl_rule_result res;
    rl_shm_stat st;
    char key[64];

    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "cap\x1f" "k%d", i);
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 1, "key %d", i);
    }
    st = stats(shm);
    cr_assert_eq(st.stripes, 64);
    cr_assert_eq(st.entries, 4096); /* every stripe full */
    cr_assert_eq(st.evictions, 20000 - 4096);
    cr_assert_eq(st.insert_failures, 0);
    rl_shm_close(shm);
}

Test(shm, refused_key_stays_recent)
{
    rl_shm *shm = open_ok(tname, RL_SHM_CAPACITY_MIN);
    rl_rule r = mkrule("hot", 1, 3600000, 1);
    rl_rule_result res;
    char key[64];

    cr_assert_eq(decide1(shm, &r, "hot\x1f" "attacker", T0, &res), 1);
    /* The attacker keeps being refused while many other clients come and go. */
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(decide1(shm, &r, "hot\x1f" "attacker", T0, &res), 0);
        snprintf(key, sizeof key, "hot\x1f" "c%d", i);
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 1);
    }
    cr_assert_eq(decide1(shm, &r, "hot\x1f" "attacker", T0, &res), 0);
    rl_shm_close(shm);
}

Test(shm, odd_batches)
{
    rl_shm *shm = open_ok(tname, 16);
    rl_rule r = mkrule("d", 10, 1000, 3);
    rl_rule_result r1, r2, r3;
    rl_item dup[2] = {mkitem(&r, "d\x1f" "same", &r1), mkitem(&r, "d\x1f" "same", &r2)};
    rl_item empty = {.rule = &r, .client = "", .key = NULL, .keylen = 0, .cost = 1, .res = &r3};
    char big[RL_KEY_MAX + 2];
    rl_item huge = {.rule = &r, .client = "x", .key = big, .keylen = RL_KEY_MAX + 1, .cost = 1,
                    .res = &r3};

    /* The same key twice (cannot come from the rules, must not corrupt): one entry. */
    cr_assert_eq(rl_shm_decide(shm, dup, 2, T0), 1);
    cr_assert_eq(rl_shm_decide(shm, dup, 2, T0), 1);
    cr_assert_eq(stats(shm).entries, 1);

    cr_assert_eq(rl_shm_decide(shm, &empty, 1, T0), 1);
    cr_assert_eq(stats(shm).entries, 2);
    cr_assert_eq(rl_shm_decide(shm, dup, 0, T0), 1); /* nothing matched */

    memset(big, 'k', sizeof big);
    cr_assert_eq(rl_shm_decide(shm, &huge, 1, T0), -1);
    cr_assert(strstr(rl_shm_errstr(shm), "257 bytes") != NULL, "%s", rl_shm_errstr(shm));
    huge.keylen = RL_KEY_MAX; /* the longest key fits */
    cr_assert_eq(rl_shm_decide(shm, &huge, 1, T0), 1);
    huge.cost = 0;
    cr_assert_eq(rl_shm_decide(shm, &huge, 1, T0), -1);
    cr_assert(strstr(rl_shm_errstr(shm), "cost") != NULL);
    rl_shm_close(shm);
}

/* ---- opening ---------------------------------------------------------------------------- */

Test(shm, second_open_attaches_to_the_same_table)
{
    rl_shm *a = open_ok(tname, 16);
    rl_shm *b;
    rl_rule r = mkrule("s", 10, 1000, 2);
    rl_rule_result res;

    admit_n(a, &r, "s\x1f" "c", T0, 2);
    b = open_ok(tname, 16);
    cr_assert_eq(decide1(b, &r, "s\x1f" "c", T0, &res), 0);
    cr_assert_eq(decide1(b, &r, "s\x1f" "d", T0, &res), 1);
    cr_assert_eq(stats(a).entries, 2);
    rl_shm_close(b);
    rl_shm_close(a);
    rl_shm_close(NULL);
    cr_assert_eq(rl_shm_unlink(tname), 0);
    cr_assert_eq(rl_shm_unlink(tname), -1);
}

Test(shm, capacity_mismatch_is_a_clear_error)
{
    rl_shm *a = open_ok(tname, 1000);
    rl_error err = {{0}};

    cr_assert_null(rl_shm_open(tname, 2000, &err));
    cr_assert(strstr(err.text, "exists with capacity 1000, config says 2000") != NULL, "%s",
              err.text);
    cr_assert(strstr(err.text, "rm /dev/shm/rl-test-") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open(tname, 2000, NULL)); /* err is optional */
    rl_shm_close(a);
}

Test(shm, impossible_capacities_are_errors)
{
    rl_error err = {{0}};

    cr_assert_null(rl_shm_open(tname, RL_SHM_CAPACITY_MIN - 1, &err));
    cr_assert(strstr(err.text, "out of range") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open(tname, INT64_MAX, &err));
    cr_assert(strstr(err.text, "out of range") != NULL, "%s", err.text);
    cr_assert_eq(rl_shm_size(0), 0);
    cr_assert_eq(rl_shm_size(INT64_MAX), 0);
    cr_assert_gt(rl_shm_size(RL_SHM_CAPACITY_MAX), 0);

    /* In range, but ~320 GiB: no machine this runs on has that much /dev/shm. The failure is
     * at open, and leaves no segment behind. */
    err.text[0] = '\0';
    cr_assert_null(rl_shm_open(tname, RL_SHM_CAPACITY_MAX, &err));
    cr_assert(strstr(err.text, "MiB of shared memory") != NULL, "%s", err.text);
    cr_assert_eq(shm_open(tname, O_RDWR, 0), -1);

    cr_assert_null(rl_shm_open("no-slash", 16, &err));
    cr_assert(strstr(err.text, "must be") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open("/a/b", 16, &err));
}

Test(shm, foreign_segments_are_refused)
{
    rl_error err = {{0}};
    int fd = shm_open(tname, O_RDWR | O_CREAT | O_EXCL, 0600);
    char junk[4096];

    cr_assert_geq(fd, 0);
    /* Empty: looks like a creator that died before sizing it. Waits ~2 s, then gives up. */
    cr_assert_null(rl_shm_open(tname, 16, &err));
    cr_assert(strstr(err.text, "empty") != NULL, "%s", err.text);

    memset(junk, 'x', sizeof junk);
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    cr_assert_null(rl_shm_open(tname, 16, &err));
    cr_assert(strstr(err.text, "not a rate-limit table") != NULL, "%s", err.text);
    close(fd);
}

Test(shm, creators_racing_agree)
{
    enum { NPROC = 6 };
    rl_rule r = mkrule("race", 1, 3600000, 3);
    pid_t pids[NPROC];
    int fds[2], admitted = 0;

    cr_assert_eq(pipe(fds), 0);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            rl_error err;
            rl_rule_result res;
            rl_shm *shm = rl_shm_open(tname, 4096, &err);
            char c = shm != NULL ? (char)('0' + decide1(shm, &r, "race\x1f" "k", T0, &res)) : 'E';
            if (write(fds[1], &c, 1) != 1)
                _exit(2);
            _exit(shm != NULL ? 0 : 1);
        }
    }
    close(fds[1]);
    for (int p = 0; p < NPROC; p++) {
        char c;
        int status;
        cr_assert_eq(read(fds[0], &c, 1), 1);
        cr_assert_neq(c, 'E', "a racing open failed");
        admitted += c == '1';
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(fds[0]);
    cr_assert_eq(admitted, 3); /* one table, one hash key: all saw the same bucket */
}

/* ---- concurrency ------------------------------------------------------------------------ */

enum { NPROC = 4, NTHREAD = 2, NKEYS = 8 };

typedef struct hammer {
    rl_shm *shm;
    const rl_rule *per_key, *global; /* global may be NULL */
    int64_t now;
    int attempts;
    int64_t admitted[NKEYS]; /* by key */
    int errors;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    char key[NKEYS][32];

    for (int k = 0; k < NKEYS; k++)
        snprintf(key[k], sizeof key[k], "pk\x1f" "client-%d", k);
    for (int i = 0; i < h->attempts; i++) {
        int k = i % NKEYS;
        rl_rule_result res[2];
        rl_item items[2] = {mkitem(h->per_key, key[k], &res[0])};
        int rc;

        if (h->global != NULL)
            items[1] = mkitem(h->global, "g\x1f" "all", &res[1]);
        rc = rl_shm_decide(h->shm, items, h->global != NULL ? 2 : 1, h->now);
        if (rc < 0)
            h->errors++;
        else
            h->admitted[k] += rc;
    }
    return NULL;
}

/* NPROC processes (each attaching on its own) x NTHREAD threads (sharing a handle) decide at
 * one fixed instant; per-key admission counts come back through a pipe. All start together
 * (when the parent closes `go`), and the limits are set so that admissions go on for most of
 * the run: contention is real, not just the first few requests. */
static void hammer_all(const rl_rule *per_key, const rl_rule *global, int attempts,
                       int64_t *admitted)
{
    int fds[2], go[2];
    pid_t pids[NPROC];

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(pipe(go), 0);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            hammer h[NTHREAD];
            pthread_t th[NTHREAD];
            int64_t sum[NKEYS] = {0};
            rl_shm *shm = rl_shm_open(tname, 4096, NULL);
            int bad = shm == NULL;
            char c;

            close(go[1]);
            bad |= read(go[0], &c, 1) != 0; /* EOF: go */

            for (int t = 0; !bad && t < NTHREAD; t++) {
                memset(&h[t], 0, sizeof h[t]);
                h[t] = (hammer){.shm = shm, .per_key = per_key, .global = global, .now = T0,
                                .attempts = attempts};
                bad |= pthread_create(&th[t], NULL, hammer_run, &h[t]) != 0;
            }
            for (int t = 0; !bad && t < NTHREAD; t++) {
                pthread_join(th[t], NULL);
                bad |= h[t].errors != 0;
                for (int k = 0; k < NKEYS; k++)
                    sum[k] += h[t].admitted[k];
            }
            if (write(fds[1], sum, sizeof sum) != (ssize_t)sizeof sum)
                bad = 1;
            _exit(bad);
        }
    }
    close(fds[1]);
    close(go[0]);
    close(go[1]);
    memset(admitted, 0, NKEYS * sizeof *admitted);
    for (int p = 0; p < NPROC; p++) {
        int64_t sum[NKEYS];
        int status;
        cr_assert_eq(read(fds[0], sum, sizeof sum), (ssize_t)sizeof sum);
        for (int k = 0; k < NKEYS; k++)
            admitted[k] += sum[k];
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed", p);
    }
    close(fds[0]);
}

Test(shm, concurrent_hammering_admits_exactly_burst_per_key)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule r = mkrule("pk", 1, 3600000, 1000); /* no refill; half of each key's attempts */
    rl_rule_result res;
    int64_t admitted[NKEYS];

    hammer_all(&r, NULL, 2000, admitted);
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pk\x1f" "client-%d", k);
        cr_assert_eq(admitted[k], 1000, "key %d: %lld admitted", k, (long long)admitted[k]);
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 0);
    }
    rl_shm_close(shm);
}

Test(shm, concurrent_multi_rule_decisions_are_atomic)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule per_key = mkrule("pk", 1, 3600000, 5000); /* 8 keys x 5000 = 40000 ... */
    rl_rule global = mkrule("g", 1, 3600000, 30000);  /* ... but 30000 in all */
    rl_rule_result res;
    int64_t admitted[NKEYS], total = 0;

    /* Many attempts: the global key is contended by batches that lock different stripes. */
    hammer_all(&per_key, &global, 20000, admitted);
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pk\x1f" "client-%d", k);
        cr_assert_leq(admitted[k], 5000);
        total += admitted[k];
        /* The stored per-key state matches what was admitted: nothing charged by refusals. */
        cr_assert_eq(decide1(shm, &per_key, key, T0, &res), admitted[k] < 5000);
        if (admitted[k] < 5000)
            cr_assert_eq(res.remaining, 5000 - admitted[k] - 1);
    }
    cr_assert_eq(total, 30000);
    cr_assert_eq(decide1(shm, &global, "g\x1f" "all", T0, &res), 0);
    rl_shm_close(shm);
}

/* ---- crash repair ----------------------------------------------------------------------- */

Test(shm, owner_dying_in_the_lock_is_repaired)
{
    rl_shm *shm = open_ok(tname, RL_SHM_CAPACITY_MIN); /* one stripe: the victim has them all */
    rl_rule r = mkrule("rb", 1, 3600000, 3);
    rl_rule_result res;
    rl_shm_stat st;
    char key[32];
    pid_t pid;
    int status;

    /* Slots are taken in order one, two, three; the LRU order (oldest first) becomes
     * two, three, one, so a rebuild that ignored `touch` would be caught below. */
    admit_n(shm, &r, "rb\x1f" "one", T0, 2);
    admit_n(shm, &r, "rb\x1f" "two", T0, 1);
    admit_n(shm, &r, "rb\x1f" "three", T0, 3);
    admit_n(shm, &r, "rb\x1f" "one", T0, 1);

    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        rl_shm *victim;
        setenv("RL_SHM_TEST_DIE_IN_LOCK", "1", 1);
        victim = rl_shm_open(tname, RL_SHM_CAPACITY_MIN, NULL);
        if (victim != NULL)
            decide1(victim, &r, "rb\x1f" "one", T0, &res); /* dies inside */
        _exit(1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 9, "the hook did not fire");

    /* The victim wiped the index before dying: only a rebuild finds the keys again. */
    st = stats(shm);
    cr_assert_eq(st.entries, 3);
    cr_assert_eq(st.evictions, 0);

    /* Fill the table and one more: the rebuilt LRU must evict "two", the oldest. */
    for (int i = 0; i < RL_SHM_CAPACITY_MIN - 3 + 1; i++) {
        snprintf(key, sizeof key, "rb\x1f" "new-%d", i);
        cr_assert_eq(decide1(shm, &r, key, T0, &res), 1);
    }
    st = stats(shm);
    cr_assert_eq(st.entries, RL_SHM_CAPACITY_MIN);
    cr_assert_eq(st.evictions, 1);
    cr_assert_eq(decide1(shm, &r, "rb\x1f" "one", T0, &res), 0);   /* kept, all 3 used */
    cr_assert_eq(decide1(shm, &r, "rb\x1f" "three", T0, &res), 0); /* kept, all 3 used */
    cr_assert_eq(decide1(shm, &r, "rb\x1f" "two", T0, &res), 1);
    cr_assert_eq(res.remaining, 2); /* evicted, so fresh */
    cr_assert_eq(stats(shm).insert_failures, 0);
    rl_shm_close(shm);
}

Test(shm, repair_of_many_stripes_keeps_every_live_key)
{
    rl_shm *shm = open_ok(tname, 4096); /* 64 stripes */
    rl_rule keep = mkrule("keep", 1, 3600000, 3), brief = mkrule("brief", 1, 1000, 1);
    rl_rule_result res, rs[RL_MAX_MATCH];
    rl_item batch[RL_MAX_MATCH];
    char key[300][32];
    rl_shm_stat before, after;
    pid_t pid;
    int status;

    /* 200 long-lived keys charged once, 100 short-lived ones that expire and get reclaimed,
     * so the stripes hold free slots below their high-water mark when the victim dies. */
    for (int i = 0; i < 300; i++) {
        snprintf(key[i], sizeof key[i], "%s\x1f" "c%d", i < 200 ? "keep" : "brief", i);
        cr_assert_eq(decide1(shm, i < 200 ? &keep : &brief, key[i], T0, &res), 1);
    }
    for (int i = 0; i < 100; i++) {
        char k[32];
        snprintf(k, sizeof k, "keep\x1f" "late%d", i);
        cr_assert_eq(decide1(shm, &keep, k, T0 + 5000, &res), 1);
    }
    before = stats(shm);
    cr_assert_gt(before.expired_reclaimed, 0);

    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        rl_shm *victim;
        setenv("RL_SHM_TEST_DIE_IN_LOCK", "1", 1);
        victim = rl_shm_open(tname, 4096, NULL);
        for (int i = 0; i < RL_MAX_MATCH; i++)
            batch[i] = mkitem(&keep, key[i * 12], &rs[i]); /* many stripes at once */
        if (victim != NULL)
            rl_shm_decide(victim, batch, RL_MAX_MATCH, T0 + 5000);
        _exit(1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 9, "the hook did not fire");

    after = stats(shm); /* locks, hence repairs, every stripe */
    cr_assert_eq(after.entries, before.entries);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(decide1(shm, &keep, key[i], T0 + 5000, &res), 1, "key %d", i);
        cr_assert_eq(res.remaining, 1, "key %d", i);
    }
    for (int i = 0; i < 5000; i++) {
        char k[32];
        snprintf(k, sizeof k, "keep\x1f" "after%d", i);
        cr_assert_eq(decide1(shm, &keep, k, T0 + 5000, &res), 1);
    }
    after = stats(shm);
    cr_assert_leq(after.entries, 4096);
    cr_assert_eq(after.insert_failures, 0);
    rl_shm_close(shm);
}
