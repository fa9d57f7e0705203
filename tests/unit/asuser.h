/* asuser.h -- run one open attempt as another user, in a forked child
 *
 * The owner tests (test_shm_owner.c, test_stats_upgrade.c) need root: root makes a segment,
 * `nobody` then tries to open, replace or plan it. The child drops every group, then gid,
 * then uid before the attempt, so nothing of root's rights is left to it; its exit status
 * carries the outcome back:
 *   0  the attempt succeeded (it returned nonzero)
 *   1  it failed with a message containing want (want NULL: any message)
 *   2  it failed with another message (printed on stderr, for the test's output)
 *   3  the child could not drop to the user
 */
#ifndef RL_TEST_ASUSER_H
#define RL_TEST_ASUSER_H

#include <pwd.h>
#include <stddef.h>

/* The user `nobody`; skips the test unless this process is root and that user exists. */
struct passwd *rl_test_nobody_or_skip(void);

/* attempt(arg, msg, size) returns nonzero on success, else 0 with its error text in msg. */
typedef int rl_test_attempt(void *arg, char *msg, size_t size);

/* Runs attempt in a child as pw's uid and gid and returns its exit status (see above). */
int rl_test_as_user(const struct passwd *pw, rl_test_attempt *attempt, void *arg, const char *want);

#endif
