/* lib_vectors.c -- parser and runner for the shared decision vectors (see vectors.h)
 *
 * A file is read whole and split into lines; each line into whitespace-separated tokens
 * after removing a "#" comment. Rules come first, then steps; a step carries one expected
 * tuple per rule, tuples separated by "|". Numbers are decimal int64 and are range-checked
 * like a config would be (count * period <= 2^50), so a vector never feeds an algorithm a
 * rule the real config loader would reject.
 */
#include "fmacros.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "vectors.h"

#define VEC_MAX_TOKENS (4 + 5 * RL_MAX_MATCH)
#define VEC_PRODUCT_MAX ((int64_t)1 << 50)

static const struct {
    const char *name;
    rl_algo algo;
} vec_algos[] = {
    { "gcra", RL_ALGO_GCRA },
    { "fixed_window", RL_ALGO_FIXED_WINDOW },
    { "sliding_window", RL_ALGO_SLIDING_WINDOW },
    { "sliding_log", RL_ALGO_SLIDING_LOG },
};

RL_PRINTF(3, 4) static int vec_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *vec_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

const char *rl_vec_algo_name(rl_algo algo)
{
    for (size_t i = 0; i < sizeof(vec_algos) / sizeof(vec_algos[0]); i++)
        if (vec_algos[i].algo == algo)
            return vec_algos[i].name;
    return "?";
}

/* A whole decimal int64, nothing else. */
static int vec_int(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *v = x;
    return 0;
}

void rl_vec_free(rl_vec *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nrules; i++) {
        free(v->rules[i].path_prefix);
        free(v->rules[i].limit_text);
    }
    for (size_t i = 0; i < v->nsteps; i++)
        free(v->steps[i].expect);
    free(v->rules);
    free(v->steps);
    free(v->path);
    free(v->name);
    memset(v, 0, sizeof(*v));
}

/* ---- parsing ---- */

typedef struct {
    rl_vec *v;
    const char *path;
    int line;
    char *err;
    size_t errlen;
    size_t cap_steps;
} vec_parser;

RL_PRINTF(2, 3) static int vec_fail(vec_parser *p, const char *fmt, ...)
{
    char msg[RL_VEC_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vec_error(p->err, p->errlen, "%s:%d: %s", p->path, p->line, msg);
}

static int vec_parse_rule(vec_parser *p, char **tok, int ntok)
{
    rl_vec *v = p->v;
    rl_rule r;
    int64_t have_count = 0, have_period = 0, have_algo = 0, have_burst = 0;

    if (v->nsteps > 0)
        return vec_fail(p, "rule after the first step");
    if (v->nrules == RL_MAX_MATCH)
        return vec_fail(p, "more than %d rules", RL_MAX_MATCH);
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "r%zu", v->nrules);
    r.line = p->line;
    for (int i = 1; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (eq == NULL)
            return vec_fail(p, "expected key=value, got \"%s\"", tok[i]);
        *eq = '\0';
        const char *key = tok[i], *val = eq + 1;
        int64_t x = 0;
        if (strcmp(key, "algo") == 0) {
            size_t j = 0;
            while (j < sizeof(vec_algos) / sizeof(vec_algos[0]) && strcmp(vec_algos[j].name, val))
                j++;
            if (j == sizeof(vec_algos) / sizeof(vec_algos[0]))
                return vec_fail(p, "unknown algo \"%s\"", val);
            r.algo = vec_algos[j].algo;
            have_algo = 1;
        } else if (strcmp(key, "name") == 0) {
            if (val[0] == '\0' || strlen(val) >= sizeof(r.name) || strchr(val, '\x1f'))
                return vec_fail(p, "invalid name \"%s\"", val);
            strcpy(r.name, val);
        } else if (strcmp(key, "count") == 0 || strcmp(key, "period_ms") == 0 ||
                   strcmp(key, "burst") == 0) {
            if (vec_int(val, &x) < 0 || x < 1)
                return vec_fail(p, "invalid %s \"%s\": must be an integer >= 1", key, val);
            if (key[0] == 'c') {
                r.count = x;
                have_count = 1;
            } else if (key[0] == 'p') {
                r.period_ms = x;
                have_period = 1;
            } else {
                r.burst = x;
                have_burst = 1;
            }
        } else {
            return vec_fail(p, "unknown rule key \"%s\"", key);
        }
    }
    if (!have_algo || !have_count || !have_period)
        return vec_fail(p, "a rule needs algo=, count= and period_ms=");
    if (!have_burst)
        r.burst = r.count;
    if (r.count > RL_COUNT_MAX || r.burst > RL_COUNT_MAX || r.period_ms > RL_PERIOD_MAX_MS ||
        r.count > VEC_PRODUCT_MAX / r.period_ms || r.burst > VEC_PRODUCT_MAX / r.period_ms)
        return vec_fail(p, "rule out of the config bounds (count, burst <= %lld, period_ms <= "
                           "%lld, count*period and burst*period <= 2^50)",
                        RL_COUNT_MAX, RL_PERIOD_MAX_MS);
    if (r.algo == RL_ALGO_SLIDING_LOG &&
        (r.count > RL_LOG_MAX || r.period_ms > RL_LOG_PERIOD_MAX_MS))
        return vec_fail(p, "sliding_log rule out of the config bounds (count <= %d, period_ms "
                           "<= %lld)", RL_LOG_MAX, RL_LOG_PERIOD_MAX_MS);
    for (size_t i = 0; i < v->nrules; i++)
        if (strcmp(v->rules[i].name, r.name) == 0)
            return vec_fail(p, "duplicate rule name \"%s\"", r.name);

    r.name_len = strlen(r.name);
    r.key_id_len = rl_keys_rule_id(&r, r.key_id);
    char text[64];
    snprintf(text, sizeof(text), "%lld/%lldms", (long long)r.count, (long long)r.period_ms);
    r.limit_text = vec_strdup(text);
    r.path_prefix = vec_strdup("/");
    rl_rule *rules = realloc(v->rules, (v->nrules + 1) * sizeof(*rules));
    if (r.limit_text == NULL || r.path_prefix == NULL || rules == NULL) {
        free(r.limit_text);
        free(r.path_prefix);
        if (rules != NULL)
            v->rules = rules;
        return vec_fail(p, "out of memory");
    }
    v->rules = rules;
    v->rules[v->nrules++] = r;
    return 0;
}

static int vec_parse_step(vec_parser *p, char **tok, int ntok)
{
    rl_vec *v = p->v;
    rl_vec_step s;
    size_t n = v->nrules;

    if (n == 0)
        return vec_fail(p, "step before any rule");
    /* step NOW COST -> 4 numbers per rule, "|" between tuples */
    if ((size_t)ntok != 4 + 4 * n + (n - 1) || strcmp(tok[3], "->") != 0)
        return vec_fail(p, "expected \"step NOW COST -> ALLOWED REMAINING RESET RETRY\" with "
                           "one tuple per rule (%zu), separated by \"|\"", n);
    memset(&s, 0, sizeof(s));
    s.line = p->line;
    if (vec_int(tok[1], &s.now_ms) < 0 || s.now_ms < 0)
        return vec_fail(p, "invalid now \"%s\": must be an integer >= 0", tok[1]);
    if (vec_int(tok[2], &s.cost) < 0 || s.cost < 1)
        return vec_fail(p, "invalid cost \"%s\": must be an integer >= 1", tok[2]);
    s.expect = calloc(n, sizeof(*s.expect));
    if (s.expect == NULL)
        return vec_fail(p, "out of memory");
    s.admitted = 1;
    for (size_t i = 0; i < n; i++) {
        char **t = tok + 4 + 5 * i;
        int64_t f[4];
        if (i > 0 && strcmp(t[-1], "|") != 0) {
            free(s.expect);
            return vec_fail(p, "expected \"|\" before the tuple of rule %zu, got \"%s\"", i,
                            t[-1]);
        }
        for (int j = 0; j < 4; j++) {
            if (vec_int(t[j], &f[j]) < 0 || f[j] < 0 || (j == 0 && f[j] > 1)) {
                free(s.expect);
                return vec_fail(p, "rule %zu: invalid value \"%s\"", i, t[j]);
            }
        }
        rl_rule_result *e = &s.expect[i];
        e->rule = &v->rules[i];
        e->allowed = (int)f[0];
        e->limit = v->rules[i].count;
        e->window_ms = v->rules[i].period_ms;
        e->remaining = f[1];
        e->reset_ms = f[2];
        e->retry_after_ms = f[3];
        s.admitted &= e->allowed;
    }
    if (v->nsteps == p->cap_steps) {
        size_t cap = p->cap_steps ? 2 * p->cap_steps : 32;
        rl_vec_step *steps = realloc(v->steps, cap * sizeof(*steps));
        if (steps == NULL) {
            free(s.expect);
            return vec_fail(p, "out of memory");
        }
        v->steps = steps;
        p->cap_steps = cap;
    }
    v->steps[v->nsteps++] = s;
    return 0;
}

static const char *vec_base_name(const char *path, size_t *len)
{
    const char *b = strrchr(path, '/');
    b = b != NULL ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".vec") == 0)
        n -= 4;
    *len = n;
    return b;
}

int rl_vec_parse(const char *text, const char *path, rl_vec *out, char *err, size_t errlen)
{
    vec_parser p = { .v = out, .path = path, .line = 0, .err = err, .errlen = errlen };
    size_t blen;
    const char *base = vec_base_name(path, &blen);
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->path = vec_strdup(path);
    out->name = malloc(blen + 1);
    if (out->path == NULL || out->name == NULL) {
        rl_vec_free(out);
        return vec_fail(&p, "out of memory");
    }
    memcpy(out->name, base, blen);
    out->name[blen] = '\0';

    for (const char *ln = text; rc == 0 && *ln != '\0';) {
        const char *nl = strchr(ln, '\n');
        size_t len = nl != NULL ? (size_t)(nl - ln) : strlen(ln);
        char buf[4096];
        char *tok[VEC_MAX_TOKENS + 1];
        int ntok = 0;

        p.line++;
        if (len >= sizeof(buf)) {
            rc = vec_fail(&p, "line longer than %zu bytes", sizeof(buf) - 1);
            break;
        }
        memcpy(buf, ln, len);
        buf[len] = '\0';
        ln = nl != NULL ? nl + 1 : ln + len;

        char *hash = strchr(buf, '#');
        if (hash != NULL)
            *hash = '\0';
        for (char *save = NULL, *t = strtok_r(buf, " \t\r", &save); t != NULL;
             t = strtok_r(NULL, " \t\r", &save)) {
            if (ntok == VEC_MAX_TOKENS) {
                rc = vec_fail(&p, "too many fields");
                break;
            }
            tok[ntok++] = t;
        }
        if (rc != 0 || ntok == 0)
            continue;
        if (strcmp(tok[0], "rule") == 0)
            rc = vec_parse_rule(&p, tok, ntok);
        else if (strcmp(tok[0], "step") == 0)
            rc = vec_parse_step(&p, tok, ntok);
        else
            rc = vec_fail(&p, "unknown directive \"%s\" (rule or step)", tok[0]);
    }
    if (rc == 0 && out->nsteps == 0)
        rc = vec_error(err, errlen, "%s: no steps", path);
    if (rc != 0)
        rl_vec_free(out);
    return rc;
}

int rl_vec_load(const char *path, rl_vec *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;

    memset(out, 0, sizeof(*out));
    if (f == NULL)
        return vec_error(err, errlen, "%s: %s", path, strerror(errno));
    for (;;) {
        if (cap - len < 4096) {
            char *t = realloc(text, cap + 65536);
            if (t == NULL) {
                free(text);
                fclose(f);
                return vec_error(err, errlen, "%s: out of memory", path);
            }
            text = t;
            cap += 65536;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return vec_error(err, errlen, "%s: read error", path);
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        free(text);
        return vec_error(err, errlen, "%s: NUL byte in file", path);
    }
    int rc = rl_vec_parse(text, path, out, err, errlen);
    free(text);
    return rc;
}

/* ---- running ---- */

long rl_vec_run(const rl_vec *v, const char *client, rl_vec_decide_fn decide, void *ud,
                char *err, size_t errlen)
{
    char keys[RL_MAX_MATCH][RL_KEY_MAX + 1];
    rl_item items[RL_MAX_MATCH];
    rl_rule_result res[RL_MAX_MATCH];

    if (client == NULL)
        client = v->name;
    for (size_t i = 0; i < v->nrules; i++) {
        int n = snprintf(keys[i], sizeof(keys[i]), "%s\x1f%s", v->rules[i].name, client);
        if (n < 0 || (size_t)n >= sizeof(keys[i]))
            return vec_error(err, errlen, "%s: key too long for client \"%s\"", v->path,
                             client);
    }
    for (size_t s = 0; s < v->nsteps; s++) {
        const rl_vec_step *st = &v->steps[s];
        memset(res, 0xAB, sizeof(res)); /* a field the backend forgets shows as garbage */
        for (size_t i = 0; i < v->nrules; i++)
            items[i] = (rl_item){ .rule = &v->rules[i], .client = client, .key = keys[i],
                                  .keylen = strlen(keys[i]), .cost = st->cost,
                                  .res = &res[i] };
        int r = decide(ud, items, v->nrules, st->now_ms);
        if (r < 0)
            return vec_error(err, errlen, "%s:%d: decide failed", v->path, st->line);
        if (r != st->admitted)
            return vec_error(err, errlen, "%s:%d: step %lld %lld: request %s, "
                             "expected %s", v->path, st->line, (long long)st->now_ms,
                             (long long)st->cost, r == 1 ? "admitted" : r == 0 ? "refused" :
                             "?", st->admitted ? "admitted" : "refused");
        for (size_t i = 0; i < v->nrules; i++) {
            const rl_rule_result *e = &st->expect[i], *g = &res[i];
            const struct {
                const char *field;
                int64_t want, got;
            } f[] = {
                { "allowed", e->allowed, g->allowed },
                { "remaining", e->remaining, g->remaining },
                { "reset_ms", e->reset_ms, g->reset_ms },
                { "retry_after_ms", e->retry_after_ms, g->retry_after_ms },
                { "limit", e->limit, g->limit },
                { "window_ms", e->window_ms, g->window_ms },
            };
            if (g->rule != e->rule)
                return vec_error(err, errlen, "%s:%d: rule %s: result names another "
                                 "rule", v->path, st->line, v->rules[i].name);
            for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
                if (f[j].want != f[j].got)
                    return vec_error(err, errlen, "%s:%d: step %lld %lld: rule %s "
                                     "(%s): %s: expected %lld, got %lld", v->path, st->line,
                                     (long long)st->now_ms, (long long)st->cost,
                                     v->rules[i].name, rl_vec_algo_name(v->rules[i].algo),
                                     f[j].field, (long long)f[j].want, (long long)f[j].got);
        }
    }
    return (long)v->nsteps;
}

/* ---- files ---- */

static int vec_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void rl_vec_list_free(char **paths, size_t n)
{
    if (paths == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

int rl_vec_list(const char *dir, char ***paths, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    char **list = NULL;
    size_t len = 0;
    struct dirent *de;

    *paths = NULL;
    *n = 0;
    if (d == NULL)
        return vec_error(err, errlen, "%s: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl <= 4 || de->d_name[0] == '.' || strcmp(de->d_name + nl - 4, ".vec") != 0)
            continue;
        char **l = realloc(list, (len + 1) * sizeof(*l));
        char *pth = malloc(strlen(dir) + 1 + nl + 1);
        if (l != NULL)
            list = l;
        if (l == NULL || pth == NULL) {
            free(pth);
            closedir(d);
            rl_vec_list_free(list, len);
            return vec_error(err, errlen, "%s: out of memory", dir);
        }
        sprintf(pth, "%s/%s", dir, de->d_name);
        list[len++] = pth;
    }
    closedir(d);
    if (len > 0)
        qsort(list, len, sizeof(*list), vec_cmp);
    *paths = list;
    *n = len;
    return 0;
}

const char *rl_vec_dir(void)
{
    static char buf[4096];
    const char *base = getenv("RL_TEST_DATA");
    snprintf(buf, sizeof(buf), "%s/vectors", base != NULL && *base ? base : "tests/data");
    return buf;
}
