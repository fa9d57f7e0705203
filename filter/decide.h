/* decide.h -- `ratelimit-filter --decide`: decisions from the command line, as JSON lines */
#ifndef FILTER_DECIDE_H
#define FILTER_DECIDE_H

#include <stddef.h>

#define DECIDE_HEADERS_MAX 32

/* What one --decide run asks; every string borrowed from argv. */
typedef struct decide_args {
    const char *client;  /* the peer address (REMOTE_ADDR); required */
    const char *path;    /* required */
    const char *method;  /* default "GET" */
    const char *host;    /* NULL = none */
    const char *headers[DECIDE_HEADERS_MAX]; /* "Name: value" */
    size_t nheaders;
    long count;          /* decisions to make, >= 1 */
} decide_args;

/* Loads `file`, opens the real stores and makes a->count decisions, printing one JSON object
 * per line on stdout. Returns the process exit code: 0, 1 (configuration), 2 (a malformed
 * --header) or 3 (the stores could not be opened, or a decision failed). */
int decide_run(const char *file, const decide_args *a);

#endif
