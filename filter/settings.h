/* settings.h -- the filter's own configuration sections: proxy, fastcgi, headers, admin
 *
 * The core reads shm, redis, identity, access and rules; these sections concern the filter
 * only, so their rows live here (settings.c) and their structs in the loaded rl_config, read
 * back with the accessors below. settings_load() is the one way the program loads a
 * configuration: the file with these sections, then the environment (env.c).
 */
#ifndef FILTER_SETTINGS_H
#define FILTER_SETTINGS_H

#include "ratelimit.h"
#include "ratelimit_schema.h"

/* Where allowed requests are forwarded in the FastCGI responder role. */
typedef struct settings_proxy {
    char *backend; /* "http://HOST[:PORT]", no trailing '/'; NULL = not proxying */
    int connect_timeout_ms;
    int timeout_ms; /* the longest the backend may stay silent during one exchange */
    int total_timeout_ms; /* the longest one exchange may take, whatever moves */
} settings_proxy;

/* How the filter's FastCGI server treats its connections (the --listen daemon and the pool a
 * web server spawns, fcgi_server.c): deadlines and the connections one process holds. */
typedef struct settings_fastcgi {
    int read_timeout_ms; /* a request's parameters, from its first byte; also each wait for
                            its body or to send its answer */
    int idle_timeout_ms; /* a kept connection between requests */
    int max_connections; /* connections one process holds at once */
} settings_fastcgi;

typedef struct settings_headers {
    int x_ratelimit;  /* also send X-RateLimit-* (default on) */
    int problem_json; /* refusals carry an RFC 9457 application/problem+json body (off) */
} settings_headers;

/* The admin endpoints (health, stats, test, metrics): answered in the responder role to
 * clients in `allow` (resolved like rule keys: trusted proxies apply), never rate-limited or
 * forwarded. Paths are distinct, canonical, exact matches. */
typedef struct settings_admin {
    int enabled;
    rl_cidr *allow;
    size_t nallow;
    char *health_path;
    char *stats_path;
    char *test_path;
    char *metrics_path;
} settings_admin;

/* The file's configuration with the filter's sections, then the RATE_LIMIT_* environment.
 * NULL with err->text on failure. */
rl_config *settings_load(const char *file, rl_error *err);

/* The filter's sections, in MANUAL order; *n set to their number. */
const rl_section *const *settings_sections(size_t *n);

/* The sections of a config loaded by settings_load (never NULL there). */
const settings_proxy *settings_get_proxy(const rl_config *cfg);
const settings_fastcgi *settings_get_fastcgi(const rl_config *cfg);
const settings_headers *settings_get_headers(const rl_config *cfg);
const settings_admin *settings_get_admin(const rl_config *cfg);

#endif
