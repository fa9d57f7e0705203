/* quote.h -- quoting a value for an error message (internal) */
#ifndef RL_QUOTE_H
#define RL_QUOTE_H

#include <stddef.h>

#define RL_QUOTE_MAX 64                      /* bytes of the value shown before "..." */
#define RL_QUOTE_SIZE (RL_QUOTE_MAX * 4 + 8) /* room for the worst case, all escaped */

/* Writes the first n bytes of s (borrowed) into dst (RL_QUOTE_SIZE bytes) as a one-line C-like
 * string in double quotes: '"' and '\\' are backslashed, other bytes outside printable ASCII
 * become \xHH, and a value longer than RL_QUOTE_MAX ends with "..." after the closing quote.
 * A message built with it stays on one line whatever the value holds. Returns dst. */
const char *rl_quote(char *dst, const char *s, size_t n);

#endif
