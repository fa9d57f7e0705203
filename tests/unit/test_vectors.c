/* test_vectors.c -- every shared vector file, run against the pure algorithms
 *
 * The store here is the simplest one honouring the backend contract: a small map from key to
 * (state, expiry). A request is decided over every rule; all states are stored only when all
 * rules admit, and a repaired state (RL_ALGO_REPAIR) is stored even on a refusal. A state is
 * dropped once now reaches its expiry (decided-at + ttl), as shm and Redis would, so a ttl too
 * short to cover what the state still means shows up as a wrong decision.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "vectors.h"
#include "leakcheck.h"

#define MEM_KEYS 64

typedef struct {
    char key[RL_KEY_MAX + 1];
    rl_state st;
    int64_t expires;
} mem_entry;

typedef struct {
    mem_entry e[MEM_KEYS];
    size_t n;
    long decisions;
} mem_store;

static mem_entry *mem_find(mem_store *m, const char *key, int create)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
    if (!create)
        return NULL;
    cr_assert_lt(m->n, MEM_KEYS);
    mem_entry *e = &m->e[m->n++];
    memset(e, 0, sizeof(*e));
    strcpy(e->key, key);
    return e;
}

static int mem_decide(void *ud, rl_item *items, size_t n, int64_t now_ms)
{
    mem_store *m = ud;
    rl_state out[RL_MAX_MATCH];
    int64_t ttl[RL_MAX_MATCH];
    int flags[RL_MAX_MATCH];
    int all = 1;

    m->decisions++;
    for (size_t i = 0; i < n; i++) {
        mem_entry *e = mem_find(m, items[i].key, 0);
        const rl_state *in = e != NULL && now_ms < e->expires ? &e->st : NULL;
        ttl[i] = 0;
        flags[i] = rl_algo_decide(items[i].rule, in, now_ms, items[i].cost, &out[i], &ttl[i],
                                  items[i].res);
        all &= items[i].res->allowed;
    }
    /* A refused request charges no rule: admitting rules report their state at cost 0. */
    for (size_t i = 0; i < n && !all; i++) {
        if (!items[i].res->allowed)
            continue;
        mem_entry *e = mem_find(m, items[i].key, 0);
        const rl_state *in = e != NULL && now_ms < e->expires ? &e->st : NULL;
        rl_state unused;
        int64_t unused_ttl;
        rl_algo_decide(items[i].rule, in, now_ms, 0, &unused, &unused_ttl, items[i].res);
    }
    for (size_t i = 0; i < n; i++) {
        if (all || (flags[i] & RL_ALGO_REPAIR)) {
            cr_assert_geq(ttl[i], 1, "%s: ttl %lld", items[i].key, (long long)ttl[i]);
            mem_entry *e = mem_find(m, items[i].key, 1);
            e->st = out[i];
            e->expires = now_ms + ttl[i];
        }
    }
    return all;
}

/* A leak fails the test under SANITIZE=address (leakcheck.h). */
TestSuite(vectors, .fini = rl_test_leak_check);

Test(vectors, every_file_passes_against_the_algorithms)
{
    const char *dir = rl_vec_dir();
    char err[RL_VEC_ERR_MAX];
    char **paths;
    size_t npaths;
    long steps = 0;
    int seen[4] = { 0, 0, 0, 0 };
    int multi = 0;

    cr_assert_eq(rl_vec_list(dir, &paths, &npaths, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < npaths; i++) {
        rl_vec v;
        mem_store m;
        memset(&m, 0, sizeof(m));
        if (rl_vec_load(paths[i], &v, err, sizeof(err)) != 0) {
            cr_expect_fail("%s", err);
            continue;
        }
        long r = rl_vec_run(&v, NULL, mem_decide, &m, err, sizeof(err));
        cr_expect_geq(r, 1, "%s", err);
        if (r > 0) {
            steps += r;
            cr_expect_eq(m.decisions, (long)v.nsteps, "%s: every step decided", paths[i]);
        }
        for (size_t j = 0; j < v.nrules; j++)
            seen[v.rules[j].algo]++;
        multi += v.nrules > 1;
        rl_vec_free(&v);
    }
    rl_vec_list_free(paths, npaths);
    /* so that an empty or misplaced directory cannot pass */
    cr_assert_geq(npaths, 19, "%s: %zu vector files", dir, npaths);
    cr_assert_geq(steps, 150, "%ld steps", steps);
    cr_assert_geq(multi, 2);
    cr_assert_geq(seen[RL_ALGO_GCRA], 4);
    cr_assert_geq(seen[RL_ALGO_FIXED_WINDOW], 3);
    cr_assert_geq(seen[RL_ALGO_SLIDING_WINDOW], 3);
    cr_assert_geq(seen[RL_ALGO_SLIDING_LOG], 5);
}

/* ---- the parser and the runner themselves ---- */

static void parse_fails(const char *text, const char *want)
{
    rl_vec v;
    char err[RL_VEC_ERR_MAX] = "";
    cr_assert_eq(rl_vec_parse(text, "x.vec", &v, err, sizeof(err)), -1, "accepted: %s", text);
    cr_assert(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    cr_assert_eq(v.nrules, 0);
    cr_assert_eq(v.steps, NULL);
}

Test(vectors, parser_reports_file_and_line)
{
    parse_fails("", "x.vec: no steps");
    parse_fails("# only\nrule algo=gcra count=1 period_ms=1\n", "x.vec: no steps");
    parse_fails("step 0 1 -> 1 0 1 0\n", "x.vec:1: step before any rule");
    parse_fails("rule algo=leaky count=1 period_ms=1\n", "x.vec:1: unknown algo \"leaky\"");
    parse_fails("\n\nrule algo=gcra count=0 period_ms=1\n", "x.vec:3: invalid count \"0\"");
    parse_fails("rule algo=gcra count=1\n", "x.vec:1: a rule needs");
    parse_fails("rule algo=gcra count=1000000000 period_ms=2000000\n", "config bounds");
    parse_fails("rule algo=gcra count=1 period_ms=1 colour=red\n", "unknown rule key");
    parse_fails("rule algo=sliding_log count=129 period_ms=1\n", "x.vec:1: sliding_log rule out");
    parse_fails("rule algo=sliding_log count=1 period_ms=4294967296\n", "sliding_log rule out");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep 0 1 -> 1 0 1\n", "x.vec:2: expected");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep -1 1 -> 1 0 1 0\n", "invalid now");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep 0 0 -> 1 0 1 0\n", "invalid cost");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep 0 1 -> 2 0 1 0\n", "invalid value");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep 0 1 -> 1 0 1x 0\n", "\"1x\"");
    parse_fails("rule algo=gcra count=1 period_ms=1 name=a\nrule algo=gcra count=1 "
                "period_ms=1 name=a\n", "x.vec:2: duplicate rule name");
    parse_fails("rule algo=gcra count=1 period_ms=1\nrule algo=gcra count=1 period_ms=1\n"
                "step 0 1 -> 1 0 1 0 1 0 1 0\n", "one tuple per rule (2)");
    parse_fails("rule algo=gcra count=1 period_ms=1\nrule algo=gcra count=1 period_ms=1\n"
                "step 0 1 -> 1 0 1 0 / 1 0 1 0\n", "x.vec:3: expected \"|\"");
    parse_fails("rule algo=gcra count=1 period_ms=1\nstep 0 1 -> 1 0 1 0\n"
                "rule algo=gcra count=2 period_ms=1\n", "x.vec:3: rule after the first step");
    parse_fails("rule algo=gcra count=1 period_ms=1\nbogus\n", "x.vec:2: unknown directive");
}

Test(vectors, parser_reads_rules_and_tuples)
{
    rl_vec v;
    char err[RL_VEC_ERR_MAX];
    const char *text = "# a comment\n"
                       "rule algo=sliding_window count=3 period_ms=1000 name=api # trailing\n"
                       "rule algo=gcra count=2 period_ms=500 burst=1\r\n"
                       "\n"
                       "step 7 2 -> 1 1 2000 0 | 0 1 250 250\n";
    cr_assert_eq(rl_vec_parse(text, "dir/multi.vec", &v, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(v.name, "multi");
    cr_assert_eq(v.nrules, 2);
    cr_assert_str_eq(v.rules[0].name, "api");
    cr_assert_eq(v.rules[0].algo, RL_ALGO_SLIDING_WINDOW);
    cr_assert_eq(v.rules[0].burst, 3);
    cr_assert_eq(v.rules[0].line, 2);
    cr_assert_str_eq(v.rules[1].name, "r1");
    cr_assert_eq(v.rules[1].burst, 1);
    cr_assert_eq(v.nsteps, 1);
    cr_assert_eq(v.steps[0].line, 5);
    cr_assert_eq(v.steps[0].now_ms, 7);
    cr_assert_eq(v.steps[0].cost, 2);
    cr_assert_eq(v.steps[0].admitted, 0);
    cr_assert_eq(v.steps[0].expect[1].rule, &v.rules[1]);
    cr_assert_eq(v.steps[0].expect[1].retry_after_ms, 250);
    cr_assert_eq(v.steps[0].expect[0].reset_ms, 2000);
    rl_vec_free(&v);
    rl_vec_free(&v); /* empties: a second free is harmless */
    rl_vec_free(NULL);
}

static int lying_decide(void *ud, rl_item *items, size_t n, int64_t now_ms)
{
    int r = mem_decide(ud, items, n, now_ms);
    items[0].res->remaining++;
    return r;
}

Test(vectors, runner_names_the_line_and_field_that_differ)
{
    rl_vec v;
    mem_store m;
    char err[RL_VEC_ERR_MAX];
    memset(&m, 0, sizeof(m));
    const char *text = "rule algo=fixed_window count=2 period_ms=1000 name=fw\n"
                       "step 10 1 -> 1 1 990 0\n"
                       "step 20 1 -> 1 0 980 0\n";
    cr_assert_eq(rl_vec_parse(text, "t.vec", &v, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rl_vec_run(&v, NULL, mem_decide, &m, err, sizeof(err)), 2, "%s", err);
    memset(&m, 0, sizeof(m));
    cr_assert_eq(rl_vec_run(&v, "other", lying_decide, &m, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "t.vec:2: step 10 1: rule fw (fixed_window): remaining: expected 1, "
                          "got 2");
    rl_vec_free(&v);
}
