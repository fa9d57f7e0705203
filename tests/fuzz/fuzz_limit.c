/* fuzz_limit.c -- libFuzzer target: rl_parse_limit on arbitrary text
 *
 * A parsed limit must respect the documented bounds; a refused one must say why.
 */
#include "fmacros.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256];
    int64_t count = 0, period = 0;
    rl_error err;

    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err.text[0] = '\0';
    if (rl_parse_limit(text, &count, &period, &err) == 0) {
        if (count < 1 || count > RL_COUNT_MAX || period < 1 || period > RL_PERIOD_MAX_MS)
            abort();
    } else if (err.text[0] == '\0') {
        abort();
    }
    return 0;
}
