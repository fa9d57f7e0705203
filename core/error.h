/* error.h -- formatting an error message (internal)
 *
 * The one place an error message is formatted: rl_errbuf_vset writes a printf-style message
 * into a caller's buffer, truncated to fit and always NUL-terminated (nothing when the buffer
 * has no room at all). Every handle's errstr setter (shm, limiter, redis, ...) and rl_errorf,
 * which fills a caller's rl_error, go through it. A NULL err means the caller does not want
 * the text, and is not an error itself.
 */
#ifndef RL_ERROR_H
#define RL_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "ratelimit.h"

/* Formats the message into buf of size bytes (nothing when buf is NULL or size is 0). */
void rl_errbuf_vset(char *buf, size_t size, const char *fmt, va_list ap) RL_PRINTF(3, 0);

/* Formats the message into err->text (nothing when err is NULL). */
void rl_errorf(rl_error *err, const char *fmt, ...) RL_PRINTF(2, 3);

#endif
