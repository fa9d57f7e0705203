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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "vectors.h"
#include "leakcheck.h"

static char tname[64];

static void shm_setup(void)
{
    snprintf(tname, sizeof tname, "/rl-test-%d-0", (int)getpid());
    rl_shm_unlink(tname);
}

static void shm_teardown(void)
{
    rl_shm_unlink(tname);
    rl_test_leak_check();
}

TestSuite(shm, .init = shm_setup, .fini = shm_teardown, .timeout = 60);

#define T0 1700000000000LL /* some wall-clock-like instant, in ms */
/* What the limiter asks for with rule names of at most 15 bytes. */
#define KEY_MAX (15 + 1 + RL_CLIENT_MAX)
/* What the limiter asks for with Redis on or a sliding_window rule; a sliding_log of 128 needs
 * RL_STATE_WORDS (tests below open such tables themselves). */
#define WORDS 3

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

static rl_shm *open_words(const char *name, int64_t capacity, size_t words)
{
    rl_error err = {{0}};
    rl_shm *shm = rl_shm_open(name, capacity, KEY_MAX, words, &err);
    cr_assert_not_null(shm, "rl_shm_open: %s", err.text);
    return shm;
}

static rl_shm *open_ok(const char *name, int64_t capacity)
{
    return open_words(name, capacity, WORDS);
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

Test(shm, full_table_evicts_the_least_used_and_never_fails)
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
    char big[KEY_MAX + 2];
    rl_item huge = {.rule = &r, .client = "x", .key = big, .keylen = KEY_MAX + 1, .cost = 1,
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
    cr_assert(strstr(rl_shm_errstr(shm), "key of 81 bytes, at most 80") != NULL, "%s",
              rl_shm_errstr(shm));
    huge.keylen = KEY_MAX; /* the longest key fits */
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

/* ---- generations (shm_gen.c) ----------------------------------------------------------- */

/* Carried entries keep their expiry, which is checked against the real clock at the copy:
 * these tests decide at the real time, under limits of an hour. */
static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rl_shm *open_sized(const char *name, int64_t capacity, size_t key_max, size_t words)
{
    rl_error err = {{0}};
    rl_shm *shm = rl_shm_open(name, capacity, key_max, words, &err);
    cr_assert_not_null(shm, "rl_shm_open(%lld, %zu, %zu): %s", (long long)capacity, key_max,
                       words, err.text);
    return shm;
}

/* Spends key (a burst of 2) at now: two admitted, the third refused. */
static void spend(rl_shm *shm, const rl_rule *r, const char *key, int64_t now)
{
    rl_rule_result res;
    admit_n(shm, r, key, now, 2);
    cr_assert_eq(decide1(shm, r, key, now, &res), 0, "%s spent", key);
}

/* Are there private names of makers (NAME.new-*) left in /dev/shm? */
static int leftovers(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls /dev/shm | grep -q -- '^%s\\.new-'", tname + 1);
    return system(cmd) == 0;
}

Test(shm, a_new_capacity_is_a_new_generation_that_keeps_live_state)
{
    const int64_t now = real_ms();
    rl_rule r = mkrule("s:0000abcd", 10, 3600000, 2);
    rl_rule_result res;
    rl_shm *a = open_sized(tname, 1000, KEY_MAX, WORDS), *b, *c;

    spend(a, &r, "s:0000abcd\x1f" "spent", now);
    admit_n(a, &r, "s:0000abcd\x1f" "half", now, 1);
    cr_assert_eq(stats(a).generation, 1);

    b = open_sized(tname, 2000, KEY_MAX, WORDS);
    cr_assert_eq(stats(b).capacity, 2000);
    cr_assert_eq(stats(b).generation, 2);
    cr_assert_eq(stats(b).entries, 2, "both live entries carried");
    cr_assert_eq(decide1(b, &r, "s:0000abcd\x1f" "spent", now, &res), 0, "still spent");
    cr_assert_eq(decide1(b, &r, "s:0000abcd\x1f" "half", now, &res), 1);
    cr_assert_eq(decide1(b, &r, "s:0000abcd\x1f" "half", now, &res), 0, "one left, not two");
    cr_assert_eq(decide1(b, &r, "s:0000abcd\x1f" "new", now, &res), 1);

    /* A process still on the old generation keeps working on its copy. */
    cr_assert_eq(decide1(a, &r, "s:0000abcd\x1f" "spent", now, &res), 0);
    cr_assert_eq(stats(a).capacity, 1000);

    /* The next opener with the new capacity attaches to the new generation. */
    c = open_sized(tname, 2000, KEY_MAX, WORDS);
    cr_assert_eq(stats(c).generation, 2);
    cr_assert_eq(decide1(c, &r, "s:0000abcd\x1f" "new", now, &res), 1);
    cr_assert_eq(decide1(c, &r, "s:0000abcd\x1f" "new", now, &res), 0, "shared with b");

    /* And back to the old capacity: a third generation, still carrying. */
    rl_shm_close(a);
    a = open_sized(tname, 1000, KEY_MAX, WORDS);
    cr_assert_eq(stats(a).generation, 3);
    cr_assert_eq(decide1(a, &r, "s:0000abcd\x1f" "spent", now, &res), 0);
    cr_assert_eq(decide1(a, &r, "s:0000abcd\x1f" "new", now, &res), 0);
    cr_assert(!leftovers());
    rl_shm_close(c);
    rl_shm_close(b);
    rl_shm_close(a);
}

Test(shm, expired_entries_are_not_carried_and_a_smaller_capacity_keeps_what_fits)
{
    const int64_t now = real_ms();
    rl_rule r = mkrule("e:0000abcd", 10, 3600000, 2);
    rl_rule brief = mkrule("b:0000abcd", 1, 1, 1); /* its entry lives 1 ms */
    rl_rule_result res;
    char key[64];
    rl_shm *a = open_sized(tname, 1024, KEY_MAX, WORDS), *b, *c;

    cr_assert_eq(decide1(a, &brief, "b:0000abcd\x1f" "x", now - 10, &res), 1);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "e:0000abcd\x1f" "%d", i);
        admit_n(a, &r, key, now, 1);
    }
    cr_assert_geq(stats(a).entries, 200); /* the expired one may be reclaimed already */
    b = open_sized(tname, 2048, KEY_MAX, WORDS);
    cr_assert_eq(stats(b).entries, 200, "the expired entry stayed behind");
    c = open_sized(tname, 64, KEY_MAX, WORDS);
    cr_assert_leq(stats(c).entries, 64);
    cr_assert_geq(stats(c).entries, 48, "most of the smaller table is filled");
    cr_assert_eq(stats(c).insert_failures, 0);
    rl_shm_close(c);
    rl_shm_close(b);
    rl_shm_close(a);
}

Test(shm, larger_slots_are_a_new_generation_smaller_ones_attach)
{
    const int64_t now = real_ms();
    rl_rule r = mkrule("g:0000abcd", 10, 3600000, 2);
    rl_rule log = mkrule("l:0000abcd", 2, 3600000, 2);
    rl_rule_result res;
    rl_shm *a = open_sized(tname, 1000, KEY_MAX, 2), *b, *c, *d;

    log.algo = RL_ALGO_SLIDING_LOG;
    spend(a, &r, "g:0000abcd\x1f" "c", now);
    /* A longer rule name: keys of 8 more bytes. */
    b = open_sized(tname, 1000, KEY_MAX + 8, 2);
    cr_assert_eq(stats(b).generation, 2);
    cr_assert_eq(stats(b).key_max, KEY_MAX + 8);
    cr_assert_eq(decide1(b, &r, "g:0000abcd\x1f" "c", now, &res), 0, "still spent");
    /* Redis on (3 words): slots as large as both. */
    c = open_sized(tname, 1000, KEY_MAX, 3);
    cr_assert_eq(stats(c).generation, 3);
    cr_assert_eq(stats(c).key_max, KEY_MAX + 8, "the longer keys of the previous config fit");
    cr_assert_eq(stats(c).state_words, 3);
    cr_assert_eq(decide1(c, &r, "g:0000abcd\x1f" "c", now, &res), 0);
    /* Smaller needs attach to the larger slots as they are: no new generation. */
    rl_shm_close(b);
    b = open_sized(tname, 1000, KEY_MAX, 2);
    cr_assert_eq(stats(b).generation, 3);
    cr_assert_eq(decide1(b, &r, "g:0000abcd\x1f" "c", now, &res), 0);
    /* A first sliding_log rule (RL_STATE_WORDS words): its log carried across a capacity
     * change with every word. */
    d = open_sized(tname, 1000, KEY_MAX, RL_STATE_WORDS);
    cr_assert_eq(stats(d).generation, 4);
    cr_assert_eq(decide1(d, &log, "l:0000abcd\x1f" "c", now - 2000, &res), 1);
    cr_assert_eq(decide1(d, &log, "l:0000abcd\x1f" "c", now - 1000, &res), 1);
    cr_assert_eq(decide1(d, &log, "l:0000abcd\x1f" "c", now, &res), 0);
    rl_shm_close(d);
    d = open_sized(tname, 2000, KEY_MAX, RL_STATE_WORDS);
    cr_assert_eq(stats(d).generation, 5);
    cr_assert_eq(decide1(d, &log, "l:0000abcd\x1f" "c", now, &res), 0, "the log came along");
    cr_assert_eq(decide1(d, &r, "g:0000abcd\x1f" "c", now, &res), 0);
    cr_assert(!leftovers());
    rl_shm_close(d);
    rl_shm_close(c);
    rl_shm_close(b);
    rl_shm_close(a);
}

Test(shm, a_segment_of_another_layout_is_replaced_by_an_empty_one)
{
    int fd = shm_open(tname, O_RDWR | O_CREAT | O_EXCL, 0600);
    uint64_t head[2] = {0x31304d4853544c52ULL, 2}; /* our magic, layout 2 */
    char page[4096] = {0};
    rl_shm *shm;

    cr_assert_geq(fd, 0);
    memcpy(page, head, sizeof head);
    cr_assert_eq(write(fd, page, sizeof page), (ssize_t)sizeof page);
    close(fd);
    shm = open_sized(tname, 1000, KEY_MAX, WORDS);
    cr_assert_eq(stats(shm).generation, 2);
    cr_assert_eq(stats(shm).entries, 0);
    rl_shm_close(shm);
}

Test(shm, leftovers_of_dead_makers_are_swept_live_ones_are_not)
{
    char dead[128], busy[128];
    int fd, sync_fds[2];
    pid_t child;
    char c;

    snprintf(dead, sizeof dead, "%s.new-1-1", tname);
    snprintf(busy, sizeof busy, "%s.new-2-1", tname);
    fd = shm_open(dead, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    /* A maker at work: holds its flock. */
    cr_assert_eq(pipe(sync_fds), 0);
    child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        int f = shm_open(busy, O_RDWR | O_CREAT | O_EXCL, 0600);
        flock(f, LOCK_EX);
        if (write(sync_fds[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    cr_assert_eq(read(sync_fds[0], &c, 1), 1);
    rl_shm_close(open_sized(tname, 1000, KEY_MAX, WORDS));
    fd = shm_open(dead, O_RDWR, 0);
    cr_assert_lt(fd, 0, "the dead maker's segment was removed");
    fd = shm_open(busy, O_RDWR, 0);
    cr_assert_geq(fd, 0, "the live maker's segment stays");
    close(fd);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    shm_unlink(busy);
    close(sync_fds[0]);
    close(sync_fds[1]);
}

Test(shm, racing_replacers_make_one_generation)
{
    enum { NPROC = 6 };
    rl_rule r = mkrule("race:0000abcd", 1, 3600000, 100);
    const int64_t now = real_ms();
    rl_shm *old = open_sized(tname, 1000, KEY_MAX, WORDS), *shm;
    pid_t pids[NPROC];
    rl_rule_result res;

    admit_n(old, &r, "race:0000abcd\x1f" "k", now, 10);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            rl_error err;
            rl_rule_result cres;
            rl_shm *s = rl_shm_open(tname, 2000, KEY_MAX, WORDS, &err);
            _exit(s != NULL && decide1(s, &r, "race:0000abcd\x1f" "k", now, &cres) == 1 ? 0 : 1);
        }
    }
    for (int p = 0; p < NPROC; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    shm = open_sized(tname, 2000, KEY_MAX, WORDS);
    cr_assert_eq(stats(shm).generation, 2, "one replacement, the others attached to it");
    cr_assert_eq(decide1(shm, &r, "race:0000abcd\x1f" "k", now, &res), 1);
    cr_assert_eq(res.remaining, 100 - 10 - NPROC - 1);
    cr_assert(!leftovers());
    rl_shm_close(shm);
    rl_shm_close(old);
}

/* Replacers queued at the old segment's flock (held here while they start): the first to get
 * it replaces the segment; each later one must find the name on that new generation and
 * attach to it, never replace it again from the old one (which would drop the decisions made
 * in the new one meanwhile). The race above rarely lines them up so; this makes it the rule. */
Test(shm, replacers_queued_on_the_old_flock_attach_to_the_new_generation)
{
    enum { NPROC = 4 };
    rl_rule r = mkrule("race:0000abcd", 1, 3600000, 100);
    const int64_t now = real_ms();
    const struct timespec start = {0, 500 * 1000000L};
    rl_shm *old = open_sized(tname, 1000, KEY_MAX, WORDS), *shm;
    int lfd = shm_open(tname, O_RDWR, 0);
    pid_t pids[NPROC];
    rl_rule_result res;

    admit_n(old, &r, "race:0000abcd\x1f" "k", now, 10);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(flock(lfd, LOCK_EX), 0);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            rl_error err;
            rl_rule_result cres;
            rl_shm *s;

            close(lfd);
            s = rl_shm_open(tname, 2000, KEY_MAX, WORDS, &err);
            _exit(s != NULL && decide1(s, &r, "race:0000abcd\x1f" "k", now, &cres) == 1 ? 0 : 1);
        }
    }
    /* Time to open the old segment and queue at its flock (well within the replacers' wait);
     * one that comes later finds the new generation at once, as it should. */
    nanosleep(&start, NULL);
    flock(lfd, LOCK_UN);
    close(lfd);
    for (int p = 0; p < NPROC; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    shm = open_sized(tname, 2000, KEY_MAX, WORDS);
    cr_assert_eq(stats(shm).generation, 2, "one replacement, the others attached to it");
    cr_assert_eq(decide1(shm, &r, "race:0000abcd\x1f" "k", now, &res), 1);
    cr_assert_eq(res.remaining, 100 - 10 - NPROC - 1, "every child's decision is in it");
    cr_assert(!leftovers());
    rl_shm_close(shm);
    rl_shm_close(old);
}

static void count_key(const char *key, size_t len, void *ud)
{
    int *n = ud;
    n[0]++;
    n[1] += len == 6 && memcmp(key, "k\x1f" "live", 6) == 0;
}

Test(shm, the_scan_sees_live_entries_only_and_writes_nothing)
{
    const int64_t now = real_ms();
    rl_rule r = mkrule("k", 10, 3600000, 2), brief = mkrule("b", 1, 1, 1);
    rl_rule_result res;
    int n[2] = {0, 0};
    rl_shm *a;

    cr_assert_eq(rl_shm_scan(tname, count_key, n), -1, "no segment");
    a = open_sized(tname, 1000, KEY_MAX, WORDS);
    admit_n(a, &r, "k\x1f" "live", now, 1);
    cr_assert_eq(decide1(a, &brief, "b\x1f" "gone", now - 10, &res), 1);
    cr_assert_eq(rl_shm_scan(tname, count_key, n), 0);
    cr_assert_eq(n[0], 1, "only the live entry (%d)", n[0]);
    cr_assert_eq(n[1], 1);
    rl_shm_close(a);
}

Test(shm, key_and_word_ranges_are_checked)
{
    rl_error err = {{0}};

    cr_assert_null(rl_shm_open(tname, 1000, 0, WORDS, &err));
    cr_assert(strstr(err.text, "out of range") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open(tname, 1000, RL_KEY_MAX + 1, WORDS, &err));
    cr_assert_null(rl_shm_open(tname, 1000, KEY_MAX, RL_STATE_WORDS + 1, &err));
    cr_assert_null(rl_shm_open(tname, 1000, KEY_MAX, 0, &err));
    cr_assert_eq(rl_shm_size(1000, 0, WORDS), 0);
}

/* rl_shm_plan tells what an open would do, and changes nothing. */
Test(shm, the_plan_says_what_an_open_would_do)
{
    char out[600];
    rl_shm *a;

    cr_assert_eq(rl_shm_plan(tname, 1000, KEY_MAX, WORDS, NULL, out, sizeof out), RL_SHM_PLAN_NEW);
    cr_assert(strstr(out, "does not exist yet") != NULL, "%s", out);
    a = open_sized(tname, 1000, KEY_MAX, WORDS);
    cr_assert_eq(rl_shm_plan(tname, 1000, KEY_MAX, WORDS, NULL, out, sizeof out), RL_SHM_PLAN_KEEP);
    cr_assert(strstr(out, "fits: it is used as it is, every live entry kept") != NULL, "%s", out);
    cr_assert_eq(rl_shm_plan(tname, 1000, KEY_MAX - 8, 2, NULL, out, sizeof out), RL_SHM_PLAN_KEEP);
    cr_assert_eq(rl_shm_plan(tname, 2000, KEY_MAX, WORDS, NULL, out, sizeof out), RL_SHM_PLAN_CARRY);
    cr_assert(strstr(out, "has capacity 1000, the configuration 2000") != NULL, "%s", out);
    cr_assert(strstr(out, "generation 2") != NULL, "%s", out);
    cr_assert_eq(rl_shm_plan(tname, 1000, KEY_MAX + 8, WORDS, NULL, out, sizeof out),
                 RL_SHM_PLAN_CARRY);
    cr_assert(strstr(out, "keys of up to 80 bytes and 3 state words, the configuration needs 88 "
                          "and 3") != NULL,
              "%s", out);
    /* A table /dev/shm cannot hold. */
    cr_assert_eq(rl_shm_plan(tname, RL_SHM_CAPACITY_MAX, KEY_MAX, WORDS, NULL, out, sizeof out), -1);
    cr_assert(strstr(out, "a start would fail") != NULL, "%s", out);
    cr_assert_eq(stats(a).generation, 1, "nothing changed");
    rl_shm_close(a);
}

/* The budget: one million keys of a config whose rule names are <= 15 bytes in <= 128 MiB,
 * i.e. <= 128 bytes a key with the index and the header's share. */
Test(shm, bytes_per_key_fit_the_budget)
{
    const int64_t caps[] = {1000, 100000, 1000000, 1 << 20, 4000000};
    size_t one_m = rl_shm_size(1000000, KEY_MAX, WORDS);

    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        double per_key = (double)rl_shm_size(caps[i], KEY_MAX, WORDS) / (double)caps[i];
        cr_log_info("capacity %lld: %.1f bytes per key", (long long)caps[i], per_key);
        printf("shm: capacity %7lld, key_max %d, %d state words: %.1f bytes per key\n",
               (long long)caps[i], KEY_MAX, WORDS, per_key);
        if (caps[i] >= 1000000)
            cr_assert_leq(per_key, 128.0, "capacity %lld: %.1f", (long long)caps[i], per_key);
    }
    printf("shm: 1000000 keys: %.1f MiB\n", (double)one_m / (1 << 20));
    cr_assert_leq(one_m, (size_t)128 << 20);
    /* The slot is the formula of shm.c's header: 16 + 8*words + key_max, rounded to 8. */
    cr_assert_eq(rl_shm_size(1 << 20, 80, 3) - rl_shm_size(1 << 20, 73, 3), (size_t)0);
    cr_assert_eq(rl_shm_size(1 << 20, 81, 3) - rl_shm_size(1 << 20, 80, 3), (size_t)8 << 20);
    cr_assert_eq(rl_shm_size(1 << 20, 80, 2) + ((size_t)8 << 20), rl_shm_size(1 << 20, 80, 3));
}

Test(shm, impossible_capacities_are_errors)
{
    rl_error err = {{0}};

    cr_assert_null(rl_shm_open(tname, RL_SHM_CAPACITY_MIN - 1, KEY_MAX, WORDS, &err));
    cr_assert(strstr(err.text, "out of range") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open(tname, INT64_MAX, KEY_MAX, WORDS, &err));
    cr_assert(strstr(err.text, "out of range") != NULL, "%s", err.text);
    cr_assert_eq(rl_shm_size(0, KEY_MAX, WORDS), 0);
    cr_assert_eq(rl_shm_size(INT64_MAX, KEY_MAX, WORDS), 0);
    cr_assert_gt(rl_shm_size(RL_SHM_CAPACITY_MAX, KEY_MAX, WORDS), 0);

    /* In range, but ~120 GiB: no machine this runs on has that much /dev/shm. The failure is
     * at open, and leaves no segment behind. */
    err.text[0] = '\0';
    cr_assert_null(rl_shm_open(tname, RL_SHM_CAPACITY_MAX, KEY_MAX, WORDS, &err));
    cr_assert(strstr(err.text, "MiB of shared memory") != NULL, "%s", err.text);
    cr_assert_eq(shm_open(tname, O_RDWR, 0), -1);

    cr_assert_null(rl_shm_open("no-slash", 16, KEY_MAX, WORDS, &err));
    cr_assert(strstr(err.text, "must be") != NULL, "%s", err.text);
    cr_assert_null(rl_shm_open("/a/b", 16, KEY_MAX, WORDS, &err));
}

Test(shm, foreign_segments_are_refused)
{
    rl_error err = {{0}};
    int fd = shm_open(tname, O_RDWR | O_CREAT | O_EXCL, 0600);
    char junk[4096];

    cr_assert_geq(fd, 0);
    /* Empty: looks like a creator that died before sizing it. Waits ~2 s, then gives up. */
    cr_assert_null(rl_shm_open(tname, 16, KEY_MAX, WORDS, &err));
    cr_assert(strstr(err.text, "empty") != NULL, "%s", err.text);

    memset(junk, 'x', sizeof junk);
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    cr_assert_null(rl_shm_open(tname, 16, KEY_MAX, WORDS, &err));
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
            rl_shm *shm = rl_shm_open(tname, 4096, KEY_MAX, WORDS, &err);
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

/* What one worker thread does: `attempts` decisions (or, with now < 0, as many as fit in
 * run_ms of the real clock), cycling over NKEYS clients, each a batch of one item per rule.
 * A rule marked `global` is keyed by one client for all ("all"), the others by the client. */
typedef struct hammer {
    rl_shm *shm;
    const rl_rule *rules[2];
    int global[2];
    size_t nrules;
    int64_t now;  /* >= 0: one fixed instant; < 0: the table reads the clock (backend.h) */
    int attempts; /* fixed instant */
    int run_ms;   /* moving clock */
    size_t words; /* the table's state words; 0: WORDS */
} hammer;

/* What comes back from a worker, summed over its threads (through a pipe for processes). */
typedef struct tally {
    int64_t admitted[NKEYS]; /* by client */
    int64_t first_ms, last_ms; /* moving clock: before the first attempt, after the last */
    int64_t gap_ms;          /* moving clock: the smallest of the threads' longest gaps */
    int64_t span_ms;         /* moving clock: first to last attempt of that steadiest thread */
    int errors;
} tally;

typedef struct hammer_thread {
    const hammer *h;
    tally t;
} hammer_thread;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *hammer_run(void *arg)
{
    hammer_thread *ht = arg;
    const hammer *h = ht->h;
    char key[2][NKEYS][RL_NAME_MAX + 32];
    int64_t prev = -1, deadline = 0;

    for (size_t r = 0; r < h->nrules; r++)
        for (int k = 0; k < NKEYS; k++)
            if (h->global[r])
                snprintf(key[r][k], sizeof key[r][k], "%s\x1f" "all", h->rules[r]->name);
            else
                snprintf(key[r][k], sizeof key[r][k], "%s\x1f" "client-%d", h->rules[r]->name, k);
    if (h->now < 0) {
        ht->t.first_ms = prev = wall_ms();
        deadline = prev + h->run_ms;
    }
    for (int i = 0; h->now < 0 || i < h->attempts; i++) {
        int k = h->now < 0 ? 0 : i % NKEYS;
        rl_rule_result res[2];
        rl_item items[2];
        int rc;

        for (size_t r = 0; r < h->nrules; r++)
            items[r] = mkitem(h->rules[r], key[r][k], &res[r]);
        rc = rl_shm_decide(h->shm, items, h->nrules, h->now);
        if (rc < 0)
            ht->t.errors++;
        else
            ht->t.admitted[k] += rc;
        if (h->now < 0) {
            /* The decision was made at some instant in [prev attempt's start, now]. */
            int64_t t = wall_ms();
            if (t - prev > ht->t.gap_ms)
                ht->t.gap_ms = t - prev;
            prev = t;
            ht->t.last_ms = t;
            ht->t.span_ms = t - ht->t.first_ms;
            if (t >= deadline)
                break;
        }
    }
    return NULL;
}

static void tally_add(tally *sum, const tally *t, int first)
{
    for (int k = 0; k < NKEYS; k++)
        sum->admitted[k] += t->admitted[k];
    sum->errors += t->errors;
    if (first || t->first_ms < sum->first_ms)
        sum->first_ms = t->first_ms;
    if (first || t->last_ms > sum->last_ms)
        sum->last_ms = t->last_ms;
    if (first || t->gap_ms < sum->gap_ms) {
        sum->gap_ms = t->gap_ms;
        sum->span_ms = t->span_ms;
    }
}

/* NPROC processes (each attaching on its own) x NTHREAD threads (sharing a handle) run h.
 * All start together (when the parent closes `go`); each process's tally comes back through
 * a pipe and *out is their sum. The limits are set so that admissions go on for most of the
 * run: contention is real, not just the first few requests. */
static void hammer_all(const hammer *h, tally *out)
{
    int fds[2], go[2];
    pid_t pids[NPROC];

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(pipe(go), 0);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            hammer mine = *h;
            hammer_thread ht[NTHREAD];
            pthread_t th[NTHREAD];
            tally sum;
            int bad;
            char c;

            memset(&sum, 0, sizeof sum);
            mine.shm = rl_shm_open(tname, 4096, KEY_MAX, h->words ? h->words : WORDS, NULL);
            bad = mine.shm == NULL;
            close(go[1]);
            bad |= read(go[0], &c, 1) != 0; /* EOF: go */
            for (int t = 0; !bad && t < NTHREAD; t++) {
                memset(&ht[t], 0, sizeof ht[t]);
                ht[t].h = &mine;
                bad |= pthread_create(&th[t], NULL, hammer_run, &ht[t]) != 0;
            }
            for (int t = 0; !bad && t < NTHREAD; t++) {
                pthread_join(th[t], NULL);
                tally_add(&sum, &ht[t].t, t == 0);
            }
            bad |= sum.errors != 0;
            if (write(fds[1], &sum, sizeof sum) != (ssize_t)sizeof sum)
                bad = 1;
            _exit(bad);
        }
    }
    close(fds[1]);
    close(go[0]);
    close(go[1]);
    memset(out, 0, sizeof *out);
    for (int p = 0; p < NPROC; p++) {
        tally t;
        int status;
        cr_assert_eq(read(fds[0], &t, sizeof t), (ssize_t)sizeof t);
        tally_add(out, &t, p == 0);
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed", p);
    }
    close(fds[0]);
}

static rl_rule mkrule_algo(const char *name, rl_algo algo, int64_t count, int64_t period_ms,
                           int64_t burst)
{
    rl_rule r = mkrule(name, count, period_ms, burst);
    r.algo = algo;
    return r;
}

/* Every algorithm, one fixed instant: each of the 8 clients gets exactly its allowance, from
 * 8 threads in 4 processes that try 2x as often, and the stored state agrees. */
static void hammer_one_rule(rl_algo algo)
{
    /* Half of each client's attempts fit: for GCRA the burst, for windows and the log the
     * count (the instant is a window's start: no previous window weighs in). */
    const int64_t allow = algo == RL_ALGO_SLIDING_LOG ? RL_LOG_MAX : 1000;
    rl_rule r = mkrule_algo("pk", algo, algo == RL_ALGO_GCRA ? 1 : allow, 3600000, allow);
    hammer h = {.rules = {&r}, .nrules = 1, .now = 1699999200000LL, .attempts = 2 * (int)allow,
                .words = rl_algo_state_words(&r) > WORDS ? rl_algo_state_words(&r) : WORDS};
    rl_shm *shm = open_words(tname, 4096, h.words);
    rl_rule_result res;
    tally t;

    hammer_all(&h, &t);
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pk\x1f" "client-%d", k);
        cr_assert_eq(t.admitted[k], allow, "%s: client %d: %lld admitted",
                     rl_vec_algo_name(algo), k, (long long)t.admitted[k]);
        cr_assert_eq(decide1(shm, &r, key, h.now, &res), 0);
        cr_assert_eq(res.remaining, 0);
    }
    rl_shm_close(shm);
}

Test(shm, concurrent_gcra_admits_exactly_burst_per_key)
{
    hammer_one_rule(RL_ALGO_GCRA);
}

Test(shm, concurrent_fixed_window_admits_exactly_count_per_key)
{
    hammer_one_rule(RL_ALGO_FIXED_WINDOW);
}

Test(shm, concurrent_sliding_window_admits_exactly_count_per_key)
{
    hammer_one_rule(RL_ALGO_SLIDING_WINDOW);
}

Test(shm, concurrent_sliding_log_admits_exactly_count_per_key)
{
    hammer_one_rule(RL_ALGO_SLIDING_LOG);
}

/* A table keeps state_words words a key: a rule whose state is larger is refused, never
 * decided on a log cut short (which would forget admissions); smaller ones share the table. */
Test(shm, a_rule_larger_than_the_slots_is_an_error)
{
    rl_shm *shm = open_ok(tname, 1000);
    rl_rule big = mkrule_algo("big", RL_ALGO_SLIDING_LOG, 5, 60000, 5); /* 5 words */
    rl_rule fits = mkrule_algo("fits", RL_ALGO_SLIDING_LOG, 2, 60000, 2); /* 3 words */
    rl_rule_result res;

    cr_assert_eq(decide1(shm, &big, "big\x1f" "c", T0, &res), -1);
    cr_assert(strstr(rl_shm_errstr(shm), "rule \"big\" keeps 5 state words, this table 3"),
              "%s", rl_shm_errstr(shm));
    cr_assert_eq(decide1(shm, &fits, "fits\x1f" "c", T0, &res), 1);
    cr_assert_eq(decide1(shm, &fits, "fits\x1f" "c", T0 + 1, &res), 1);
    cr_assert_eq(decide1(shm, &fits, "fits\x1f" "c", T0 + 2, &res), 0);
    cr_assert_eq(res.retry_after_ms, 60000 - 2);
    rl_shm_close(shm);

    /* in a table sized for it, a 128-entry log keeps every entry across decisions */
    rl_shm_unlink(tname);
    shm = open_words(tname, 1000, RL_STATE_WORDS);
    big.count = RL_LOG_MAX;
    for (int i = 0; i < RL_LOG_MAX; i++)
        cr_assert_eq(decide1(shm, &big, "big\x1f" "c", T0 + i, &res), 1, "entry %d", i);
    cr_assert_eq(decide1(shm, &big, "big\x1f" "c", T0 + 200, &res), 0);
    cr_assert_eq(res.retry_after_ms, 60000 - 200, "the oldest entry was kept");
    cr_assert_eq(decide1(shm, &big, "big\x1f" "c", T0 + 60000, &res), 1);
    cr_assert_eq(decide1(shm, &big, "big\x1f" "c", T0 + 60000, &res), 0);
    cr_assert_eq(res.retry_after_ms, 1, "and the next one, 1 ms younger");
    rl_shm_close(shm);
}

Test(shm, concurrent_multi_rule_decisions_are_atomic)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule per_key = mkrule("pk", 1, 3600000, 5000); /* 8 keys x 5000 = 40000 ... */
    rl_rule global = mkrule("g", 1, 3600000, 30000);  /* ... but 30000 in all */
    hammer h = {.rules = {&per_key, &global}, .global = {0, 1}, .nrules = 2, .now = T0,
                .attempts = 20000};
    rl_rule_result res;
    int64_t total = 0;
    tally t;

    /* Many attempts: the global key is contended by batches that lock different stripes. */
    hammer_all(&h, &t);
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pk\x1f" "client-%d", k);
        cr_assert_leq(t.admitted[k], 5000);
        total += t.admitted[k];
        /* The stored per-key state matches what was admitted: nothing charged by refusals. */
        cr_assert_eq(decide1(shm, &per_key, key, T0, &res), t.admitted[k] < 5000);
        if (t.admitted[k] < 5000)
            cr_assert_eq(res.remaining, 5000 - t.admitted[k] - 1);
    }
    cr_assert_eq(total, 30000);
    cr_assert_eq(decide1(shm, &global, "g\x1f" "all", T0, &res), 0);
    rl_shm_close(shm);
}

/* Two rules over the same client, of different algorithms, so their keys sit in different
 * stripes: every client gets exactly the stricter allowance, and the looser rule is charged
 * exactly that many (a refusal by one rule consumes nothing from the other). */
Test(shm, concurrent_two_rules_per_client_are_atomic)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule loose = mkrule_algo("pa", RL_ALGO_GCRA, 1, 3600000, 1500);
    rl_rule strict = mkrule_algo("pb", RL_ALGO_SLIDING_WINDOW, 600, 3600000, 600);
    hammer h = {.rules = {&loose, &strict}, .nrules = 2, .now = 1699999200000LL,
                .attempts = 2000};
    rl_rule_result res;
    tally t;

    hammer_all(&h, &t);
    for (int k = 0; k < NKEYS; k++) {
        char ka[32], kb[32];
        snprintf(ka, sizeof ka, "pa\x1f" "client-%d", k);
        snprintf(kb, sizeof kb, "pb\x1f" "client-%d", k);
        cr_assert_eq(t.admitted[k], 600, "client %d: %lld", k, (long long)t.admitted[k]);
        cr_assert_eq(decide1(shm, &loose, ka, h.now, &res), 1);
        cr_assert_eq(res.remaining, 1500 - 600 - 1, "client %d: loose rule overcharged", k);
        cr_assert_eq(decide1(shm, &strict, kb, h.now, &res), 0);
    }
    rl_shm_close(shm);
}

/* GCRA under a moving real clock for ~300 ms, one key, 8 threads in 4 processes, with the
 * table reading the clock under its lock (now < 0). Every decision happened within
 * [first, last] (measured around the attempts), so GCRA can have admitted at most
 * burst + floor(E*count/period), E = last - first: that bound is strict.
 *
 * A lower bound holds too, with a slack measured rather than guessed: tokens are only lost
 * when the bucket overflows, i.e. when nobody asked for (burst-1)*T ms. The steadiest thread
 * (the smallest longest gap g between two of its attempts) asked at least every g ms over its
 * own span S (first to last attempt); processes start and end apart on a loaded machine, so S
 * may be shorter than E and only S is covered. Over S no token is lost, so at least
 * floor(S*count/period) minus the (g+1)*rate tokens at each end were admitted. If the machine
 * stalled longer than the bucket covers, the lower bound is not claimed (logged), the upper
 * one still is. */
Test(shm, gcra_with_a_moving_clock_never_over_admits)
{
    rl_shm *shm = open_ok(tname, 4096);
    rl_rule r = mkrule("mv", 2000, 1000, 200); /* T = 0.5 ms: the bucket covers 99.5 ms */
    hammer h = {.rules = {&r}, .nrules = 1, .now = -1, .run_ms = 300};
    tally t;
    int64_t e, upper, lower, slack;

    hammer_all(&h, &t);
    e = t.last_ms - t.first_ms;
    upper = r.burst + e * r.count / r.period_ms;
    lower = t.span_ms * r.count / r.period_ms;
    slack = 2 * (t.gap_ms + 1) * r.count / r.period_ms + 1;
    printf("shm: moving clock: %lld admitted over %lld ms (bound %lld; the steadiest thread: "
           "%lld ms span, longest gap %lld ms)\n",
           (long long)t.admitted[0], (long long)e, (long long)upper, (long long)t.span_ms,
           (long long)t.gap_ms);
    cr_assert_geq(e, 300);
    cr_assert_leq(t.admitted[0], upper, "over-admission: %lld > %lld over %lld ms",
                  (long long)t.admitted[0], (long long)upper, (long long)e);
    if ((t.gap_ms + 1) * r.count < (r.burst - 1) * r.period_ms)
        cr_assert_geq(t.admitted[0], lower - slack, "%lld admitted, expected >= %lld - %lld",
                      (long long)t.admitted[0], (long long)lower, (long long)slack);
    else
        printf("shm: a %lld ms stall: lower bound not checked\n", (long long)t.gap_ms);
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

    /* Slots are taken in order one, two, three; "two" is used once (its insert, which marks
     * nothing), the others again, so the hand, starting at "one", must evict "two" first: a
     * rebuild that lost the `ref` bits or the hand would be caught below. */
    admit_n(shm, &r, "rb\x1f" "one", T0, 2);
    admit_n(shm, &r, "rb\x1f" "two", T0, 1);
    admit_n(shm, &r, "rb\x1f" "three", T0, 3);
    admit_n(shm, &r, "rb\x1f" "one", T0, 1);

    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        rl_shm *victim;
        setenv("RL_SHM_TEST_DIE_IN_LOCK", "1", 1);
        victim = rl_shm_open(tname, RL_SHM_CAPACITY_MIN, KEY_MAX, WORDS, NULL);
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

    /* Fill the table and one more: the hand must pass "one" (used since it last passed)
     * and evict "two" (used once, at its insert). */
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
        victim = rl_shm_open(tname, 4096, KEY_MAX, WORDS, NULL);
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

/* ---- a damaged segment is validated, never trusted (issue #10.6) ----------------------- */

#include "shm_int.h"

Test(shm, junk_in_indexes_between_decisions_is_repaired_never_a_crash)
{
    rl_shm *shm = open_ok(tname, 256);
    rl_rule r = mkrule("jk", 1, 3600000, 3);
    rl_rule_result res;
    char key[32];
    unsigned seed = 12345;
    int64_t repairs_before = stats(shm).repairs;

    for (int round = 0; round < 200; round++) {
        uint32_t s = (uint32_t)rand_r(&seed) % shm->nstripes;
        shm_stripe *st = &shm->stripes[s];
        /* Locking validates (and repairs) the stripe. Its slot range is not in the segment
         * (layout 4): the junk below is written through this handle's own copy. */
        const uint32_t first = shm->span[s].first, nslots = shm->span[s].nslots;
        cr_assert_eq(rl_shm_lock(shm, s), 0, "%s", rl_shm_errstr(shm));
        rl_shm_unlock(shm, s);
        switch (round % 5) {
        case 0: /* junk bucket heads */
            for (uint32_t b = 0; b < shm->nbuckets; b++)
                shm->buckets[(size_t)s * shm->nbuckets + b] = (uint32_t)rand_r(&seed);
            break;
        case 1: /* chains made into cycles / out of range */
            for (uint32_t i = first; i < first + nslots; i++)
                rl_shm_slot_at(shm, i)->next = (uint32_t)rand_r(&seed) % (nslots + 3) + first;
            break;
        case 2: /* stripe fields (not its lock) */
            st->dirty = (uint32_t)rand_r(&seed);
            st->fresh = (uint32_t)rand_r(&seed);
            st->hand = (uint32_t)rand_r(&seed);
            break;
        case 3: /* free list */
            st->free_head = (uint32_t)rand_r(&seed);
            st->used = (uint32_t)rand_r(&seed);
            break;
        default: /* key lengths */
            for (uint32_t i = first; i < first + nslots && i < 256; i++)
                rl_shm_slot_at(shm, i)->keylen = (uint16_t)rand_r(&seed);
            break;
        }
        for (int k = 0; k < 20; k++) {
            int rc;
            snprintf(key, sizeof key, "jk\x1f" "c%d", (round * 7 + k) % 300);
            rc = decide1(shm, &r, key, T0, &res);
            cr_assert(rc == 0 || rc == 1 || rc == -1, "rc %d", rc);
        }
    }
    /* Repaired: the stripes are consistent again and a client is limited as before. */
    cr_assert_gt(stats(shm).repairs, repairs_before);
    admit_n(shm, &r, "jk\x1f" "fresh", T0, 3);
    cr_assert_eq(decide1(shm, &r, "jk\x1f" "fresh", T0, &res), 0);
    cr_assert_leq(stats(shm).entries, 256);
    rl_shm_close(shm);
}

/* A chain repaired in the middle of a decision (the find that found it damaged) leaves the
 * stripe marked dirty: the decision goes on mutating it, and if its process dies before the
 * unlock the next locker must still rebuild. Clearing the flag there lost that. */
Test(shm, a_repair_within_a_decision_keeps_the_stripe_dirty)
{
    rl_shm *shm = open_ok(tname, 256);
    const char key[] = "dk\x1f" "c1";
    uint64_t h = rl_shm_hash(shm, key, sizeof key - 1);
    uint32_t s = 0;

    cr_assert_eq(rl_shm_lock(shm, s), 0, "%s", rl_shm_errstr(shm));
    shm->stripes[s].dirty = 1; /* as a decision sets it once it holds the lock */
    for (uint32_t b = 0; b < shm->nbuckets; b++)
        shm->buckets[(size_t)s * shm->nbuckets + b] = 0xfffffff0u; /* out of range */
    (void)rl_shm_find_repair(shm, s, h, key, sizeof key - 1);
    cr_assert_eq(shm->stripes[s].dirty, 1, "still dirty after a repair within the decision");
    shm->stripes[s].dirty = 0;
    rl_shm_unlock(shm, s);
    rl_shm_close(shm);
}

/* The chain walk's key compare (rl_shm_key_eq: word loads, the last one overlapping) sees
 * every byte of keys of every length class, at any alignment, as memcmp does. Each key ends
 * where its heap block ends, so that a load past the end fails under ASan. */
Test(shm, the_key_compare_sees_every_byte_of_every_length)
{
    for (size_t len = 0; len <= 40; len++) {
        for (size_t off = 0; off < 8; off++) {
            char *a = malloc(len > 0 ? len : 1), *bb = malloc(off + len > 0 ? off + len : 1);
            char *b = bb + off;
            cr_assert(a != NULL && bb != NULL);
            for (size_t i = 0; i < len; i++)
                a[i] = b[i] = (char)('a' + i % 26);
            cr_assert(rl_shm_key_eq(a, b, len), "len %zu off %zu: equal", len, off);
            for (size_t at = 0; at < len; at++) {
                b[at] ^= 0x40;
                cr_assert(!rl_shm_key_eq(a, b, len), "len %zu off %zu: byte %zu differs", len,
                          off, at);
                b[at] ^= 0x40;
            }
            free(a);
            free(bb);
        }
    }
}

/* The slow peer: a process that holds every stripe lock and never lets go (alive, stuck). A
 * decision gives up at SHM_LOCK_TIMEOUT_MS with an error (the limiter's failover policy then
 * applies) instead of waiting forever; once the holder dies, its locks are recovered (robust
 * mutexes) and decisions go on. The bound checked is liveness, not speed: 5x the timeout. */
Test(shm, a_lock_held_by_a_stuck_process_times_out_then_recovers, .timeout = 40)
{
    rl_shm *shm = open_ok(tname, 64);
    rl_rule r = mkrule("lk", 5, 60000, 5);
    rl_rule_result res;
    struct timespec a, b;
    int ready[2];
    char c;

    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (uint32_t s = 0; s < shm->nstripes; s++)
            if (rl_shm_lock(shm, s) != 0)
                _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], &c, 1), 1, "the holder could not take the locks");
    close(ready[0]);

    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = decide1(shm, &r, "lk\x1f" "c", T0, &res);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
    printf("stuck lock holder: the decision gave up after %ld ms (timeout %d ms)\n", ms,
           SHM_LOCK_TIMEOUT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(rc, -1, "a decision went through a held lock");
    cr_assert(strstr(rl_shm_errstr(shm), "held too long") != NULL, "%s", rl_shm_errstr(shm));
    cr_assert_lt(ms, 5 * SHM_LOCK_TIMEOUT_MS, "waited %ld ms", ms);

    /* The holder is dead: the next locker recovers the lock and decides. */
    cr_assert_eq(decide1(shm, &r, "lk\x1f" "c", T0, &res), 1, "%s", rl_shm_errstr(shm));
    cr_assert_eq(res.remaining, 4);
    rl_shm_close(shm);
}

/* A stripe of the old generation whose lock a stuck process holds is skipped (its clients start
 * fresh) instead of stopping the new generation. */
Test(shm, a_stuck_stripe_is_skipped_by_the_copy, .timeout = 60)
{
    const int64_t now = real_ms();
    rl_rule r = mkrule("st:0000abcd", 10, 3600000, 2);
    rl_shm *a = open_sized(tname, 64, KEY_MAX, WORDS), *b;
    char key[64];
    int64_t total;
    int ready[2];
    char c;

    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "st:0000abcd\x1f" "%d", i);
        admit_n(a, &r, key, now, 1);
    }
    cr_assert_eq(a->nstripes, 4);
    cr_assert_gt(a->stripes[0].used, 0, "stripe 0 holds some of the keys");
    total = stats(a).entries; /* 40, less what full stripes evicted */
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (rl_shm_lock(a, 0) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], &c, 1), 1, "the holder could not take the lock");
    close(ready[0]);

    b = open_sized(tname, 128, KEY_MAX, WORDS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(stats(b).entries, total - (int64_t)a->stripes[0].used, "all but stripe 0's");
    cr_assert(strstr(rl_shm_note(b), "some stripes skipped") != NULL, "%s", rl_shm_note(b));
    rl_shm_close(b);
    rl_shm_close(a);
}
