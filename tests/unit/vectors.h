/* vectors.h -- shared decision vectors (tests/data/vectors/NAME.vec): parser and runner
 *
 * A vector file is a list of rules and a list of steps (a request at a time with a cost, and
 * the result every rule must give). The same files run against the pure algorithms
 * (test_vectors.c) and against any store that decides a batch of rl_items, such as
 * rl_shm_decide and rl_redis_decide: the runner only needs a decide callback. The format is
 * documented in tests/data/vectors/README.md.
 *
 * This is test-library code (lib_vectors.c): it is linked into every test binary, so it
 * defines no criterion tests and reports errors as text instead of asserting.
 */
#ifndef RL_TEST_VECTORS_H
#define RL_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define RL_VEC_ERR_MAX 512

/* One request and what each rule must answer. */
typedef struct rl_vec_step {
    int line;                /* in the file, for messages */
    int64_t now_ms;          /* >= 0 (a backend may read a negative time as "use your clock") */
    int64_t cost;            /* >= 1 */
    int admitted;            /* 1 when every rule allows */
    rl_rule_result *expect;  /* owned; one per rule, in rule order; .rule points into rules */
} rl_vec_step;

typedef struct rl_vec {
    char *path;              /* owned: the file it was read from */
    char *name;              /* owned: the file's base name without ".vec" */
    rl_rule *rules;          /* owned, nrules <= RL_MAX_MATCH; strings owned too */
    size_t nrules;
    rl_vec_step *steps;      /* owned */
    size_t nsteps;
} rl_vec;

/* Parses the text of a vector file; path names it in messages. On success returns 0 and
 * fills *out (free with rl_vec_free); else returns -1, leaves *out empty, and writes
 * "path:line: reason" into err. */
int rl_vec_parse(const char *text, const char *path, rl_vec *out, char *err, size_t errlen);

/* Reads and parses a file, like rl_vec_parse. */
int rl_vec_load(const char *path, rl_vec *out, char *err, size_t errlen);

/* Frees what *v owns and empties it; accepts an empty or NULL v. */
void rl_vec_free(rl_vec *v);

/* Decides one request over items[0..n) atomically at now_ms (each item carrying the step's
 * cost), with the contract of
 * rl_shm_decide: fills every items[i].res and returns 1 (all admitted), 0 (refused) or -1
 * (error; the runner reports it). ud is the runner's caller's pointer. */
typedef int (*rl_vec_decide_fn)(void *ud, rl_item *items, size_t n, int64_t now_ms);

/* Runs every step of v through decide, one key per rule: "RULE\x1fCLIENT" (client = v->name
 * when NULL; pass something unique per run when the store outlives the test). Checks every
 * field of every result and the return value. Returns the number of steps run, or -1 at the
 * first difference with "path:line: rule NAME: FIELD: expected X, got Y" in err. */
long rl_vec_run(const rl_vec *v, const char *client, rl_vec_decide_fn decide, void *ud,
                char *err, size_t errlen);

/* The *.vec files of dir as "dir/name.vec", sorted by name. Returns 0 with a new array in
 * *paths (free with rl_vec_list_free), or -1 with a reason in err. */
int rl_vec_list(const char *dir, char ***paths, size_t *n, char *err, size_t errlen);
void rl_vec_list_free(char **paths, size_t n);

/* $RL_TEST_DATA/vectors, or tests/data/vectors when unset. Returns a static buffer. */
const char *rl_vec_dir(void);

/* The algorithm's name in vector files ("gcra", "fixed_window", "sliding_window",
 * "sliding_log"). */
const char *rl_vec_algo_name(rl_algo algo);

#endif
