/* test_http.c -- the small shared pieces of the core: token characters, reason phrases, the
 * rl_error formatter, the clocks */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "http.h"
#include "leakcheck.h"

TestSuite(http, .fini = rl_test_leak_check);

Test(http, tchar_is_rfc9110_token)
{
    const char *yes = "azAZ09!#$%&'*+-.^_`|~";
    const char *no = " \t\"(),/:;<=>?@[\\]{}\x7f";

    for (const char *p = yes; *p; p++)
        cr_expect(rl_http_tchar((unsigned char)*p), "'%c' is a tchar", *p);
    for (const char *p = no; *p; p++)
        cr_expect(!rl_http_tchar((unsigned char)*p), "0x%02x is not a tchar", *p);
    cr_expect(!rl_http_tchar(0));
    cr_expect(!rl_http_tchar(0xe9));
}

Test(http, reason_phrases)
{
    cr_expect_str_eq(rl_http_reason(200), "OK");
    cr_expect_str_eq(rl_http_reason(429), "Too Many Requests");
    cr_expect_str_eq(rl_http_reason(405), "Method Not Allowed");
    cr_expect_str_eq(rl_http_reason(504), "Gateway Timeout");
    cr_expect_str_eq(rl_http_reason(499), "Client Error");
    cr_expect_str_eq(rl_http_reason(599), "Server Error");
}

Test(http, errorf_fills_truncates_and_accepts_null)
{
    rl_error err;
    char big[sizeof err.text * 2];

    rl_errorf(NULL, "ignored %d", 1);
    rl_errorf(&err, "shm \"%s\": %d", "/x", 7);
    cr_expect_str_eq(err.text, "shm \"/x\": 7");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rl_errorf(&err, "%s", big);
    cr_expect_eq(strlen(err.text), sizeof err.text - 1);
}

Test(http, clocks_move_forward)
{
    int64_t m0 = rl_clock_mono_ms(), r0 = rl_clock_real_ms();
    uint64_t u0 = rl_clock_mono_us();

    rl_clock_nap_ms(5);
    cr_expect_geq(rl_clock_mono_ms() - m0, 4);
    cr_expect_geq(rl_clock_mono_us() - u0, 4000u);
    cr_expect_gt(r0, 1600000000000LL); /* after 2020: milliseconds since the epoch */
}
