/* fuzz_decide.c -- libFuzzer target: rl_decide with arbitrary client, path and method
 *
 * One limiter, opened once, over a 16-key shared-memory table (so nearly every input evicts)
 * with rules on nested path prefixes, every algorithm, and the longest rule name (the longest
 * key). The input is split at its first two NUL bytes into the client identity, the path and
 * the method; the byte after a third NUL, if any, is the cost. This is the rule matcher and the
 * key construction (limiter.c) and the table (shm.c) under hostile identities: anything the
 * filter's own checks would pass on (and much they would not).
 * Contract checked: -1 only for an empty client, with a reason (a long one is digested); otherwise every result's rule matches the path (prefix), results are in config
 * order, a store decided (never "no store" on a healthy table), a refusal names a refusing
 * rule and a wait >= 1 ms.
 */
#define _GNU_SOURCE /* memfd_create */
#include "fmacros.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rl_config *cfg;
static rl_limiter *lim;
static char shm_name[64];

static void fuzz_open(void)
{
    char path[64];
    char text[1024];
    rl_error err;
    int fd = memfd_create("fuzz-decide", 0);

    snprintf(shm_name, sizeof shm_name, "/rlfuzz-decide-%ld", (long)getpid());
    int len = snprintf(text, sizeof text,
        "shm: { name = \"%s\"; capacity = 16; };\n"
        "rules = (\n"
        "  { name = \"all\"; path_prefix = \"/\"; limit = \"1000/s\"; },\n"
        "  { name = \"api\"; path_prefix = \"/api\"; limit = \"3/s\"; algorithm = \"sliding_window\"; },\n"
        "  { name = \"v1\"; path_prefix = \"/api/v1\"; limit = \"2/s\"; algorithm = \"sliding_log\"; },\n"
        "  { name = \"w\"; path_prefix = \"/w\"; limit = \"1/s\"; algorithm = \"fixed_window\"; },\n"
        "  { name = \"g\"; path_prefix = \"/g\"; limit = \"5/m\"; burst = 2; },\n"
        "  { name = \"%s\"; path_prefix = \"/long\"; limit = \"2/s\"; }\n"
        ");\n",
        shm_name,
        "n123456789012345678901234567890123456789012345678901234567890ab");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (fd < 0 || write(fd, text, (size_t)len) != len)
        abort();
    cfg = rl_config_load(path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "fuzz_decide: %s\n", err.text);
        abort();
    }
    lim = rl_limiter_open(cfg, &err);
    if (lim == NULL) {
        fprintf(stderr, "fuzz_decide: %s\n", err.text);
        abort();
    }
    (void)rl_shm_unlink(shm_name); /* the mapping stays; nothing left behind */
    (void)rl_stats_unlink(shm_name);
    close(fd);
}

/* Where the next field starts: after the NUL ending this one, or the end. */
static size_t field(const uint8_t *data, size_t size, size_t at, char *out, size_t cap)
{
    size_t i = at, n = 0;

    while (i < size && data[i] != '\0') {
        if (n + 1 < cap)
            out[n++] = (char)data[i];
        i++;
    }
    out[n] = '\0';
    return i < size ? i + 1 : size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char client[512], path[4096], method[64];
    rl_decision d;

    if (lim == NULL)
        fuzz_open();
    size_t at = field(data, size, 0, client, sizeof client);
    at = field(data, size, at, path, sizeof path);
    at = field(data, size, at, method, sizeof method);
    rl_request req = {.remote_addr = client, .path = path[0] ? path : NULL,
                      .method = method, .cost = at < size ? data[at] : 1};

    if (rl_decide(lim, &req, &d) < 0) {
        if (client[0] != '\0' || rl_limiter_errstr(lim)[0] == '\0')
            abort();
        return 0;
    }
    const char *p = req.path ? req.path : "/";
    const rl_rule *prev = NULL;
    int allowed = 1;
    if (d.nresults > RL_MAX_MATCH)
        abort();
    for (size_t i = 0; i < d.nresults; i++) {
        const rl_rule *r = d.results[i].rule;
        if (r == NULL || strncmp(p, r->path_prefix, strlen(r->path_prefix)) != 0)
            abort(); /* a rule that does not match the path decided */
        if (prev != NULL && r <= prev)
            abort(); /* not in config order, or twice */
        prev = r;
        allowed &= d.results[i].allowed;
    }
    /* Every rule here keys by client: when the identity gives no usable key material (a
     * control byte in an opaque identity, rule.c) every matching rule is skipped (the default
     * on_missing_key), else every matching rule applies. Nothing in between. */
    size_t expect = 0;
    for (size_t i = 0; i < cfg->nrules; i++)
        expect += strncmp(p, cfg->rules[i].path_prefix, strlen(cfg->rules[i].path_prefix)) == 0;
    size_t want = expect < RL_MAX_MATCH ? expect : RL_MAX_MATCH;
    int printable = 1;
    for (const char *c = client; *c != '\0'; c++)
        printable &= *c >= 0x20 && *c < 0x7f;
    if (d.nresults != 0 && d.nresults != want)
        abort(); /* a matching rule left out */
    if (printable && d.nresults != want)
        abort(); /* a printable identity always gives key material */
    if (d.nresults == 0)
        return d.allowed == 1 ? 0 : (abort(), 0);
    if (d.backend != RL_BACKEND_SHM || d.allowed != allowed)
        abort();
    if (d.decider < 0 || (size_t)d.decider >= d.nresults)
        abort();
    if (!d.allowed && (d.results[d.decider].allowed || d.retry_after_ms < 1))
        abort();
    return 0;
}
