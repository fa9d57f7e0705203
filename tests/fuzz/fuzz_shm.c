/* fuzz_shm.c -- libFuzzer target: a live shared-memory table whose bytes are junked between
 * decisions
 *
 * One table (64 keys, 4 stripes), opened once and kept across inputs, so damage accumulates
 * as it would in a segment that another process, a bad build or a stray write scribbled on.
 * Each input is a list of writes -- [offset: 4 bytes LE][length: 1 byte][bytes] -- applied
 * anywhere past the header (stripe fields, bucket heads, slot heads, keys and states), except
 * the stripes' mutexes: a junked robust mutex is the kernel's business, and a lock that cannot
 * be taken is bounded by the lock timeout, which a fuzzer would spend its time waiting on.
 * Then 48 decisions over 4 rules (one per algorithm) and 24 keys, at a clock that moves.
 * Contract checked: a decision never crashes, never hangs (libFuzzer's -timeout), and returns
 * 1, 0 or -1 with each result's remaining within its rule's allowance; the segment's own
 * validation (checked geometry, bounded walks, rebuilt stripes) is what makes that hold.
 */
#include "fmacros.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_KEYS 24
#define FZ_KEY_MAX 64

static rl_shm *shm;
static rl_rule rules[4];
static int64_t now_ms = 1700000000000LL;

static void fz_rule(rl_rule *r, const char *name, rl_algo algo, int64_t count, int64_t period_ms)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->algo = algo;
    r->count = count;
    r->period_ms = period_ms;
    r->burst = count;
}

static void fz_open(void)
{
    char name[64];
    rl_error err = {{0}};
    size_t words = 0;

    fz_rule(&rules[0], "g", RL_ALGO_GCRA, 5, 1000);
    fz_rule(&rules[1], "w", RL_ALGO_SLIDING_WINDOW, 4, 1000);
    fz_rule(&rules[2], "l", RL_ALGO_SLIDING_LOG, 3, 1000);
    fz_rule(&rules[3], "f", RL_ALGO_FIXED_WINDOW, 2, 1000);
    for (int i = 0; i < 4; i++)
        if (rl_algo_state_words(&rules[i]) > words)
            words = rl_algo_state_words(&rules[i]);
    snprintf(name, sizeof name, "/rlfuzz-shm-%ld", (long)getpid());
    shm = rl_shm_open(name, 64, FZ_KEY_MAX, words, &err);
    if (shm == NULL) {
        fprintf(stderr, "fuzz_shm: %s\n", err.text);
        abort();
    }
    (void)rl_shm_unlink(name); /* the mapping stays; nothing left behind */
}

/* Whether [off, off+len) touches a stripe's mutex. */
static int fz_hits_lock(size_t off, size_t len)
{
    for (uint32_t s = 0; s < shm->nstripes; s++) {
        size_t lo = (size_t)((unsigned char *)&shm->stripes[s].lock - shm->base);
        size_t hi = lo + sizeof(pthread_mutex_t);
        if (off < hi && lo < off + len)
            return 1;
    }
    return 0;
}

static void fz_junk(const uint8_t *data, size_t size)
{
    size_t at = 0, past = sizeof(shm_header), room = shm->size - sizeof(shm_header);

    while (size - at >= 5) {
        uint32_t o = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
                     (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
        size_t len = data[at + 4], off = past + o % room;
        at += 5;
        if (len > size - at)
            len = size - at;
        if (len > shm->size - off)
            len = shm->size - off;
        if (!fz_hits_lock(off, len))
            memcpy(shm->base + off, data + at, len);
        at += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (shm == NULL)
        fz_open();
    fz_junk(data, size);
    for (int i = 0; i < 48; i++) {
        const rl_rule *r = &rules[i % 4];
        char key[FZ_KEY_MAX];
        rl_rule_result res;
        int n = snprintf(key, sizeof key, "%s\x1f" "c%d", r->name, (i * 7) % FZ_KEYS);
        rl_item it = {.rule = r, .client = "c", .key = key, .keylen = (size_t)n, .cost = 1,
                      .res = &res};
        int rc = rl_shm_decide(shm, &it, 1, now_ms);
        if (rc != 1 && rc != 0 && rc != -1)
            abort();
        if (rc >= 0 && (res.remaining < 0 || res.remaining > r->burst))
            abort();
        now_ms += 37;
    }
    return 0;
}
