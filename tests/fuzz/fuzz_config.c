/* fuzz_config.c -- libFuzzer target: arbitrary bytes as a configuration file
 *
 * Loaded as the program loads it (settings_load: the core's sections and the filter's, proxy,
 * fastcgi, headers and admin, then the RATE_LIMIT_* environment, unset here), so every
 * section of the file is fuzzed; rl_config_load alone would refuse the filter's as unknown
 * keys. The loader reads a path, so each input is written to one memfd and loaded through
 * /proc/self/fd/N. Any result is fine (a config, or NULL with an error text); what must never
 * happen is a crash, a sanitizer report, a leak, or an error text that is not one line.
 */
#define _GNU_SOURCE /* memfd_create */
#include "fmacros.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../filter/env.c"
#include "../../filter/settings.c"
#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    rl_error err;

    if (fd < 0) {
        fd = memfd_create("fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    rl_config *cfg = settings_load(path, &err);
    if (cfg == NULL && (err.text[0] == '\0' || strchr(err.text, '\n') != NULL))
        abort(); /* every failure must say why, on one line */
    rl_config_free(cfg);
    return 0;
}
