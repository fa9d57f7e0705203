/* lib_leakcheck.c -- LeakSanitizer check for a criterion test's .fini (see leakcheck.h) */
#include "../../core/fmacros.h"

#include "leakcheck.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define RL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RL_TEST_ASAN 1
#endif
#endif

#ifdef RL_TEST_ASAN
#include <sanitizer/lsan_interface.h>

void rl_test_leak_check(void)
{
    /* Recoverable: prints the leaks and returns nonzero instead of exiting, so the report
     * lands in the test's output and the abort marks this test, not the run, as failed. */
    if (__lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "rl_test_leak_check: memory leaked (see the LeakSanitizer report)\n");
        abort();
    }
}
#else
void rl_test_leak_check(void)
{
}
#endif
