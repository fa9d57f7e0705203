/* load.c -- rl-burst's load: many clients, bounded concurrency, optional pacing
 *
 * One libcurl multi handle drives `concurrency` easy handles (the slots). Request i belongs to
 * client i % clients; when a slot is free (and, with --rate, the request is due) the next
 * request takes it: its send time is recorded, the slot is pointed at the client's source
 * address (CURLOPT_INTERFACE "host!127.0.x.y") or X-Forwarded-For list, and the handle joins
 * the multi. libcurl's connection cache keeps connections apart by local address, so a kept-
 * alive connection is only reused by the same client.
 *
 * Pacing: request i is due at i / rate seconds after the start; a run that falls behind sends
 * as soon as a slot frees up (it catches up, it never skips). The records array grows as
 * requests are sent; the header callback finds its record by index, never by pointer, so the
 * array may move between callbacks.
 *
 * Each slot keeps the RateLimit-Policy value of its request in flight; when a request's answer
 * is the earliest-sent answer so far, that value becomes the run's (policy.c reads it when no
 * --limit was given). Kept per slot, not per record, so a long run does not carry it for every
 * request.
 */
#include "fmacros.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "burst.h"

#define LOAD_PROGRESS_AFTER_US 2000000 /* runs shorter than this show no progress line */
#define LOAD_TICK_MS 100

typedef struct load_slot {
    CURL *easy;
    burst_run *run;
    const burst_options *o;
    size_t rec; /* the request in flight; valid while busy */
    int busy;
    char errbuf[CURL_ERROR_SIZE];
    int policy_state; /* as burst_run's: 0 none yet, 1 kept whole, 2 cut short */
    char policy[BURST_POLICY_MAX];
} load_slot;

typedef struct load_client {
    char iface[BURST_ADDR_MAX + 8]; /* "host!127.0.x.y" */
    struct curl_slist *xff;         /* "X-Forwarded-For: ADDR" */
} load_client;

static volatile sig_atomic_t load_interrupted;

static void load_on_sigint(int sig)
{
    (void)sig;
    load_interrupted = 1;
}

static int64_t load_clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t load_discard(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    (void)ud;
    return size * nmemb;
}

/* Keeps the first RateLimit-Policy of the answer's (last) header block in the slot. */
static void load_policy_line(load_slot *s, const char *line, size_t len)
{
    const char *v;
    size_t vlen;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        s->policy_state = 0;
    } else if (s->policy_state == 0 &&
               burst_header_value(line, len, "RateLimit-Policy", &v, &vlen)) {
        s->policy_state = vlen < sizeof s->policy ? 1 : 2;
        if (vlen >= sizeof s->policy)
            vlen = sizeof s->policy - 1;
        memcpy(s->policy, v, vlen);
        s->policy[vlen] = '\0';
    }
}

static size_t load_header(char *line, size_t size, size_t nitems, void *ud)
{
    load_slot *s = ud;
    burst_fields_line(&s->run->rec[s->rec].f, line, size * nitems, s->o->rule);
    load_policy_line(s, line, size * nitems);
    return size * nitems;
}

static void load_error(burst_run *run, const char *what, const char *why)
{
    if (snprintf(run->first_error, sizeof run->first_error, "%s: %s", what, why) < 0)
        run->first_error[0] = '\0'; /* a long message is cut short, which is fine */
}

/* Options every request of a slot shares. Returns 0 or -1. */
static int load_slot_init(load_slot *s, const burst_options *o, burst_run *run)
{
    s->o = o;
    s->run = run;
    s->easy = curl_easy_init();
    if (s->easy == NULL)
        return -1;
    if (curl_easy_setopt(s->easy, CURLOPT_URL, o->url) != CURLE_OK)
        return -1;
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, load_discard);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, load_header);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, (void *)s);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    /* Never through a proxy from the environment: the clients must reach the server as
     * themselves. */
    curl_easy_setopt(s->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(s->easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "rl-burst/" RL_VERSION);
    return 0;
}

static int load_clients_init(load_client *cl, const burst_options *o,
                             const char (*addrs)[BURST_ADDR_MAX])
{
    char h[BURST_ADDR_MAX + 20];

    for (int i = 0; i < o->clients; i++) {
        snprintf(cl[i].iface, sizeof cl[i].iface, "host!%s", addrs[i]);
        if (o->xff) {
            snprintf(h, sizeof h, "X-Forwarded-For: %s", addrs[i]);
            cl[i].xff = curl_slist_append(NULL, h);
            if (cl[i].xff == NULL)
                return -1;
        }
    }
    return 0;
}

/* Records one more request, growing the array when needed. Returns its index or -1. */
static int64_t load_record_new(burst_run *run, int client, int64_t now)
{
    if (run->n == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 1024;
        burst_record *r = realloc(run->rec, cap * sizeof *r);
        if (r == NULL)
            return -1;
        run->rec = r;
        run->cap = cap;
    }
    burst_record *r = &run->rec[run->n];
    memset(r, 0, sizeof *r);
    r->client = client;
    r->sent_us = now;
    burst_fields_reset(&r->f);
    return (int64_t)run->n++;
}

static int load_start(CURLM *m, load_slot *s, const load_client *cl, const burst_options *o,
                      burst_run *run, int64_t now)
{
    int client = (int)(run->n % (size_t)o->clients);
    int64_t rec = load_record_new(run, client, now);

    if (rec < 0)
        return -1;
    s->rec = (size_t)rec;
    s->errbuf[0] = '\0';
    s->policy_state = 0;
    if (o->xff)
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, cl[client].xff);
    else
        curl_easy_setopt(s->easy, CURLOPT_INTERFACE, cl[client].iface);
    if (curl_multi_add_handle(m, s->easy) != CURLM_OK)
        return -1;
    s->busy = 1;
    return 0;
}

static void load_finish(CURLM *m, CURLMsg *msg, burst_run *run, int64_t now)
{
    load_slot *s = NULL;
    burst_record *r;
    long status = 0;

    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    r = &run->rec[s->rec];
    r->done_us = now;
    r->curl_code = (int)msg->data.result;
    if (msg->data.result == CURLE_OK)
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    if (status != 0 && s->rec < run->first_answer) {
        run->first_answer = s->rec;
        run->policy_state = s->policy_state;
        memcpy(run->policy, s->policy, sizeof run->policy);
    }
    if (msg->data.result != CURLE_OK || status == 0) {
        if (run->transport_errors++ == 0)
            load_error(run, curl_easy_strerror(msg->data.result),
                       s->errbuf[0] ? s->errbuf : "no HTTP answer");
    }
    curl_multi_remove_handle(m, s->easy);
    s->busy = 0;
}

static void load_progress(const burst_run *run, int64_t now, int64_t inflight)
{
    int64_t ok = 0, refused = 0;

    for (size_t i = 0; i < run->n; i++) {
        ok += run->rec[i].status >= 200 && run->rec[i].status < 300;
        refused += run->rec[i].status == 429;
    }
    fprintf(stderr,
            "\rrl-burst: %6.1f s  sent %zu  in flight %lld  2xx %lld  429 %lld  "
            "errors %zu   ",
            (double)now / 1e6, run->n, (long long)inflight, (long long)ok, (long long)refused,
            run->transport_errors);
    fflush(stderr);
}

/* How long the multi may sleep: until the next paced request is due, at most one tick. */
static long load_wait_ms(const burst_options *o, const burst_run *run, int sending, int64_t now)
{
    if (o->rate > 0 && sending) {
        int64_t due = (int64_t)((double)run->n * 1e6 / o->rate);
        if (due <= now)
            return 0;
        if (due - now < LOAD_TICK_MS * 1000)
            return (long)((due - now + 999) / 1000);
    }
    return LOAD_TICK_MS;
}

static int load_loop(CURLM *m, load_slot *slots, const load_client *cl, const burst_options *o,
                     burst_run *run, int64_t t0)
{
    int64_t inflight = 0, next_progress = LOAD_PROGRESS_AFTER_US, now;
    int printed = 0;

    for (;;) {
        now = load_clock_us(CLOCK_MONOTONIC) - t0;
        int sending = !load_interrupted && (o->requests == 0 || (int64_t)run->n < o->requests) &&
                      (o->duration_us == 0 || now < o->duration_us) &&
                      (int64_t)run->n < BURST_MAX_REQUESTS;
        for (int i = 0; sending && i < o->concurrency; i++) {
            if (slots[i].busy)
                continue;
            if (o->rate > 0 && now < (int64_t)((double)run->n * 1e6 / o->rate))
                break;
            if (load_start(m, &slots[i], cl, o, run, now) != 0) {
                load_error(run, "starting a request", "out of memory");
                return -1;
            }
            inflight++;
            sending = (o->requests == 0 || (int64_t)run->n < o->requests);
        }
        if (!sending && inflight == 0)
            break;

        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        now = load_clock_us(CLOCK_MONOTONIC) - t0;
        int freed = 0;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            load_finish(m, msg, run, now);
            freed = 1;
            inflight--;
            run->elapsed_us = now;
        }
        if (o->progress && now >= next_progress) {
            load_progress(run, now, inflight);
            printed = 1;
            next_progress = now + 1000000;
        }
        /* A slot just freed: refill it before sleeping. */
        if (!(freed && sending))
            curl_multi_poll(m, NULL, 0, (int)load_wait_ms(o, run, sending, now), NULL);
    }
    if (printed)
        fputc('\n', stderr);
    run->interrupted = load_interrupted != 0;
    return 0;
}

int burst_load_run(const burst_options *o, const char (*addrs)[BURST_ADDR_MAX], burst_run *run)
{
    load_slot *slots = calloc((size_t)o->concurrency, sizeof *slots);
    load_client *cl = calloc((size_t)o->clients, sizeof *cl);
    CURLM *m = curl_multi_init();
    struct sigaction sa, old;
    int rc = -1;

    memset(run, 0, sizeof *run);
    run->first_answer = SIZE_MAX;
    if (slots == NULL || cl == NULL || m == NULL || load_clients_init(cl, o, addrs) != 0) {
        load_error(run, "setting up", "out of memory");
        goto out;
    }
    for (int i = 0; i < o->concurrency; i++) {
        if (load_slot_init(&slots[i], o, run) != 0) {
            load_error(run, "setting up", "libcurl refused the URL or an option");
            goto out;
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = load_on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    run->wall_start_us = load_clock_us(CLOCK_REALTIME);
    rc = load_loop(m, slots, cl, o, run, load_clock_us(CLOCK_MONOTONIC));
    sigaction(SIGINT, &old, NULL);

out:
    for (int i = 0; slots != NULL && i < o->concurrency; i++) {
        if (slots[i].busy)
            curl_multi_remove_handle(m, slots[i].easy);
        curl_easy_cleanup(slots[i].easy);
    }
    for (int i = 0; cl != NULL && i < o->clients; i++)
        curl_slist_free_all(cl[i].xff);
    curl_multi_cleanup(m);
    free(slots);
    free(cl);
    return rc;
}

void burst_run_free(burst_run *run)
{
    if (run == NULL)
        return;
    free(run->rec);
    run->rec = NULL;
    run->n = run->cap = 0;
}
