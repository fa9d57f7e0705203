/* report.c -- what rl-burst prints: a report for people and a JSON summary for programs
 *
 * The report: what was sent and the rule, one row per client (sent, 2xx, 429, other,
 * transport errors, the allowance as MIN..MAX or <=MAX, the verdict), latency and throughput,
 * each problem in words, the overall verdict. With more than REPORT_ROWS clients only the
 * first REPORT_ROWS rows and every client with a problem are shown; the JSON lists them all.
 * A rule read from the server's RateLimit-Policy (no --limit) is shown with the field it came
 * from, in the report and in the JSON.
 */
#include "fmacros.h"

#include <stdio.h>
#include <string.h>

#include "burst.h"

#define REPORT_ROWS 64

static const char *report_algo(rl_algo a)
{
    switch (a) {
    case RL_ALGO_GCRA: return "gcra";
    case RL_ALGO_FIXED_WINDOW: return "fixed_window";
    case RL_ALGO_SLIDING_WINDOW: return "sliding_window";
    case RL_ALGO_SLIDING_LOG: return "sliding_log";
    }
    return "?";
}

static void report_allowed(const burst_client *c, char *buf, size_t size)
{
    if (c->min_allowed >= 0)
        snprintf(buf, size, "%lld..%lld", (long long)c->min_allowed, (long long)c->max_allowed);
    else
        snprintf(buf, size, "<=%lld", (long long)c->max_allowed);
}

static void report_rule(const burst_options *o, const burst_run *run, FILE *out)
{
    if (o->from_policy) {
        fprintf(out,
                "policy:  %s: the RateLimit-Policy of request %zu (the first answer), "
                "judged as --limit %s\n",
                run->policy, run->first_answer + 1, o->limit_text);
        fprintf(out, "         (a policy states no algorithm or burst: %s)\n",
                o->algo != RL_ALGO_GCRA ? "--algorithm as given"
                : o->burst_given > 0    ? "gcra, --burst as given"
                                        : "gcra with burst = COUNT, unless --algorithm/--burst");
    }
    fprintf(out, "rule:    %s %s (%lld per %lld ms)", report_algo(o->algo), o->limit_text,
            (long long)o->count, (long long)o->period_ms);
    if (o->algo == RL_ALGO_GCRA)
        fprintf(out, ", burst %lld, then one per %.3f ms\n", (long long)o->burst,
                (double)o->period_ms / (double)o->count);
    else if (o->algo == RL_ALGO_SLIDING_LOG)
        fprintf(out, ", counted over the last %lld ms\n", (long long)o->period_ms);
    else
        fprintf(out, ", windows aligned on the epoch\n");
}

static void report_problems(const burst_summary *s, FILE *out)
{
    const burst_options *o = s->o;

    for (int i = 0; i < o->clients; i++) {
        const burst_client *c = &s->clients[i];
        if (c->over)
            fprintf(out,
                    "  %s: OVER-ADMISSION: %lld admitted, the rule allows at most %lld "
                    "in %.3f s\n",
                    c->addr, (long long)c->admitted, (long long)c->max_allowed,
                    (double)(c->last_done_us - c->first_sent_us) / 1e6);
        if (c->under)
            fprintf(out,
                    "  %s: UNDER-ADMISSION: %lld admitted of %lld sent, the rule admits "
                    "exactly %lld (was the client idle before the run?)\n",
                    c->addr, (long long)c->admitted, (long long)c->sent, (long long)c->min_allowed);
        if (c->header_violations > 0)
            fprintf(out, "  %s: HEADERS: %lld violation(s), first: %s\n", c->addr,
                    (long long)c->header_violations, c->first_violation);
        if (c->errors > 0)
            fprintf(out, "  %s: %lld request(s) got no HTTP answer\n", c->addr,
                    (long long)c->errors);
    }
    if (s->run->transport_errors > 0)
        fprintf(out, "  transport errors: %zu, first: %s\n", s->run->transport_errors,
                s->run->first_error);
}

static const char *report_verdict(int exit_code)
{
    switch (exit_code) {
    case BURST_EXIT_OK: return "ok: every client within its allowance, headers coherent";
    case BURST_EXIT_VIOLATION: return "VIOLATION";
    case BURST_EXIT_TRANSPORT: return "INCONCLUSIVE: requests got no HTTP answer";
    }
    return "?";
}

void burst_report_text(const burst_summary *s, FILE *out)
{
    const burst_options *o = s->o;
    const burst_stats *st = s->stats;
    char allowed[48];
    int hidden = 0;

    fprintf(out, "rl-burst: %lld requests from %d client(s) (%s %s..%s), concurrency %d\n",
            (long long)st->sent, o->clients, o->xff ? "X-Forwarded-For" : "source addresses",
            s->clients[0].addr, s->clients[o->clients - 1].addr, o->concurrency);
    fprintf(out, "url:     %s\n", o->url);
    report_rule(o, s->run, out);
    if (s->run->interrupted)
        fprintf(out, "note:    interrupted: sending stopped early\n");
    fprintf(out, "\n%-16s %8s %8s %8s %6s %6s %13s  %s\n", "client", "sent", "2xx", "429", "other",
            "errors", "allowed", "verdict");
    for (int i = 0; i < o->clients; i++) {
        const burst_client *c = &s->clients[i];
        const char *v = burst_client_verdict(c);
        if (i >= REPORT_ROWS && strcmp(v, "ok") == 0) {
            hidden++;
            continue;
        }
        report_allowed(c, allowed, sizeof allowed);
        fprintf(out, "%-16s %8lld %8lld %8lld %6lld %6lld %13s  %s\n", c->addr, (long long)c->sent,
                (long long)c->admitted, (long long)c->refused, (long long)c->other,
                (long long)c->errors, allowed, v);
    }
    if (hidden > 0)
        fprintf(out, "(%d more clients within their allowance not shown; see --json)\n", hidden);
    fprintf(out, "%-16s %8lld %8lld %8lld %6lld %6lld\n\n", "total", (long long)st->sent,
            (long long)st->admitted, (long long)st->refused, (long long)st->other,
            (long long)st->errors);
    fprintf(out, "latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
            (double)st->p50_us / 1e3, (double)st->p90_us / 1e3, (double)st->p99_us / 1e3,
            (double)st->max_us / 1e3);
    fprintf(out, "rate:    %lld answers in %.3f s = %.0f requests/s\n", (long long)st->answered,
            st->elapsed_s, st->rps);
    fprintf(out, "headers: %lld violation(s)\n", (long long)s->header_violations);
    if (s->exit_code != BURST_EXIT_OK) {
        fprintf(out, "problems:\n");
        report_problems(s, out);
    }
    fprintf(out, "verdict: %s (exit %d)\n", report_verdict(s->exit_code), s->exit_code);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void report_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void burst_report_json(const burst_summary *s, FILE *out)
{
    const burst_options *o = s->o;
    const burst_stats *st = s->stats;

    fprintf(out, "{\n  \"url\": ");
    report_json_str(out, o->url);
    fprintf(out,
            ",\n  \"mode\": \"%s\", \"concurrency\": %d, \"clients\": %d, "
            "\"interrupted\": %s,\n",
            o->xff ? "xff" : "source", o->concurrency, o->clients,
            s->run->interrupted ? "true" : "false");
    fprintf(out, "  \"rule\": {\"algorithm\": \"%s\", \"limit\": ", report_algo(o->algo));
    report_json_str(out, o->limit_text);
    fprintf(out, ", \"count\": %lld, \"period_ms\": %lld, \"burst\": %lld, \"source\": ",
            (long long)o->count, (long long)o->period_ms, (long long)o->burst);
    if (o->from_policy) {
        fprintf(out, "\"policy\", \"policy\": ");
        report_json_str(out, s->run->policy);
    } else {
        fprintf(out, "\"option\", \"policy\": null");
    }
    fprintf(out, "},\n");
    fprintf(out,
            "  \"totals\": {\"sent\": %lld, \"admitted\": %lld, \"refused\": %lld, "
            "\"other\": %lld, \"transport_errors\": %lld},\n",
            (long long)st->sent, (long long)st->admitted, (long long)st->refused,
            (long long)st->other, (long long)st->errors);
    fprintf(out,
            "  \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
            "\"max\": %.3f},\n",
            (double)st->p50_us / 1e3, (double)st->p90_us / 1e3, (double)st->p99_us / 1e3,
            (double)st->max_us / 1e3);
    fprintf(out, "  \"elapsed_s\": %.6f, \"rps\": %.1f,\n", st->elapsed_s, st->rps);
    fprintf(out, "  \"per_client\": [\n");
    for (int i = 0; i < o->clients; i++) {
        const burst_client *c = &s->clients[i];
        fprintf(out,
                "    {\"address\": \"%s\", \"sent\": %lld, \"admitted\": %lld, "
                "\"refused\": %lld, \"other\": %lld, \"transport_errors\": %lld, "
                "\"max_allowed\": %lld, ",
                c->addr, (long long)c->sent, (long long)c->admitted, (long long)c->refused,
                (long long)c->other, (long long)c->errors, (long long)c->max_allowed);
        if (c->min_allowed >= 0)
            fprintf(out, "\"min_allowed\": %lld, ", (long long)c->min_allowed);
        else
            fprintf(out, "\"min_allowed\": null, ");
        fprintf(out, "\"header_violations\": %lld, \"first_violation\": ",
                (long long)c->header_violations);
        if (c->header_violations > 0)
            report_json_str(out, c->first_violation);
        else
            fprintf(out, "null");
        fprintf(out, ", \"verdict\": \"%s\"}%s\n", burst_client_verdict(c),
                i + 1 < o->clients ? "," : "");
    }
    fprintf(out,
            "  ],\n  \"over_admission_clients\": %lld, \"under_admission_clients\": %lld, "
            "\"header_violations\": %lld,\n",
            (long long)s->over, (long long)s->under, (long long)s->header_violations);
    fprintf(out, "  \"first_transport_error\": ");
    if (s->run->transport_errors > 0)
        report_json_str(out, s->run->first_error);
    else
        fprintf(out, "null");
    fprintf(out, ",\n  \"verdict\": \"%s\", \"exit\": %d\n}\n",
            s->exit_code == BURST_EXIT_OK          ? "ok"
            : s->exit_code == BURST_EXIT_VIOLATION ? "violation"
                                                   : "transport-errors",
            s->exit_code);
}
