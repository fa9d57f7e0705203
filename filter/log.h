/* log.h -- one-line diagnostics of the filter on stderr
 *
 * Every line reads `ratelimit-filter[PID]: LEVEL: message`, LEVEL being error, warn or info,
 * and goes out in a single write(2) so lines of several filter processes sharing the web
 * server's error log never interleave. Lines are cut at LOG_LINE_MAX bytes.
 */
#ifndef FILTER_LOG_H
#define FILTER_LOG_H

#include <stddef.h>

#include "ratelimit.h"

#define LOG_LINE_MAX 2048

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
} log_level;

void log_msg(log_level level, const char *fmt, ...) RL_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)

/* Copies src (NULL is taken as "") into dst for quoting in a log line: bytes outside printable
 * ASCII, '"' and '\\' become \xHH, and the copy is cut (ending in "...") to fit size bytes
 * including the NUL. Returns dst. Values that came from a client go through this first. */
char *log_escape(char *dst, size_t size, const char *src);

#endif
