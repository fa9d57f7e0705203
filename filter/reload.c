/* reload.c -- load the configuration again, for SIGHUP
 *
 * A reload never leaves a process without a working configuration: the new file is loaded
 * and validated, and its limiter opened, while the old ones keep serving; only when both
 * succeeded does the caller swap them, between requests. Whatever fails is logged and the
 * running configuration stays. A configuration that needs another table (a new shm.capacity,
 * a longer rule name, a first sliding_log rule, Redis switched on) is no such failure: opening
 * its limiter replaces the table by a new generation that carries every live entry over
 * (core/shm_gen.c), which the other processes attach to as they reload (MANUAL.md,
 * "Reloading").
 */
#include "../core/fmacros.h"

#include "reload.h"

#include "backend.h"
#include "log.h"

int reload_load(const char *path, rl_config **cfg, rl_limiter **lim)
{
    rl_error err;
    rl_config *c = rl_config_load(path, &err);

    if (c == NULL) {
        log_error("reload: %s: keeping the running configuration", err.text);
        return -1;
    }
    rl_limiter *l = rl_limiter_open(c, &err);
    if (l == NULL) {
        log_error("reload: %s: cannot open the limiter: %s: keeping the running configuration",
                  path, err.text);
        rl_config_free(c);
        return -1;
    }
    if (*rl_limiter_shm_note(l) != '\0')
        log_info("reload: %s", rl_limiter_shm_note(l));
    if (lim != NULL)
        *lim = l;
    else
        rl_limiter_close(l);
    *cfg = c;
    return 0;
}
