/* rule.c -- which rules a request meets, and the key each one counts it under
 *
 * Matching reads only what config.c prepared: exact strings, a prefix, a regex compiled at
 * load, lowercase host names. Nothing is allocated and nothing is parsed but the request's
 * own Host and Cookie values. The path is the canonical one (path.c, rl_path_canon), made
 * once per request by the caller; the rule's own path and prefix were checked canonical at
 * load, so comparing bytes (ASCII case folded with path_case_insensitive) is enough.
 *
 * Key material and its digest: the format is keys.c's.
 */
#include "fmacros.h"

#include "rule.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "keys.h"

void rl_rule_derive(rl_rule *rule)
{
    rule->name_len = strlen(rule->name);
    rule->key_id_len = rl_keys_rule_id(rule, rule->key_id);
    rule->path_prefix_len = rule->path_prefix != NULL ? strlen(rule->path_prefix) : 0;
    rule->path_len = rule->path != NULL ? strlen(rule->path) : 0;
}

/* ASCII case folding only, whatever the locale: a path's bytes >= 0x80 compare as they are. */
static unsigned char rule_fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* 1 when path begins with want[0..n). */
static int rule_starts(const char *path, const char *want, size_t n, int nocase)
{
    if (!nocase)
        return strncmp(path, want, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '\0' ||
            rule_fold((unsigned char)path[i]) != rule_fold((unsigned char)want[i]))
            return 0;
    return 1;
}

/* An exact path matches the canonical path with or without one trailing '/': servers route
 * "/login/" to the handler of "/login" as often as not, and matching more is the safe side
 * of a limit. */
static int rule_exact(const rl_rule *rule, const char *path)
{
    const char *rest = path + rule->path_len;

    if (!rule_starts(path, rule->path, rule->path_len, rule->path_nocase))
        return 0;
    return rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0' && rule->path_len > 1);
}

static int rule_in_list(char *const *list, size_t n, const char *s, size_t len, int nocase)
{
    /* s holds no NUL in its len bytes, so a match of len bytes means list[i] has at least
     * that many, and its NUL right after says it has no more: no strlen per entry. */
    for (size_t i = 0; i < n; i++)
        if ((nocase ? strncasecmp(list[i], s, len) : strncmp(list[i], s, len)) == 0 &&
            list[i][len] == '\0')
            return 1;
    return 0;
}

int rl_rule_matches(const rl_rule *rule, const rl_request *req, const char *path)
{
    if (rule->path != NULL && !rule_exact(rule, path))
        return 0;
    if (rule->path_prefix != NULL &&
        !rule_starts(path, rule->path_prefix, rule->path_prefix_len, rule->path_nocase))
        return 0;
    if (rule->methods != NULL) {
        const char *m = req->method != NULL ? req->method : "";
        if (!rule_in_list(rule->methods, rule->nmethods, m, strlen(m), 0))
            return 0;
    }
    if (rule->hosts != NULL) {
        const char *h;
        size_t n = rl_http_host(req->host, &h);
        if (n == 0 || !rule_in_list(rule->hosts, rule->nhosts, h, n, 1))
            return 0;
    }
    if (rule->path_regex != NULL) {
        /* One process decides one request at a time (no threads), so the match data made
         * at load is reused; the context bounds the work (RL_REGEX_MATCH_LIMIT). */
        int rc = pcre2_match(rule->path_regex, (PCRE2_SPTR)path, PCRE2_ZERO_TERMINATED, 0, 0,
                             rule->path_regex_match, rule->path_regex_mctx);
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
            return RL_RULE_REGEX_LIMIT;
        if (rc < 0)
            return 0;
    }
    return 1;
}

/* The value of one key part, or NULL when missing. */
static const char *rule_part(const rl_key_part *part, const rl_request *req, const char *client,
                             size_t *len)
{
    const char *v;

    switch (part->kind) {
    case RL_KEY_HEADER:
        v = rl_http_header(req, part->name);
        if (v == NULL)
            return NULL;
        /* Header values are trimmed of the optional white space around them. */
        while (*v == ' ' || *v == '\t')
            v++;
        *len = strlen(v);
        while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
            (*len)--;
        return v;
    case RL_KEY_COOKIE:
        return rl_http_cookie(rl_http_header(req, "cookie"), part->name, &v, len) ? v : NULL;
    default: *len = strlen(client); return client;
    }
}

int rl_rule_key(const rl_rule *rule, const rl_request *req, const char *client, char *scratch,
                char *out)
{
    static const rl_key_part by_client = {RL_KEY_CLIENT, NULL};
    const rl_key_part *parts = rule->nkey > 0 ? rule->key : &by_client;
    size_t nparts = rule->nkey > 0 ? rule->nkey : 1;
    size_t total = 0;

    for (size_t i = 0; i < nparts; i++) {
        size_t len;
        const char *v = rule_part(&parts[i], req, client, &len);
        if (v == NULL || len == 0 || len > RL_KEY_VALUE_MAX)
            return -1;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)v[k] < 0x20 || v[k] == 0x7f)
                return -1;
        if (i > 0)
            scratch[total++] = RL_KEYS_PART_SEP;
        memcpy(scratch + total, v, len);
        total += len;
    }
    if (rl_keys_needs_digest(scratch, total)) {
        rl_keys_digest(scratch, total, out);
        return RL_KEYS_DIGEST_LEN;
    }
    memcpy(out, scratch, total);
    out[total] = '\0';
    return (int)total;
}
