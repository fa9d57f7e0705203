/* proxy_parse.c -- the backend's HTTP/1.1 response, parsed as its bytes arrive (see
 * proxy_parse.h)
 *
 * Invariants: line[0..line_len) is the start of a line whose end has not arrived (line_len is 0
 * between lines, and always while a body's bytes are counted down); left counts the bytes of a
 * Content-Length body or of the current chunk still to come; a complete line found whole in the
 * caller's buffer is parsed there, without being copied.
 */
#include "../core/fmacros.h"

#include "proxy_parse.h"

#include <string.h>
#include <strings.h>

#include "http.h"

enum {
    PS_STATUS,     /* the status line of an answer */
    PS_HEADER,     /* its header lines, until the blank one */
    PS_BODY_LEN,   /* left bytes of a Content-Length body */
    PS_CHUNK_SIZE, /* a chunk-size line */
    PS_CHUNK_DATA, /* left bytes of a chunk */
    PS_CHUNK_END,  /* the line end after a chunk's data */
    PS_TRAILER,    /* trailer lines, until the blank one */
    PS_CLOSE,      /* body bytes until the connection closes */
    PS_DONE,
    PS_BAD,
};

static void proxy_parse_answer(proxy_parse *p)
{
    p->state = PS_STATUS;
    p->status = 0;
    p->chunked = 0;
    p->until_close = 0;
    p->transfer_encoding = 0;
    p->length = -1;
    p->left = 0;
    p->line_len = 0;
}

void proxy_parse_start(proxy_parse *p, int head_request)
{
    proxy_parse_answer(p);
    p->head_bytes = 0;
    p->head_request = head_request;
    p->close = 0;
    p->touched = 0;
    p->why = NULL;
}

int proxy_parse_done(const proxy_parse *p)
{
    return p->state == PS_DONE;
}

int proxy_parse_untouched(const proxy_parse *p)
{
    return !p->touched;
}

int proxy_parse_eof(proxy_parse *p)
{
    if (p->state == PS_CLOSE)
        p->state = PS_DONE;
    return p->state == PS_DONE;
}

static long proxy_parse_bad(proxy_parse *p, const char *why)
{
    p->state = PS_BAD;
    p->why = why;
    p->close = 1;
    return -1;
}

/* The length of s[0..n) without its line end (LF or CRLF) and trailing blanks. */
static size_t proxy_trim(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

/* "HTTP/1.x NNN reason". Returns 0, or -1 (p->why). */
static int proxy_parse_status(proxy_parse *p, const char *s, size_t n)
{
    int st = 0;

    n = proxy_trim(s, n);
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
        (n > 12 && s[12] != ' ')) {
        p->why = "the backend's answer is not HTTP/1.x";
        return -1;
    }
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') {
            p->why = "the backend's status line has no status";
            return -1;
        }
        st = st * 10 + (s[i] - '0');
    }
    if (st < 100 || st > 599) { /* RFC 9110 15: the others are invalid */
        p->why = "the backend's status is not in 100-599";
        return -1;
    }
    if (st == 101) { /* an upgrade was never asked for: what follows is not HTTP */
        p->why = "the backend switched protocols unasked (101)";
        return -1;
    }
    p->status = st;
    if (s[7] == '0')
        p->close = 1; /* HTTP/1.0: no keep-alive asked for, none assumed */
    return 0;
}

int proxy_has_token(const char *v, size_t n, const char *t, int last)
{
    size_t tl = strlen(t), i = 0;
    int found = 0;

    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        found = end - start == tl && strncasecmp(v + start, t, tl) == 0;
        if (found && !last)
            return 1;
    }
    return found;
}

/* A header line: "name:value", the name a token. A line without a colon, a name with a blank
 * before its colon ("Content-Length : 5") or an obsolete folded line would be read one way
 * here and maybe another by the web server: a way to smuggle framing, refused (RFC 9112 5.1,
 * 5.2 allow a proxy to answer 502). Returns the name's length, or 0. */
static size_t proxy_field_name(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && rl_http_tchar((unsigned char)s[i]))
        i++;
    return i > 0 && i < n && s[i] == ':' ? i : 0;
}

/* A header line of an answer: checked (proxy_field_name); for a final answer, notes what
 * frames its body. Returns 0, or -1 (p->why). */
static int proxy_parse_field(proxy_parse *p, const char *s, size_t n)
{
    size_t name = proxy_field_name(s, n), vn;
    const char *v;

    if (name == 0) {
        p->why = s[0] == ' ' || s[0] == '\t' ? "the backend's head has a folded line"
                                             : "the backend's head has a line that is no header";
        return -1;
    }
    if (p->status < 200)
        return 0; /* an interim answer's: dropped */
    v = s + name + 1;
    vn = proxy_trim(v, n - name - 1);
    while (vn > 0 && (*v == ' ' || *v == '\t'))
        v++, vn--;
    if (name == 14 && strncasecmp(s, "Content-Length", 14) == 0) {
        uint64_t len = 0;
        if (vn == 0 || vn > 18) {
            p->why = "the backend's Content-Length is not a length";
            return -1;
        }
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9') {
                p->why = "the backend's Content-Length is not a length";
                return -1;
            }
            len = len * 10 + (uint64_t)(v[i] - '0');
        }
        if (p->length >= 0 && (uint64_t)p->length != len) {
            p->why = "the backend sent two different Content-Lengths";
            return -1;
        }
        p->length = (int64_t)len;
    } else if (name == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0) {
        /* The last header's last coding decides (RFC 9112 6.3). */
        p->transfer_encoding = 1;
        p->chunked = proxy_has_token(v, vn, "chunked", 1);
        p->until_close = !p->chunked;
    } else if (name == 10 && strncasecmp(s, "Connection", 10) == 0) {
        if (proxy_has_token(v, vn, "close", 0))
            p->close = 1;
    }
    return 0;
}

/* The blank line after a head: what comes next. */
static void proxy_parse_head_end(proxy_parse *p)
{
    if (p->status < 200) { /* interim: another answer follows */
        proxy_parse_answer(p);
        return;
    }
    p->head_bytes = 0;
    /* Transfer-Encoding overrides Content-Length; both is a smuggling attempt or a broken
     * backend: the answer is read as the coding says, the connection not used again (RFC 9112
     * 6.1), and the relay drops the Content-Length. */
    if (p->transfer_encoding && p->length >= 0)
        p->close = 1;
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->state = PS_DONE;
    } else if (p->chunked) {
        p->state = PS_CHUNK_SIZE;
    } else if (p->until_close || p->length < 0) {
        p->until_close = 1;
        p->close = 1;
        p->state = PS_CLOSE;
    } else {
        p->left = (uint64_t)p->length;
        p->state = p->left > 0 ? PS_BODY_LEN : PS_DONE;
    }
}

/* "1a2b[;ext]". Returns 0, or -1 (p->why). */
static int proxy_parse_chunk_size(proxy_parse *p, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;

    n = proxy_trim(s, n);
    for (; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                                             : -1;
        if (d < 0)
            break;
        if (i >= 15) {
            p->why = "a chunk of the backend's answer is too large";
            return -1;
        }
        size = size * 16 + (uint64_t)d;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == 0 || (i < n && s[i] != ';')) {
        p->why = "the backend's chunked answer has a bad chunk size";
        return -1;
    }
    p->left = size;
    p->state = size > 0 ? PS_CHUNK_DATA : PS_TRAILER;
    return 0;
}

/* One complete line s[0..n) (line end included) in a state that reads lines. */
static long proxy_parse_line(proxy_parse *p, const char *s, size_t n, const proxy_parse_cb *cb)
{
    int blank = proxy_trim(s, n) == 0 && !(n > 0 && (s[0] == ' ' || s[0] == '\t'));

    /* A NUL would cut a head line short wherever it is read as a string (libcurl refused it
     * too), a bare CR might end it for the web server (RFC 9112 2.2), and no other control
     * byte but HTAB belongs in a field (RFC 9110 5.5): never passed on. */
    if (p->state == PS_STATUS || p->state == PS_HEADER || p->state == PS_TRAILER) {
        for (size_t i = 0; i + 1 < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x20 && c != 0x7f)
                continue;
            if (c == '\0')
                return proxy_parse_bad(p, "the backend's answer has a NUL byte in its head");
            if (c == '\r' && i + 2 != n)
                return proxy_parse_bad(p, "the backend's answer has a bare CR in its head");
            if (c != '\t' && c != '\r')
                return proxy_parse_bad(p, "the backend's answer has a control byte in its head");
        }
    }
    switch (p->state) {
    case PS_STATUS:
        if (proxy_parse_status(p, s, n) != 0)
            return proxy_parse_bad(p, p->why);
        p->state = PS_HEADER;
        return cb->header(cb->ud, s, n) != 0 ? -2 : 0;
    case PS_HEADER:
        if (!blank && proxy_parse_field(p, s, n) != 0)
            return proxy_parse_bad(p, p->why);
        if (cb->header(cb->ud, s, n) != 0)
            return -2;
        if (blank)
            proxy_parse_head_end(p);
        return 0;
    case PS_CHUNK_SIZE:
        return proxy_parse_chunk_size(p, s, n) != 0 ? proxy_parse_bad(p, p->why) : 0;
    case PS_CHUNK_END:
        if (!blank)
            return proxy_parse_bad(p, "a chunk of the backend's answer does not end its line");
        p->state = PS_CHUNK_SIZE;
        return 0;
    case PS_TRAILER:
        if (blank)
            p->state = PS_DONE;
        else if (proxy_field_name(s, n) == 0)
            return proxy_parse_bad(p, "the backend's trailer has a line that is no header");
        return 0;
    default: return proxy_parse_bad(p, "the backend's answer cannot be parsed");
    }
}

long proxy_parse_feed(proxy_parse *p, const char *buf, size_t n, const proxy_parse_cb *cb)
{
    size_t at = 0;

    if (n > 0 && p->state != PS_DONE)
        p->touched = 1;
    while (at < n) {
        const char *s = buf + at;
        size_t avail = n - at;

        if (p->state == PS_DONE)
            return (long)at;
        if (p->state == PS_BAD)
            return -1;
        if (p->state == PS_BODY_LEN || p->state == PS_CHUNK_DATA || p->state == PS_CLOSE) {
            size_t k = avail;
            if (p->state != PS_CLOSE && p->left < k)
                k = (size_t)p->left;
            if (cb->body(cb->ud, s, k) != 0)
                return -2;
            at += k;
            if (p->state != PS_CLOSE && (p->left -= k) == 0)
                p->state = p->state == PS_BODY_LEN ? PS_DONE : PS_CHUNK_END;
            continue;
        }
        /* A line: whole in buf, or pieced together in p->line. */
        const char *nl = memchr(s, '\n', avail);
        size_t k = nl != NULL ? (size_t)(nl - s) + 1 : avail;
        if (p->line_len + k > sizeof p->line ||
            ((p->state == PS_STATUS || p->state == PS_HEADER || p->state == PS_TRAILER) &&
             (p->head_bytes += k) > sizeof p->line))
            return proxy_parse_bad(p, "the backend's answer has a line or head that is too long");
        at += k;
        if (nl == NULL) {
            memcpy(p->line + p->line_len, s, k);
            p->line_len += k;
            continue;
        }
        long rc;
        if (p->line_len == 0) {
            rc = proxy_parse_line(p, s, k, cb);
        } else {
            size_t len = p->line_len + k;
            memcpy(p->line + p->line_len, s, k);
            p->line_len = 0;
            rc = proxy_parse_line(p, p->line, len, cb);
        }
        if (rc != 0)
            return rc;
    }
    return (long)at;
}
