/* redis_wire.c -- the decision command in the wire format, and the check of its reply
 *
 * The request path allocates nothing of its own (hiredis still copies the command into its
 * output buffer and allocates the reply): the command is written in the wire format (RESP)
 * straight into a buffer sized at rl_redis_new -- keys by memcpy, numbers by a small integer
 * formatter, no printf -- and handed to hiredis whole (redisAppendFormattedCommand), so hiredis
 * does not format argument by argument either. Its head (argument count, FCALL and the
 * function's name, or EVALSHA and the SHA1) goes in front of the built arguments just before
 * sending, since the connection (re)loads the script, and learns which, after they are built.
 *
 *
 * The reply is checked against the only shapes the script can produce before anything is
 * taken from it (rl_redis_take_reply, redis_reply.h: the fuzz target feeds it any bytes).
 */
#include "fmacros.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "keys.h"
#include "num.h"
#include "redis_int.h"
#include "redis_reply.h"

/* Copies a server's text (an error reply) into dst for a message: bytes that are not
 * printable ASCII become \xHH, so a reply can never add a line or a control sequence to a log
 * (found by fuzz_redis_reply: an error reply may hold any byte but CR LF, even a bare LF).
 * Returns dst; cut short, never overflowing, when it does not fit. */
const char *rl_redis_printable(char *dst, size_t size, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 <= size; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (size > 0)
        dst[o < size ? o : size - 1] = '\0';
    return dst;
}

/* "$LEN\r\n": the head of a bulk string of len bytes. */
static char *redis_put_bulk_head(char *p, size_t len)
{
    *p++ = '$';
    p = rl_put_int(p, (int64_t)len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static char *redis_put_crlf(char *p)
{
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* A number argument: "$LEN\r\nDIGITS\r\n". */
static char *redis_put_num(char *p, int64_t v)
{
    char digits[REDIS_NUM_LEN];
    size_t len = (size_t)(rl_put_int(digits, v) - digits);

    p = redis_put_bulk_head(p, len);
    memcpy(p, digits, len);
    return redis_put_crlf(p + len);
}

/* Builds the command's arguments from numkeys on, in RESP, into r->cmd + REDIS_HEAD_MAX (the
 * head is left for redis_send). 0, or -1 for input no key can be made of. */
int rl_redis_build(rl_redis *r, const rl_item *items, size_t n, int64_t now_ms)
{
    const char *prefix = r->prefix;
    size_t plen = r->plen;
    char *p = r->cmd + REDIS_HEAD_MAX;
    size_t i;

    r->nargs = (int)(1 + n + 1 + 6 * n);
    p = redis_put_num(p, (int64_t)n);
    for (i = 0; i < n; i++) {
        size_t clen = strnlen(items[i].client, RL_KEY_MAX + 1);
        size_t nlen = items[i].rule->key_id_len;
        size_t len = rl_keys_redis_len(plen, clen, nlen);

        /* Policy: a client identity longer than RL_KEY_MAX is refused (the caller falls
         * back), never truncated: two long identities must not share a bucket. */
        if (clen > RL_KEY_MAX || len >= r->keycap) {
            rl_redis_seterr(r, "redis: key for client \"%.64s...\" is too long", items[i].client);
            return -1;
        }
        p = redis_put_bulk_head(p, len);
        p = rl_keys_redis(p, prefix, plen, items[i].client, clen, items[i].rule->key_id, nlen);
        p = redis_put_crlf(p);
    }
    p = redis_put_num(p, now_ms < 0 ? -1 : now_ms);
    for (i = 0; i < n; i++) {
        const rl_rule *rule = items[i].rule;
        int64_t max_units = rule->burst > rule->count ? rule->burst : rule->count;
        p = redis_put_num(p, (int64_t)rule->algo);
        p = redis_put_num(p, rule->count);
        p = redis_put_num(p, rule->period_ms);
        p = redis_put_num(p, rule->burst);
        /* A cost above the burst (GCRA) or count (windows) is refused with the same results
         * whatever its size; clamping it keeps cost*period exact in Lua's doubles. */
        p = redis_put_num(p, items[i].cost > max_units + 1 ? max_units + 1 : items[i].cost);
        p = redis_put_num(p, rule->dry_run ? 1 : 0);
    }
    r->cmdlen = (size_t)(p - r->cmd) - REDIS_HEAD_MAX;
    return 0;
}

/* Puts the command's head -- "*ARGC", then FCALL and the function's name or EVALSHA and the
 * SHA1, as the connection runs the script -- just before the built arguments, at
 * r->cmd + REDIS_HEAD_MAX - (the returned length). */
size_t rl_redis_put_head(rl_redis *r)
{
    char head[REDIS_HEAD_MAX], *p = head;
    size_t hlen;

    *p++ = '*';
    p = rl_put_int(p, 2 + r->nargs);
    p = redis_put_crlf(p);
    if (r->fcall) {
        memcpy(p, REDIS_FCALL_HEAD, sizeof(REDIS_FCALL_HEAD) - 1);
        p += sizeof(REDIS_FCALL_HEAD) - 1;
        memcpy(p, rl_redis_function, RL_REDIS_FUNCTION_LEN);
        p += RL_REDIS_FUNCTION_LEN;
    } else {
        memcpy(p, REDIS_EVALSHA_HEAD, sizeof(REDIS_EVALSHA_HEAD) - 1);
        p += sizeof(REDIS_EVALSHA_HEAD) - 1;
        memcpy(p, r->sha, REDIS_SHA_LEN);
        p += REDIS_SHA_LEN;
    }
    p = redis_put_crlf(p);
    hlen = (size_t)(p - head);
    memcpy(r->cmd + REDIS_HEAD_MAX - hlen, head, hlen);
    return hlen;
}

int rl_redis_take_reply(const redisReply *reply, rl_item *items, size_t n, int64_t *now_ms,
                        const char *where, char *err, size_t errsize)
{
    int all = 1;
    size_t i, j;

    if (reply->type == REDIS_REPLY_ERROR) {
        char shown[256];
        snprintf(err, errsize, "redis %s: script failed: %s", where,
                 rl_redis_printable(shown, sizeof shown, reply->str, reply->len));
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 * n + 1) {
        snprintf(err, errsize, "redis %s: script: expected an array of %zu integers (type %d)",
                 where, 4 * n + 1, reply->type);
        return -1;
    }
    for (j = 0; j < 4 * n + 1; j++) {
        const redisReply *e = reply->element[j];
        if (e == NULL || e->type != REDIS_REPLY_INTEGER || e->integer < 0 ||
            e->integer > REDIS_VALUE_MAX) {
            snprintf(err, errsize, "redis %s: script: element %zu is not an integer in range",
                     where, j);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 4 * i;
        const rl_rule *rule = items[i].rule;
        long long allowed = e[0]->integer, remaining = e[1]->integer;
        long long reset = e[2]->integer, retry = e[3]->integer;
        long long most = rule->algo == RL_ALGO_GCRA ? rule->burst : rule->count;

        /* The shapes the algorithms can produce: admitted means no wait, refused a wait >= 1
         * that is also the reset; never more left than the burst (GCRA) or count (windows). */
        if (allowed > 1 || remaining > most ||
            (allowed ? retry != 0 : retry < 1 || reset != retry)) {
            snprintf(err, errsize, "redis %s: script: inconsistent result for rule \"%s\"", where,
                     rule->name);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 4 * i;
        rl_rule_result *res = items[i].res;

        res->rule = items[i].rule;
        res->allowed = (int)e[0]->integer;
        res->limit = items[i].rule->count;
        res->window_ms = items[i].rule->period_ms;
        res->remaining = e[1]->integer;
        res->reset_ms = e[2]->integer;
        res->retry_after_ms = e[3]->integer;
        all &= res->allowed || items[i].rule->dry_run;
    }
    *now_ms = reply->element[4 * n]->integer;
    return all;
}
