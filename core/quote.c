/* quote.c -- quoting a value for an error message
 *
 * Values in messages come from files and requests, so they may hold anything: newlines that
 * would split a log line, or megabytes. rl_quote() bounds and escapes them; the output always
 * fits RL_QUOTE_SIZE bytes (at most 4 bytes per input byte, plus quotes, "..." and NUL).
 */
#include "fmacros.h"

#include "quote.h"

#include <stdio.h>

const char *rl_quote(char *dst, const char *s, size_t n)
{
    size_t shown = n > RL_QUOTE_MAX ? RL_QUOTE_MAX : n;
    char *p = dst;

    *p++ = '"';
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c > 0x7e) {
            p += snprintf(p, 5, "\\x%02x", c);
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    if (shown < n) {
        *p++ = '.';
        *p++ = '.';
        *p++ = '.';
    }
    *p = '\0';
    return dst;
}
