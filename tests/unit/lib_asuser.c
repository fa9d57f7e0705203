/* lib_asuser.c -- run one open attempt as another user, in a forked child (see asuser.h) */
#include "../../core/fmacros.h"

#include "asuser.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct passwd *rl_test_nobody_or_skip(void)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || pw == NULL)
        cr_skip_test("needs root and a user nobody");
    return pw;
}

int rl_test_as_user(const struct passwd *pw, rl_test_attempt *attempt, void *arg, const char *want)
{
    pid_t pid = fork();
    int status;

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char msg[1024] = "";

        if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
            _exit(3);
        if (attempt(arg, msg, sizeof msg))
            _exit(0);
        if (want == NULL || strstr(msg, want) != NULL)
            _exit(1);
        fprintf(stderr, "child: %s\n", msg);
        _exit(2);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}
