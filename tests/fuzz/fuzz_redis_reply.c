/* fuzz_redis_reply.c -- libFuzzer target: arbitrary bytes from "Redis" through a hiredis reader
 * into the check a decision applies to the script's reply (rl_redis_take_reply, redis.c)
 *
 * Byte 0 picks the batch: 1..4 rules, each of another algorithm, count and burst. The rest is
 * fed to a redisReader, with the bounds a decision reads with (redis_io.c), as a server's
 * bytes would be; every complete reply it makes is checked as rl_redis_decide checks it. A reply the check takes must satisfy the contract the limiter
 * relies on (allowed is 0 or 1, retry-after 0 when admitted, >= 1 and = reset when refused,
 * remaining within the burst or count, every value in [0, 2^53]); a refused one must say why
 * in one line of printable ASCII, whatever bytes the server sent (it goes to the log).
 * Never a crash, a sanitizer report or a leak.
 */
#include "fmacros.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "backend.h"
#include "redis_io.h"
#include "redis_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_results(const rl_item *items, size_t n, int all, int64_t now_ms)
{
    int expect = 1;

    if (now_ms < 0 || now_ms > (INT64_C(1) << 53))
        abort();
    for (size_t i = 0; i < n; i++) {
        const rl_rule_result *r = items[i].res;
        int64_t most = r->rule->algo == RL_ALGO_GCRA ? r->rule->burst : r->rule->count;
        if (r->rule != items[i].rule || (r->allowed != 0 && r->allowed != 1))
            abort();
        if (r->remaining < 0 || r->remaining > most || r->reset_ms < 0)
            abort();
        if (r->allowed ? r->retry_after_ms != 0
                       : r->retry_after_ms < 1 || r->reset_ms != r->retry_after_ms)
            abort();
        expect &= r->allowed;
    }
    if (all != expect)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const rl_algo algos[] = {RL_ALGO_GCRA, RL_ALGO_FIXED_WINDOW, RL_ALGO_SLIDING_WINDOW,
                                    RL_ALGO_SLIDING_LOG};
    rl_rule rules[4];
    rl_rule_result res[4];
    rl_item items[4];
    char err[256];
    size_t n;

    if (size < 1)
        return 0;
    n = 1 + (data[0] & 3);
    memset(rules, 0, sizeof rules);
    for (size_t i = 0; i < n; i++) {
        rules[i].name[0] = (char)('a' + i);
        rules[i].algo = algos[(data[0] >> 2) + i & 3];
        rules[i].count = (int64_t)1 << (2 * i);  /* 1, 4, 16, 64 */
        rules[i].burst = rules[i].count + (int64_t)i;
        rules[i].period_ms = 1000;
        items[i] = (rl_item){.rule = &rules[i], .client = "c", .key = "k", .keylen = 1,
                             .res = &res[i]};
    }

    redisReader *rd = redisReaderCreate();
    if (rd == NULL)
        abort();
    /* The bounds a decision reads with (redis_io.c): hiredis 0.14 alone would calloc N
     * pointers for "*N" (tests/fuzz/regress/redis_reply/oom-huge-array); bounded, it is
     * refused before anything is allocated. */
    rl_rio_bound bound = {.dflt = rd->fn};
    rd->fn = &rl_rio_bounded_fns;
    rd->privdata = &bound;
    /* Fed in two pieces, as a reply split over two reads would be. */
    size_t rest = size - 1, half = rest / 2;
    int fed = 0;
    for (int part = 0; part < 2; part++) {
        const uint8_t *p = data + 1 + (part ? half : 0);
        size_t len = part ? rest - half : half;
        if (len > 0 && redisReaderFeed(rd, (const char *)p, len) != REDIS_OK)
            break;
        fed++;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
                break;
            int64_t now_ms = -1;
            err[0] = '\0';
            memset(res, 0x5a, sizeof res);
            int all = rl_redis_take_reply(reply, items, n, &now_ms, "fuzz", err, sizeof err);
            if (all < 0) {
                if (err[0] == '\0')
                    abort(); /* every refusal says why ... */
                for (const char *q = err; *q; q++)
                    if ((unsigned char)*q < 0x20 || *q == 0x7f)
                        abort(); /* ... in one printable line (it goes to the log) */
            } else {
                check_results(items, n, all, now_ms);
            }
            freeReplyObject(reply);
        }
        if (rd->err)
            break; /* a protocol error: the connection would be dropped */
    }
    (void)fed;
    redisReaderFree(rd);
    return 0;
}
