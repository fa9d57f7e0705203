/* error.h -- filling a caller's rl_error (internal)
 *
 * Every function of the library that takes an rl_error * reports through rl_errorf: one
 * message, truncated to fit err->text, always NUL-terminated; a NULL err means the caller
 * does not want the text, and is not an error itself.
 */
#ifndef RL_ERROR_H
#define RL_ERROR_H

#include "ratelimit.h"

/* Formats the message into err->text (nothing when err is NULL). */
void rl_errorf(rl_error *err, const char *fmt, ...) RL_PRINTF(2, 3);

#endif
