/* path.c -- the canonical request path: what every rule and admin endpoint is matched on
 *
 * A web server routes the decoded, normalised path, not the bytes of REQUEST_URI: lighttpd
 * and Apache both decode %XX, merge repeated slashes and remove dot segments before they map
 * a path to a file or a handler. A rule matched on the raw target could be stepped around by
 * any alias the server serves as the same resource (//login, /./login, /%6cogin, ...), so
 * the core matches on this form instead (policy in ratelimit.h, rl_path_canon).
 *
 * Two passes over one caller-supplied buffer of RL_PATH_MAX bytes, no allocation:
 *   1. decode: the path part of the target (query and fragment cut first, raw) is copied
 *      into out with every %XX decoded; %2F, %00, control bytes and invalid escapes stop it.
 *      Decoding only shortens, so a path part under RL_PATH_MAX bytes always fits.
 *   2. normalise in place: segments are read at r and written at w with w <= r (a kept
 *      segment is moved left, a ".." drops the last written one), so the buffer never needs
 *      more room than the decoded path had.
 * Invariant after pass 2: out starts with '/', holds no "//", no "." or ".." segment.
 */
#include "fmacros.h"

#include <string.h>

#include "ratelimit.h"

static int path_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Skips "scheme://authority" of an absolute-form target (RFC 9112 3.2.2), which Apache passes
 * in REQUEST_URI as the client sent it. Returns where the path starts, or NULL when target
 * is neither origin- nor absolute-form. */
static const char *path_skip_absolute(const char *t)
{
    const char *p = t;

    if (*p == '/')
        return p;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return NULL;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return NULL;
    p += 3;
    return p + strcspn(p, "/?#");
}

/* Pass 1: the decoded path part of src[0..n) into out; sets *outlen. */
static rl_path_status path_decode(const char *src, size_t n, unsigned flags, char *out,
                                  size_t *outlen)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%' && !(flags & RL_PATH_DECODED)) {
            if (n - i < 3 || path_hex((unsigned char)src[i + 1]) < 0 ||
                path_hex((unsigned char)src[i + 2]) < 0)
                return RL_PATH_BAD_ESCAPE;
            c = (unsigned char)(path_hex((unsigned char)src[i + 1]) * 16 +
                                path_hex((unsigned char)src[i + 2]));
            i += 2;
            if (c == '\0')
                return RL_PATH_NUL;
            if (c == '/')
                return RL_PATH_ENCODED_SLASH;
        }
        if (c < 0x20 || c == 0x7f)
            return RL_PATH_CONTROL;
        out[w++] = (char)c;
    }
    *outlen = w;
    return RL_PATH_OK;
}

/* Pass 2: merges slashes and removes dot segments of out[0..n) in place; returns the new
 * length. out[0] is '/'. */
static size_t path_normalise(char *out, size_t n)
{
    size_t r = 0, w = 0; /* out[0..w) is "" (the root) or "/seg/.../seg", no trailing '/' */
    int trailing = 0;    /* the path ends in '/' (or in a dot segment, which means the same) */

    while (r < n) {
        while (r < n && out[r] == '/')
            r++;
        if (r == n) {
            trailing = 1;
            break;
        }
        size_t s = r;
        while (r < n && out[r] != '/')
            r++;
        size_t len = r - s;
        trailing = 0;
        if (len == 1 && out[s] == '.') {
            trailing = 1;
            continue;
        }
        if (len == 2 && out[s] == '.' && out[s + 1] == '.') {
            while (w > 0 && out[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* the '/' before the dropped segment */
            trailing = 1;
            continue;
        }
        out[w++] = '/';
        memmove(out + w, out + s, len); /* w <= s: the segment moves left or stays */
        w += len;
    }
    if (w == 0 || trailing)
        out[w++] = '/';
    out[w] = '\0';
    return w;
}

rl_path_status rl_path_canon(const char *target, unsigned flags, char *out, size_t *outlen)
{
    const char *p = target != NULL && target[0] != '\0' ? target : "/";
    size_t n, len = 0;
    rl_path_status st;

    out[0] = '\0';
    if (outlen != NULL)
        *outlen = 0;
    if (flags & RL_PATH_DECODED ? p[0] != '/' : (p = path_skip_absolute(p)) == NULL)
        return RL_PATH_NOT_ABSOLUTE;
    n = flags & RL_PATH_DECODED ? strlen(p) : strcspn(p, "?#");
    if (n >= RL_PATH_MAX)
        return RL_PATH_TOO_LONG;
    if (n == 0) { /* "http://host" or "http://host?q": the root */
        p = "/";
        n = 1;
    }
    st = path_decode(p, n, flags, out, &len);
    if (st != RL_PATH_OK) {
        out[0] = '\0';
        return st;
    }
    len = path_normalise(out, len);
    if (outlen != NULL)
        *outlen = len;
    return RL_PATH_OK;
}

const char *rl_path_strerror(rl_path_status st)
{
    switch (st) {
    case RL_PATH_OK: return "canonical";
    case RL_PATH_TOO_LONG: return "path too long";
    case RL_PATH_BAD_ESCAPE: return "invalid percent-escape in the path";
    case RL_PATH_ENCODED_SLASH: return "encoded slash (%2F) in the path";
    case RL_PATH_NUL: return "encoded NUL (%00) in the path";
    case RL_PATH_CONTROL: return "control byte in the path";
    case RL_PATH_NOT_ABSOLUTE: return "the request target is not an absolute path";
    default: return "invalid path";
    }
}

int rl_path_http_status(rl_path_status st)
{
    return st == RL_PATH_TOO_LONG ? 414 : 400;
}
