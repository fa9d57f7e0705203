/* leakcheck.h -- make leaks fail a criterion test under SANITIZE=address
 *
 * Criterion passes a test that leaks: LeakSanitizer's report at exit comes too late, from a
 * worker whose status is no longer looked at. Call rl_test_leak_check() from a suite's or a
 * test's .fini (it runs in the test's own process, after the body): it runs LeakSanitizer
 * there and aborts when anything leaked. Without AddressSanitizer it does nothing.
 *
 * What criterion 2.4.1 then shows: the leak report, "Warning! The test `suite::name` crashed
 * during its setup or teardown", and an exit status of 1, which fails `make unit`; its
 * Synthesis line still counts the test as passing. (An assertion in .fini would be printed
 * but change neither the count nor the exit status, hence the abort.)
 *
 *   TestSuite(config, .fini = rl_test_leak_check);
 */
#ifndef RL_TEST_LEAKCHECK_H
#define RL_TEST_LEAKCHECK_H

void rl_test_leak_check(void);

#endif
