/* test_vectors_shm.c -- every shared vector file, run against the shared-memory table
 *
 * The same files test_vectors.c runs against the pure algorithms, decided here by
 * rl_shm_decide: loading and storing states through the table's slots (state_words words),
 * expiry by the ttl each algorithm gives, atomic multi-rule batches and repaired states kept
 * on refusal must all leave every result exactly as the file says. Each file gets its own
 * segment, sized like the limiter sizes it (longest rule name + 1 + RL_CLIENT_MAX, and the
 * most state words any of its rules keeps), so no state leaks from one file into the next
 * and a rule whose words did not fit its slot would show.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "algo.h"
#include "backend.h"
#include "vectors.h"
#include "leakcheck.h"

static char tname[64];

static void vshm_setup(void)
{
    snprintf(tname, sizeof tname, "/rl-test-vec-%d", (int)getpid());
    rl_shm_unlink(tname);
}

static void vshm_teardown(void)
{
    rl_shm_unlink(tname);
    rl_test_leak_check();
}

TestSuite(vectors_shm, .init = vshm_setup, .fini = vshm_teardown, .timeout = 60);

typedef struct vshm {
    rl_shm *shm;
    long decisions;
} vshm;

/* The runner's decide callback: the vector's clock is passed through (every now >= 0). */
static int vshm_decide(void *ud, rl_item *items, size_t n, int64_t now_ms)
{
    vshm *v = ud;
    v->decisions++;
    return rl_shm_decide(v->shm, items, n, now_ms);
}

Test(vectors_shm, every_file_passes_against_shared_memory)
{
    const char *dir = rl_vec_dir();
    char err[RL_VEC_ERR_MAX];
    char **paths;
    size_t npaths, ran = 0;
    long steps = 0;

    cr_assert_eq(rl_vec_list(dir, &paths, &npaths, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < npaths; i++) {
        rl_error oerr = {{0}};
        size_t longest = 0, words = 1;
        vshm v = {0};
        rl_vec vec;
        long r;

        if (rl_vec_load(paths[i], &vec, err, sizeof(err)) != 0) {
            cr_expect_fail("%s", err);
            continue;
        }
        for (size_t j = 0; j < vec.nrules; j++) {
            if (strlen(vec.rules[j].name) > longest)
                longest = strlen(vec.rules[j].name);
            if (rl_algo_state_words(&vec.rules[j]) > words)
                words = rl_algo_state_words(&vec.rules[j]);
        }
        rl_shm_unlink(tname);
        v.shm = rl_shm_open(tname, 1000, longest + 1 + RL_CLIENT_MAX, words, &oerr);
        cr_assert_not_null(v.shm, "%s", oerr.text);
        r = rl_vec_run(&vec, NULL, vshm_decide, &v, err, sizeof(err));
        cr_expect_geq(r, 1, "%s (shm: %s)", err, rl_shm_errstr(v.shm));
        if (r > 0) {
            steps += r;
            ran++;
            cr_expect_eq(v.decisions, (long)vec.nsteps, "%s: every step decided", paths[i]);
        }
        rl_shm_close(v.shm);
        rl_vec_free(&vec);
    }
    rl_vec_list_free(paths, npaths);
    /* so that an empty or misplaced directory cannot pass */
    cr_assert_geq(ran, 19, "%s: %zu of %zu vector files passed", dir, ran, npaths);
    cr_assert_eq(ran, npaths);
    cr_assert_geq(steps, 150, "%ld steps", steps);
}
