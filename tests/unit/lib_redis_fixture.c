/* lib_redis_fixture.c -- the unit tests' one redis-server, rlt_srv, as criterion's .init and
 * .fini (lib_redis_server.h)
 *
 * Kept apart from lib_redis_server.c, which the Redis benchmark (tests/bench/bench_redis.c)
 * also links without criterion.
 */
#include "fmacros.h"

#include <criterion/criterion.h>

#include "leakcheck.h"
#include "lib_redis_server.h"

rlt_redis rlt_srv;

void rlt_redis_setup(void)
{
    cr_assert_eq(rlt_redis_start(&rlt_srv, NULL), 0, "redis-server did not start");
}

void rlt_redis_teardown(void)
{
    rlt_redis_stop(&rlt_srv);
    rl_test_leak_check();
}
