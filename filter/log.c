/* log.c -- one-line diagnostics of the filter on stderr (format in log.h) */
#include "../core/fmacros.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const log_level_names[] = {"error", "warn", "info"};

void log_msg(log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    int saved = errno;
    int n = snprintf(line, sizeof line, "ratelimit-filter[%ld]: %s: ", (long)getpid(),
                     log_level_names[level]);
    size_t len = n > 0 ? (size_t)n : 0;

    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    va_end(ap);
    if (n > 0)
        len += (size_t)n;
    if (len > sizeof line - 2) /* cut: keep room for the newline */
        len = sizeof line - 2;
    line[len++] = '\n';

    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to report it */
        off += (size_t)w;
    }
    errno = saved;
}

char *log_escape(char *dst, size_t size, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (size == 0)
        return dst;
    if (src == NULL)
        src = "";
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        int plain = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
        size_t need = plain ? 1 : 4;
        if (o + need + 1 > size) {
            /* cut: make room for "..." and the NUL, whatever the last bytes were */
            o = size > 4 ? (o + 4 <= size ? o : size - 4) : 0;
            if (size > 4) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (plain) {
            dst[o++] = (char)*p;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[*p >> 4];
            dst[o++] = hex[*p & 15];
        }
    }
    dst[o] = '\0';
    return dst;
}
