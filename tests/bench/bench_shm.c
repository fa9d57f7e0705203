/* bench_shm.c -- decisions per second of the shared-memory table, and its bytes per key
 *
 * Not a test: `make bench` builds it with -O2 and no sanitizers and runs it. Figures:
 *
 *   baseline  the bare rl_algo_decide loop (no table, no lock, no hashing), an uncontended
 *             pthread mutex lock/unlock loop, and the three parts every decision pays besides
 *             the algorithm: a robust process-shared trylock/unlock (the stripe lock's kind),
 *             a CLOCK_REALTIME read and SipHash-1-3 of a key. Their times added up are the
 *             floor printed before the goals: what a decision cannot go below
 *   hot       every decision on one key (one stripe, one slot: the lock is the contention)
 *   warm      a set of WARM_KEYS distinct keys, pre-filled, visited in a pseudo-random order
 *             (no two consecutive decisions on the same cache lines), capacity > keys so
 *             nothing is evicted
 *
 * each for 1 process and for 2 processes (fork; each its own rl_shm_open of the same segment),
 * as decisions/s per process and in total, and as a ratio to the baseline. Every phase runs
 * for a fixed time (PHASE_MS), so the whole run is bounded (~15 s, most of it pre-filling and
 * the 1M-key segment's creation).
 *
 * The rule is GCRA with a limit no run can reach (every decision is admitted and stored: the
 * full path, the worst case for the store), in a table of the words GCRA keeps (2), as the
 * limiter opens it for a GCRA-only config. Two more rows use a small table whose slots are
 * sized for a sliding_log rule of RL_LOG_MAX (RL_STATE_WORDS words): the same GCRA rule
 * there (a decision must move only its rule's words, not the slot's), and a sliding_log
 * rule of 128/ms on one hot key (mostly refused: the log is full within each ms). Last, each
 * algorithm at COUNT per second on one hot key in a table of its own words, the sliding log
 * exact (100) and bucketed (200 and RL_LOG_COUNT_MAX).
 */
#include "fmacros.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "siphash.h"

#define WARM_KEYS 1000000
/* "1M+": room to spare, so nothing is evicted; below 64 * 2^14 so the index stays at 4
 * bytes per key (64 stripes of 2^14 bucket heads). */
#define CAPACITY 1040000
#define PHASE_MS 1500
#define KEY_MAX (15 + 1 + RL_CLIENT_MAX) /* rule names <= 15 bytes */
#define BATCH 1024 /* decisions between clock reads */

static double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rl_rule bench_rule(void)
{
    rl_rule r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "bench");
    r.algo = RL_ALGO_GCRA;
    r.count = RL_COUNT_MAX;
    r.period_ms = 1;
    r.burst = RL_COUNT_MAX;
    return r;
}

static char *bench_octet(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Key i of the warm set: "bench\x1f" and an IPv4-like client, 14..21 bytes. Formatted by
 * hand: snprintf would cost as much as the decision and measure the wrong thing. */
static size_t bench_key(char *buf, uint32_t i)
{
    char *p = buf;
    memcpy(p, "bench\x1f" "10.", 9);
    p = bench_octet(p + 9, (i >> 16) & 255);
    *p++ = '.';
    p = bench_octet(p, (i >> 8) & 255);
    *p++ = '.';
    p = bench_octet(p, i & 255);
    return (size_t)(p - buf);
}

/* Decisions per second on the keys the mode picks, for PHASE_MS. hot: key 0 only; warm: an
 * LCG walk over all WARM_KEYS (a full-period permutation of 2^20, values >= WARM_KEYS
 * skipped), started at `seed` so that two processes do not walk in step. */
static double bench_decide_loop(rl_shm *shm, const rl_rule *rule, int warm, uint32_t seed)
{
    rl_rule_result res;
    char key[64];
    uint32_t x = warm ? seed & 0xfffff : 0; /* hot: key 0 in every process */
    uint64_t n = 0;
    double start = bench_now_s(), end = start + PHASE_MS / 1000.0, t;

    do {
        for (int b = 0; b < BATCH; b++) {
            rl_item it = {.rule = rule, .client = "c", .key = key, .cost = 1, .res = &res};
            if (warm) {
                do
                    x = (x * 1664525u + 1013904223u) & 0xfffff;
                while (x >= WARM_KEYS);
            }
            it.keylen = bench_key(key, x);
            /* The table reads the clock, as under the limiter (a clock read per decision). */
            if (rl_shm_decide(shm, &it, 1, -1) < 0) {
                fprintf(stderr, "bench: decide: %s\n", rl_shm_errstr(shm));
                exit(1);
            }
        }
        n += BATCH;
    } while ((t = bench_now_s()) < end);
    return (double)n / (t - start);
}

static double bench_algo_baseline(void)
{
    rl_rule rule = bench_rule();
    rl_rule_result res;
    rl_state st[2] = {{{0}}, {{0}}}; /* in and out in turn: an rl_state is never copied whole */
    int64_t ttl, now = 1700000000000LL;
    uint64_t n = 0;
    double start = bench_now_s(), end = start + PHASE_MS / 1000.0, t;

    do {
        for (int b = 0; b < BATCH; b++)
            rl_algo_decide(&rule, &st[b & 1], now, 1, &st[~b & 1], &ttl, &res);
        n += BATCH;
        now++;
    } while ((t = bench_now_s()) < end);
    if (st[0].w[0] == 42) /* keep the loop */
        puts("");
    return (double)n / (t - start);
}

/* --callgrind N: N bare rl_algo_decide calls, then N hot-key decisions in a 4096-key table
 * of GCRA's words, each loop in a function of its own, so that callgrind's inclusive count
 * of each, divided by N, is the instructions per decision (tests/bench/callgrind_shm.sh).
 * Instruction counts, unlike rates, do not depend on what else the machine is doing. */
__attribute__((noinline)) static void bench_cg_algo(const rl_rule *rule, long n)
{
    rl_rule_result res;
    rl_state st[2] = {{{0}}, {{0}}};
    int64_t ttl, now = 1700000000000LL;

    for (long i = 0; i < n; i++)
        rl_algo_decide(rule, &st[i & 1], now + i / 1024, 1, &st[~i & 1], &ttl, &res);
    if (st[0].w[0] == 42)
        puts("");
}

__attribute__((noinline)) static void bench_cg_shm(rl_shm *shm, const rl_rule *rule, long n)
{
    rl_rule_result res;
    char key[64];
    rl_item it = {.rule = rule, .client = "c", .key = key, .cost = 1, .res = &res};

    it.keylen = bench_key(key, 0);
    for (long i = 0; i < n; i++)
        if (rl_shm_decide(shm, &it, 1, -1) < 0) {
            fprintf(stderr, "bench: decide: %s\n", rl_shm_errstr(shm));
            exit(1);
        }
}

static int bench_callgrind(long n)
{
    char name[64];
    rl_error err;
    rl_shm *shm;
    rl_rule rule = bench_rule();

    snprintf(name, sizeof name, "/rl-bench-cg-%d", (int)getpid());
    rl_shm_unlink(name);
    bench_cg_algo(&rule, n);
    shm = rl_shm_open(name, 4096, KEY_MAX, rl_algo_state_words(&rule), &err);
    if (shm == NULL) {
        fprintf(stderr, "bench: %s\n", err.text);
        return 1;
    }
    bench_cg_shm(shm, &rule, n);
    rl_shm_close(shm);
    rl_shm_unlink(name);
    return 0;
}

static double bench_mutex_baseline(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    uint64_t n = 0;
    double start = bench_now_s(), end = start + PHASE_MS / 1000.0, t;

    do {
        for (int b = 0; b < BATCH; b++) {
            pthread_mutex_lock(&m);
            pthread_mutex_unlock(&m);
        }
        n += BATCH;
    } while ((t = bench_now_s()) < end);
    return (double)n / (t - start);
}

/* The parts of a hot-key decision that no table code can remove, each alone, as rates: a
 * robust process-shared mutex's trylock + unlock (the stripe lock's kind), a CLOCK_REALTIME
 * read (the table reads one per decision, under the lock) and SipHash-1-3 of a bench key
 * (the index's keyed hash). With the rl_algo_decide loop they are the floor of a decision. */
static double bench_robust_baseline(void)
{
    pthread_mutex_t m;
    pthread_mutexattr_t attr;
    uint64_t n = 0;
    double start, end, t;

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &attr);
    pthread_mutexattr_destroy(&attr);
    start = bench_now_s();
    end = start + PHASE_MS / 1000.0;
    do {
        for (int b = 0; b < BATCH; b++) {
            if (pthread_mutex_trylock(&m) == 0)
                pthread_mutex_unlock(&m);
        }
        n += BATCH;
    } while ((t = bench_now_s()) < end);
    pthread_mutex_destroy(&m);
    return (double)n / (t - start);
}

static double bench_clock_baseline(void)
{
    struct timespec ts;
    int64_t sum = 0;
    uint64_t n = 0;
    double start = bench_now_s(), end = start + PHASE_MS / 1000.0, t;

    do {
        for (int b = 0; b < BATCH; b++) {
            clock_gettime(CLOCK_REALTIME, &ts);
            sum += ts.tv_nsec;
        }
        n += BATCH;
    } while ((t = bench_now_s()) < end);
    if (sum == 42) /* keep the loop */
        puts("");
    return (double)n / (t - start);
}

static double bench_hash_baseline(void)
{
    static const uint8_t hkey[RL_SIPHASH_KEY_SIZE] = {1, 2, 3};
    char key[64];
    size_t len = bench_key(key, 0);
    uint64_t sum = 0, n = 0;
    double start = bench_now_s(), end = start + PHASE_MS / 1000.0, t;

    do {
        for (int b = 0; b < BATCH; b++) {
            key[len - 1] = (char)('0' + (b & 7)); /* not hoisted out of the loop */
            sum += rl_siphash13(hkey, key, len);
        }
        n += BATCH;
    } while ((t = bench_now_s()) < end);
    if (sum == 42)
        puts("");
    return (double)n / (t - start);
}

/* Runs the loop in nproc processes at once (each opens the segment itself); returns the
 * per-process rates in rate[]. */
static void bench_procs(const char *name, int64_t capacity, size_t words, const rl_rule *rule,
                        int nproc, int warm, double *rate)
{
    int fds[2];
    pid_t pid[2];

    fflush(stdout); /* or the children print it again */
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    for (int p = 0; p < nproc; p++) {
        pid[p] = fork();
        if (pid[p] == 0) {
            rl_error err;
            rl_shm *shm = rl_shm_open(name, capacity, KEY_MAX, words, &err);
            double r;
            if (shm == NULL) {
                fprintf(stderr, "bench: %s\n", err.text);
                _exit(1);
            }
            r = bench_decide_loop(shm, rule, warm, 12345u + 777777u * (uint32_t)p);
            if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
                _exit(1);
            rl_shm_close(shm);
            _exit(0);
        }
    }
    close(fds[1]);
    for (int p = 0; p < nproc; p++) {
        int status;
        if (read(fds[0], &rate[p], sizeof rate[p]) != (ssize_t)sizeof rate[p]) {
            fprintf(stderr, "bench: a worker failed\n");
            exit(1);
        }
        waitpid(pid[p], &status, 0);
    }
    close(fds[0]);
}

static void bench_row(const char *what, int nproc, const double *rate, double base)
{
    double total = 0;
    for (int p = 0; p < nproc; p++)
        total += rate[p];
    printf("| %-28s | %d | %8.2f M/s | %8.2f M/s | %6.3f |\n", what, nproc,
           total / nproc / 1e6, total / 1e6, total / nproc / base);
}

static double bench_total(int nproc, const double *rate)
{
    double total = 0;
    for (int p = 0; p < nproc; p++)
        total += rate[p];
    return total;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The two goals of the core decision, as measured in this run. */
static void bench_goals(double algo, double one, double two)
{
    printf("\ngoal: a hot-key decision >= 0.20 of the rl_algo_decide loop: %.3f, %s\n",
           one / algo, one / algo >= 0.20 ? "met" : "not met");
    printf("goal: two processes on one hot key >= one in total: %.2f x, %s\n", two / one,
           two >= one ? "met" : "not met");
}

/* --hot R: R rounds of (the rl_algo_decide loop, one process, two processes) on one hot key
 * in a 4096-key table, in turn, so that the load of a shared machine falls on all three
 * alike; prints each round and the medians of the ratios. */
static int bench_hot(int rounds)
{
    char name[64];
    rl_rule rule = bench_rule();
    size_t words = rl_algo_state_words(&rule);
    double algo[64], one[64], two[64], rate[2], a, o, t;

    snprintf(name, sizeof name, "/rl-bench-hot-%d", (int)getpid());
    rl_shm_unlink(name);
    printf("| round | rl_algo_decide | 1 process | 2 processes (total) | 1 / algo | 2 / 1 |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int r = 0; r < rounds; r++) {
        algo[r] = bench_algo_baseline();
        bench_procs(name, 4096, words, &rule, 1, 0, rate);
        one[r] = bench_total(1, rate);
        bench_procs(name, 4096, words, &rule, 2, 0, rate);
        two[r] = bench_total(2, rate);
        printf("| %d | %.2f M/s | %.2f M/s | %.2f M/s | %.3f | %.2f |\n", r + 1, algo[r] / 1e6,
               one[r] / 1e6, two[r] / 1e6, one[r] / algo[r], two[r] / one[r]);
        one[r] /= algo[r]; /* from here on: ratios, for the medians */
        two[r] /= one[r] * algo[r];
    }
    qsort(one, (size_t)rounds, sizeof one[0], bench_cmp);
    qsort(two, (size_t)rounds, sizeof two[0], bench_cmp);
    a = 1;
    o = one[rounds / 2];
    t = two[rounds / 2] * o;
    printf("medians:");
    bench_goals(a, o, t);
    rl_shm_unlink(name);
    return 0;
}

int main(int argc, char **argv)
{
    char name[64];
    rl_error err;
    rl_shm *shm;
    rl_rule rule = bench_rule();
    double algo, mutex, robust, clk, hash, floor_ns, rate[2], t0, hot1, hot2;
    size_t words = rl_algo_state_words(&rule);
    size_t size = rl_shm_size(CAPACITY, KEY_MAX, words);
    size_t size_1m = rl_shm_size(WARM_KEYS, KEY_MAX, words);
    char logname[80];
    rl_rule logrule = rule;

    if (argc == 3 && strcmp(argv[1], "--callgrind") == 0 && atol(argv[2]) > 0)
        return bench_callgrind(atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "--hot") == 0 && atoi(argv[2]) > 0 && atoi(argv[2]) <= 64)
        return bench_hot(atoi(argv[2]));
    if (argc != 1) {
        fprintf(stderr, "usage: bench_shm [--callgrind N | --hot ROUNDS (1 to 64)]\n");
        return 2;
    }
    snprintf(name, sizeof name, "/rl-bench-%d", (int)getpid());
    rl_shm_unlink(name);
    printf("bench_shm: %ld online CPUs, %.1f s per phase\n\n", sysconf(_SC_NPROCESSORS_ONLN),
           PHASE_MS / 1000.0);

    algo = bench_algo_baseline();
    mutex = bench_mutex_baseline();
    robust = bench_robust_baseline();
    clk = bench_clock_baseline();
    hash = bench_hash_baseline();

    t0 = bench_now_s();
    shm = rl_shm_open(name, CAPACITY, KEY_MAX, words, &err);
    if (shm == NULL) {
        fprintf(stderr, "bench: %s\n", err.text);
        return 1;
    }
    printf("segment: capacity %d, key_max %d, %zu state words: %zu bytes, %.1f bytes per key\n",
           CAPACITY, KEY_MAX, words, size, (double)size / CAPACITY);
    printf("1M keys: %.1f bytes per key, %.1f MiB (budget 128 MiB)\n",
           (double)size_1m / WARM_KEYS, (double)size_1m / (1 << 20));
    printf("created in %.2f s; ", bench_now_s() - t0);
    t0 = bench_now_s();
    for (uint32_t i = 0; i < WARM_KEYS; i++) {
        char key[64];
        rl_rule_result res;
        rl_item it = {.rule = &rule, .client = "c", .key = key, .cost = 1, .res = &res};
        it.keylen = bench_key(key, i);
        if (rl_shm_decide(shm, &it, 1, -1) != 1) {
            fprintf(stderr, "bench: fill: %s\n", rl_shm_errstr(shm));
            return 1;
        }
    }
    printf("%d keys pre-filled in %.2f s\n\n", WARM_KEYS, bench_now_s() - t0);

    printf("| %-28s | procs | per process | total | ratio to algo |\n", "decisions");
    printf("|---|---|---|---|---|\n");
    printf("| %-28s | 1 | %8.2f M/s | %8.2f M/s | %6.3f |\n", "baseline: rl_algo_decide", algo / 1e6,
           algo / 1e6, 1.0);
    printf("| %-28s | 1 | %8.2f M/s | %8.2f M/s | %6.3f |\n", "baseline: mutex lock+unlock",
           mutex / 1e6, mutex / 1e6, mutex / algo);
    printf("| %-28s | 1 | %8.2f M/s | %8.2f M/s | %6.3f |\n", "baseline: robust trylock+unlock",
           robust / 1e6, robust / 1e6, robust / algo);
    printf("| %-28s | 1 | %8.2f M/s | %8.2f M/s | %6.3f |\n", "baseline: clock read", clk / 1e6,
           clk / 1e6, clk / algo);
    printf("| %-28s | 1 | %8.2f M/s | %8.2f M/s | %6.3f |\n", "baseline: SipHash-1-3 of a key",
           hash / 1e6, hash / 1e6, hash / algo);
    bench_procs(name, CAPACITY, words, &rule, 1, 0, rate);
    bench_row("shm, 1 hot key", 1, rate, algo);
    hot1 = bench_total(1, rate);
    bench_procs(name, CAPACITY, words, &rule, 2, 0, rate);
    bench_row("shm, 1 hot key", 2, rate, algo);
    hot2 = bench_total(2, rate);
    bench_procs(name, CAPACITY, words, &rule, 1, 1, rate);
    bench_row("shm, warm set of 1M keys", 1, rate, algo);
    bench_procs(name, CAPACITY, words, &rule, 2, 1, rate);
    bench_row("shm, warm set of 1M keys", 2, rate, algo);


    /* A table sized for the longest sliding log: 66 words a slot. */
    snprintf(logname, sizeof logname, "%s-log", name);
    rl_shm_unlink(logname);
    logrule.algo = RL_ALGO_SLIDING_LOG;
    logrule.count = RL_LOG_MAX;
    logrule.burst = RL_LOG_MAX;
    bench_procs(logname, 4096, RL_STATE_WORDS, &rule, 1, 0, rate);
    bench_row("shm, 1 hot key, 66-word slots", 1, rate, algo);
    bench_procs(logname, 4096, RL_STATE_WORDS, &logrule, 1, 0, rate);
    bench_row("shm, 1 hot key, sliding_log", 1, rate, algo);
    rl_shm_unlink(logname);

    /* Each algorithm at COUNT per second on one hot key (COUNT admitted a second, the rest
     * refused), in a table of the words it keeps, as the limiter opens one for it alone. */
    static const struct {
        rl_algo algo;
        int64_t count;
        const char *what;
    } per[] = {
        {RL_ALGO_GCRA, 100, "gcra 100/s"},
        {RL_ALGO_FIXED_WINDOW, 100, "fixed_window 100/s"},
        {RL_ALGO_SLIDING_WINDOW, 100, "sliding_window 100/s"},
        {RL_ALGO_SLIDING_LOG, 100, "sliding_log 100/s (exact)"},
        {RL_ALGO_SLIDING_LOG, 200, "sliding_log 200/s (buckets)"},
        {RL_ALGO_SLIDING_LOG, RL_LOG_COUNT_MAX, "sliding_log 100000/s (bkts)"},
    };
    for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
        rl_rule r = bench_rule();
        char row[64];
        r.algo = per[i].algo;
        r.count = r.burst = per[i].count;
        r.period_ms = 1000;
        rl_shm_unlink(logname);
        bench_procs(logname, 4096, rl_algo_state_words(&r), &r, 1, 0, rate);
        snprintf(row, sizeof row, "%s, %zu words", per[i].what, rl_algo_state_words(&r));
        bench_row(row, 1, rate, algo);
    }
    rl_shm_unlink(logname);
    /* What bounds the first goal in time: the parts above that every decision pays. */
    floor_ns = 1e9 / algo + 1e9 / robust + 1e9 / clk + 1e9 / hash;
    printf("\nfloor of a hot-key decision (loop + robust lock + clock + hash): %.1f ns, "
           "at most %.3f of the loop; measured %.1f ns\n",
           floor_ns, 1e9 / algo / floor_ns, 1e9 / hot1);
    bench_goals(algo, hot1, hot2);
    printf("(one run on a shared machine: bench_shm --hot 5 for medians, "
           "tests/bench/callgrind_shm.sh for instruction counts)\n");

    rl_shm_close(shm);
    rl_shm_unlink(name);
    return 0;
}
