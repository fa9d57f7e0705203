/* stats.c -- totals, latency percentiles and throughput of a run
 *
 * The latency sample is every request that got an HTTP answer (transport errors excluded),
 * measured from the moment it was handed to libcurl to the end of its answer. Percentiles are
 * nearest-rank: p of n sorted values is the ceil(p/100 x n)-th.
 */
#include "fmacros.h"

#include <stdlib.h>

#include "burst.h"

static int stats_cmp(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

static int64_t stats_rank(const int64_t *v, int64_t n, int p)
{
    int64_t k = (p * n + 99) / 100;
    return v[k > 0 ? k - 1 : 0];
}

int burst_stats_compute(const burst_run *run, burst_stats *s)
{
    int64_t *lat = malloc((run->n + 1) * sizeof *lat);
    int64_t n = 0;

    *s = (burst_stats){0};
    if (lat == NULL)
        return -1;
    for (size_t i = 0; i < run->n; i++) {
        const burst_record *r = &run->rec[i];
        s->sent++;
        if (r->status == 0) {
            s->errors++;
            continue;
        }
        if (r->status >= 200 && r->status < 300)
            s->admitted++;
        else if (r->status == 429)
            s->refused++;
        else
            s->other++;
        lat[n++] = r->done_us - r->sent_us;
    }
    s->answered = n;
    if (n > 0) {
        qsort(lat, (size_t)n, sizeof *lat, stats_cmp);
        s->p50_us = stats_rank(lat, n, 50);
        s->p90_us = stats_rank(lat, n, 90);
        s->p99_us = stats_rank(lat, n, 99);
        s->max_us = lat[n - 1];
    }
    s->elapsed_s = (double)run->elapsed_us / 1e6;
    s->rps = s->elapsed_s > 0 ? (double)n / s->elapsed_s : 0;
    free(lat);
    return 0;
}
