/* burst.h -- rl-burst: send requests from many clients at once and judge the limits they met
 *
 * One file per job:
 *   options.c  the command line into a burst_options; the clients' addresses
 *   load.c     the load itself: libcurl multi, concurrency, pacing, progress line -> burst_run
 *   fields.c   the response headers that matter: Retry-After, RateLimit, X-RateLimit-Remaining,
 *              RateLimit-Policy
 *   policy.c   without --limit: the rule from the first answer's RateLimit-Policy
 *   judge.c    per client: the algorithm's allowance, admissions against it, header coherence
 *   stats.c    latency percentiles and throughput
 *   report.c   the human report and the JSON summary
 *   main.c     glue and the exit status
 *
 * Time inside a run is integer microseconds since the run started, on CLOCK_MONOTONIC. The
 * wall clock at that start is kept too, to place the windows of the window algorithms (the
 * filter aligns them on multiples of the period since the Unix epoch).
 */
#ifndef BURST_H
#define BURST_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "ratelimit.h"

enum {
    BURST_EXIT_OK = 0,        /* every client within its allowance, headers coherent */
    BURST_EXIT_VIOLATION = 1, /* over- or under-admission, or incoherent headers */
    BURST_EXIT_USAGE = 2,
    BURST_EXIT_TRANSPORT = 3, /* a request got no HTTP answer (could not connect, timeout) */
};

#define BURST_ADDR_MAX 16 /* "255.255.255.255" and its NUL */
#define BURST_MAX_REQUESTS 10000000LL
#define BURST_ABSENT (-1)    /* a header field that was not there */
#define BURST_MALFORMED (-2) /* a header field that was there but did not parse */
#define BURST_POLICY_MAX                                                                           \
    1024 /* bytes of a RateLimit-Policy value kept (the filter's: ~30 a rule) */
#define BURST_LIMIT_TEXT_MAX 48

/* ---- options.c ----------------------------------------------------------------------------- */

typedef struct burst_options {
    const char *url;        /* borrowed from argv */
    int64_t requests;       /* -n; 0 = until --duration ends */
    int concurrency;        /* -c: requests in flight at most */
    int clients;            /* -k: distinct clients, request i belongs to client i % k */
    int xff;                /* --xff: one source address, the client in X-Forwarded-For */
    uint32_t first_client;  /* --first-client, host byte order */
    double rate;            /* --rate: requests/s overall; 0 = as fast as -c allows */
    int64_t duration_us;    /* --duration; 0 = none */
    const char *limit_text; /* --limit as given (borrowed from argv), or limit_own */
    int64_t count;          /* --limit COUNT/PERIOD ...; 0 until the policy gives it */
    int64_t period_ms;
    int64_t burst;       /* --burst; defaults to count */
    int64_t burst_given; /* --burst as given; 0 = none */
    int from_policy;     /* no --limit: the rule comes from the server's RateLimit-Policy */
    char limit_own[BURST_LIMIT_TEXT_MAX]; /* "Q/Ws" when from_policy */
    rl_algo algo;                         /* --algorithm */
    const char *rule; /* --rule: the RateLimit member to follow; NULL = the first */
    long timeout_ms;  /* --timeout, per request */
    int json;         /* --json: JSON on stdout, the human report on stderr */
    int progress;     /* show the progress line (default: when stderr is a terminal) */
} burst_options;

/* Parses argv into o. Returns 0 to run, 1 when --help or --version was printed (exit 0), -1
 * after printing a usage error to stderr (exit 2). Without --limit, o->from_policy is set and
 * o->count stays 0 until burst_options_rule. */
int burst_options_parse(int argc, char **argv, burst_options *o);

/* Sets the rule to judge against: count per period_ms, and the burst (--burst, else count),
 * held to the configuration's bounds (count x period and burst x period at most 2^50 ms).
 * Returns 0, or -1 with the reason in why. */
int burst_options_rule(burst_options *o, int64_t count, int64_t period_ms, char *why, size_t size);

/* The dotted address of every client, o->clients of them: first_client, then the next
 * addresses, skipping those ending in .0 or .255. Returns a new array (free() it) or NULL with
 * a message on stderr (no memory, or a source address outside 127.0.0.0/8). */
char (*burst_client_addrs(const burst_options *o))[BURST_ADDR_MAX];

/* ---- fields.c ------------------------------------------------------------------------------ */

typedef struct burst_fields {
    int64_t retry_after; /* seconds, or BURST_ABSENT / BURST_MALFORMED */
    int64_t r;           /* RateLimit r of the followed member, or BURST_ABSENT / _MALFORMED */
    int64_t r_min;       /* smallest r over every member; BURST_ABSENT when none */
    int64_t x_remaining; /* X-RateLimit-Remaining, or BURST_ABSENT / BURST_MALFORMED */
    int has_ratelimit;   /* a RateLimit field was there (parsed or not) */
} burst_fields;

void burst_fields_reset(burst_fields *f);

/* Takes one header line as libcurl hands it over ("Name: value\r\n", not NUL-terminated). A
 * status line starts a new header block and forgets the previous one (100 Continue). rule is
 * the RateLimit member to follow (NULL = the first). */
void burst_fields_line(burst_fields *f, const char *line, size_t len, const char *rule);

/* When line is "name: value" (name case-insensitive), points *value at the value without the
 * blanks and CRLF around it and returns 1; else 0. */
int burst_header_value(const char *line, size_t len, const char *name, const char **value,
                       size_t *vlen);

/* Reads the RateLimit-Policy value s[0..n): q and w of the member named rule (the first when
 * rule is NULL), each BURST_ABSENT when not there, BURST_MALFORMED when not a non-negative
 * integer. Returns 0 when that member is there, 1 when it is not, -1 when the list does not
 * parse. */
int burst_policy_member(const char *s, size_t n, const char *rule, int64_t *q, int64_t *w);

/* ---- load.c -------------------------------------------------------------------------------- */

typedef struct burst_record {
    int client;      /* 0 .. clients-1 */
    int64_t sent_us; /* handed to libcurl */
    int64_t done_us; /* response complete (or failed); 0 while in flight */
    long status;     /* HTTP status; 0 on a transport error */
    int curl_code;   /* CURLE_OK or the transport error */
    burst_fields f;
} burst_record;

typedef struct burst_run {
    burst_record *rec; /* every request, in the order it was sent */
    size_t n;
    size_t cap;
    int64_t wall_start_us; /* CLOCK_REALTIME when the run started */
    int64_t elapsed_us;    /* start to the last completion */
    size_t transport_errors;
    char first_error[256]; /* the first transport error, or why the run could not start */
    int interrupted;       /* SIGINT stopped the sending early */
    /* The first answer in send order (the lowest record with an HTTP answer; SIZE_MAX while
     * none) and its RateLimit-Policy value: policy_state 0 none, 1 kept whole, 2 cut short. */
    size_t first_answer;
    int policy_state;
    char policy[BURST_POLICY_MAX];
} burst_run;

/* Runs the load described by o from the clients addrs (borrowed). Returns 0 with run filled
 * (free with burst_run_free), or -1 with run->first_error set when it could not start. */
int burst_load_run(const burst_options *o, const char (*addrs)[BURST_ADDR_MAX], burst_run *run);
void burst_run_free(burst_run *run);

/* ---- policy.c ------------------------------------------------------------------------------ */

/* When o->from_policy: sets o's rule from run's first answer's RateLimit-Policy (the member
 * --rule names, else the first): COUNT = q, PERIOD = w seconds. Returns 0 (also when the rule
 * came from --limit), or BURST_EXIT_USAGE or BURST_EXIT_TRANSPORT after a message on stderr
 * saying why the rule could not be known. */
int burst_policy_apply(burst_options *o, const burst_run *run);

/* ---- judge.c ------------------------------------------------------------------------------- */

typedef struct burst_client {
    const char *addr;                               /* borrowed from the addrs array */
    int64_t sent, admitted, refused, other, errors; /* admitted = 2xx, refused = 429 */
    int64_t first_sent_us; /* the span every decision for this client lies in */
    int64_t last_done_us;
    int64_t windows;     /* windows touched (window algorithms), else 0 */
    int64_t max_allowed; /* admissions the algorithm allows at most */
    int64_t min_allowed; /* ... at least, or -1 where no minimum is defined */
    int64_t header_violations;
    char first_violation[256];
    int over, under; /* admitted > max_allowed; admitted < min_allowed */
} burst_client;

/* Judges every client of run against o's rule. Returns a new array of o->clients entries
 * (free() it), or NULL when out of memory. */
burst_client *burst_judge(const burst_options *o, const char (*addrs)[BURST_ADDR_MAX],
                          const burst_run *run);

/* "ok", "over-admission", "under-admission", "headers" or "transport-errors". */
const char *burst_client_verdict(const burst_client *c);

/* ---- stats.c ------------------------------------------------------------------------------- */

typedef struct burst_stats {
    int64_t sent, admitted, refused, other, errors;
    int64_t answered; /* requests with an HTTP answer: the latency sample */
    int64_t p50_us, p90_us, p99_us, max_us;
    double elapsed_s;
    double rps; /* answered / elapsed_s */
} burst_stats;

/* Returns 0, or -1 when out of memory. */
int burst_stats_compute(const burst_run *run, burst_stats *s);

/* ---- report.c ------------------------------------------------------------------------------ */

typedef struct burst_summary {
    const burst_options *o;
    const burst_run *run;
    const burst_client *clients;
    const burst_stats *stats;
    int64_t over, under, header_violations; /* clients over/under, violations in all */
    int exit_code;
} burst_summary;

void burst_report_text(const burst_summary *s, FILE *out);
void burst_report_json(const burst_summary *s, FILE *out);

#endif /* BURST_H */
