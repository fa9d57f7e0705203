/* fuzz_request.c -- libFuzzer target: request_load (filter/request.c) on arbitrary parameters
 *
 * The input is split at NUL bytes into at most 64 "NAME=value" parameters, the array the
 * server loop (or a CGI environment) hands the filter; request_load copies what a decision
 * needs out of it (found in one pass, the first of each name). Contract: 0 only with a client
 * that is a real IPv4/IPv6 address (a zone allowed on IPv6) of at most 45 bytes, a bounded
 * method, and a canonical path (rl_path_canon): it starts with '/', holds no "//", no "." or
 * ".." segment and no control byte, and is its own canonical form; otherwise 400 or 414 with
 * a reason that is one printable line. The filter's sources are compiled into this target
 * (they are not in libratelimit).
 */
#include "fmacros.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../filter/log.c"
#include "../../filter/request.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PARAMS 64

static int fuzz_is_address(const char *s)
{
    unsigned char bin[sizeof(struct in6_addr)];
    char host[64];
    size_t n = strcspn(s, "%");

    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, bin) == 1 ? s[n] == '\0' : inet_pton(AF_INET6, host, bin) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *params[FUZZ_PARAMS + 1];
    size_t np = 0, i = 0;
    static request req; /* 4 KiB+: not on the fuzzer's stack */

    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    while (i <= size && np < FUZZ_PARAMS) {
        params[np++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    params[np] = NULL;

    int st = request_load(&req, params);
    if (st == 0) {
        if (!fuzz_is_address(req.client) || strlen(req.client) >= REQUEST_CLIENT_MAX)
            abort();
        static char again[RL_PATH_MAX];
        size_t n = strlen(req.path);
        if (n >= REQUEST_PATH_MAX || strlen(req.method) >= REQUEST_METHOD_MAX)
            abort();
        /* Canonical: what every rule and admin path is matched on. (A decoded '?' may be in
         * it: "%3F" is a path character like any other.) */
        if (req.path[0] != '/' || strstr(req.path, "//") != NULL ||
            strstr(req.path, "/./") != NULL || strstr(req.path, "/../") != NULL ||
            (n >= 2 && strcmp(req.path + n - 2, "/.") == 0) ||
            (n >= 3 && strcmp(req.path + n - 3, "/..") == 0))
            abort();
        for (const char *p = req.path; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort();
        if (rl_path_canon(req.path, RL_PATH_DECODED, again, NULL) != RL_PATH_OK ||
            strcmp(again, req.path) != 0)
            abort();
        if (req.role != REQUEST_ROLE_AUTHORIZER && req.role != REQUEST_ROLE_RESPONDER)
            abort();
    } else {
        if ((st != 400 && st != 414) || req.reason[0] == '\0')
            abort();
        for (const char *p = req.reason; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort(); /* reasons go to the log as one printable line */
    }
    free(copy);
    return 0;
}
