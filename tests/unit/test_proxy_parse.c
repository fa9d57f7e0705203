/* test_proxy_parse.c -- the proxy's parser of the backend's answer (filter/proxy_parse.c): each
 * framing (Content-Length, chunked with extensions and trailers, until the close, none for
 * HEAD, 204, 304 and 1xx), keep-alive or close, and the answers it must refuse; every answer
 * fed whole and one byte at a time
 *
 * What the client and the web server see of it is shown by test_proxy_framing.sh; here, the
 * head lines and body bytes the parser hands on for byte streams written by hand.
 */
#include "fmacros.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../filter/proxy_parse.h"
#include "leakcheck.h"

TestSuite(proxy_parse, .fini = rl_test_leak_check);

typedef struct seen {
    char head[4096];
    size_t head_len;
    char body[4096];
    size_t body_len;
} seen;

static int on_header(void *ud, const char *line, size_t n)
{
    seen *s = ud;
    cr_assert_lt(s->head_len + n, sizeof s->head);
    memcpy(s->head + s->head_len, line, n);
    s->head_len += n;
    s->head[s->head_len] = '\0';
    return 0;
}

static int on_body(void *ud, const char *buf, size_t n)
{
    seen *s = ud;
    cr_assert_lt(s->body_len + n, sizeof s->body);
    memcpy(s->body + s->body_len, buf, n);
    s->body_len += n;
    s->body[s->body_len] = '\0';
    return 0;
}

/* Feeds text in pieces of step bytes. Returns the bytes taken in all, or -1 / -2 as the
 * parser said; p and s hold the rest. */
static long feed(proxy_parse *p, seen *s, const char *text, size_t step, int head_request)
{
    proxy_parse_cb cb = {on_header, on_body, s};
    size_t n = strlen(text), at = 0;

    memset(s, 0, sizeof *s);
    proxy_parse_start(p, head_request);
    while (at < n) {
        size_t k = n - at < step ? n - at : step;
        long used = proxy_parse_feed(p, text + at, k, &cb);
        if (used < 0)
            return used;
        at += (size_t)used;
        if ((size_t)used < k)
            break;
    }
    return (long)at;
}

/* The same answer, whole and byte by byte: the same result. */
static void both(const char *text, int head_request, long want_used, int want_done,
                 const char *want_body, int want_close)
{
    static proxy_parse p; /* large */
    seen s;

    for (size_t step = 1; step <= 4096; step *= 4096) {
        long used = feed(&p, &s, text, step, head_request);
        cr_expect_eq(used, want_used, "step %zu: %ld bytes taken, not %ld", step, used, want_used);
        cr_expect_eq(proxy_parse_done(&p), want_done, "step %zu: done %d", step,
                     proxy_parse_done(&p));
        cr_expect_str_eq(s.body, want_body, "step %zu", step);
        cr_expect_eq(p.close, want_close, "step %zu: close %d", step, p.close);
    }
}

Test(proxy_parse, content_length_body_and_keep_alive)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
    both(a, 0, (long)strlen(a), 1, "hello", 0);
}

Test(proxy_parse, head_lines_pass_as_they_came)
{
    static proxy_parse p;
    seen s;
    const char *a = "HTTP/1.1 404 Not Found\r\nX-A: b c\r\nContent-Length: 0\r\n\r\n";

    cr_expect_eq(feed(&p, &s, a, 1, 0), (long)strlen(a));
    cr_expect_str_eq(s.head, a);
    cr_expect_eq(p.status, 404);
    cr_expect(proxy_parse_done(&p));
}

Test(proxy_parse, bytes_after_the_answer_are_not_taken)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    both(a, 0, (long)strlen(a) - 17, 1, "ok", 0);
}

Test(proxy_parse, interim_answers_are_skipped)
{
    static proxy_parse p;
    seen s;
    const char *a = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew";

    both(a, 0, (long)strlen(a), 1, "new", 0);
    feed(&p, &s, a, 7, 0);
    cr_expect_eq(p.status, 201);
    cr_expect(strstr(s.head, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103") == s.head);
}

Test(proxy_parse, chunked_with_extensions_and_trailers)
{
    const char *a = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;name=value\r\nhello\r\n1A \r\n, abcdefghijklmnopqrstuvwx\r\n"
                    "0\r\nX-Trailer: t\r\n\r\n";
    both(a, 0, (long)strlen(a), 1, "hello, abcdefghijklmnopqrstuvwx", 0);
}

Test(proxy_parse, chunked_wins_over_content_length)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, "
                    "Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    const char *b = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
                    "2\r\nab\r\n0\r\n\r\n";
    /* Both framings: a smuggling attempt or a broken backend; the connection is not kept. */
    both(a, 0, (long)strlen(a), 1, "ab", 1);
    both(b, 0, (long)strlen(b), 1, "ab", 1);
}

Test(proxy_parse, bare_lf_line_ends)
{
    const char *a = "HTTP/1.1 200 OK\nContent-Length: 2\nX: y\tz \xe9\n\nok";
    const char *b = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n";
    both(a, 0, (long)strlen(a), 1, "ok", 0);
    both(b, 0, (long)strlen(b), 1, "ok", 0);
}

Test(proxy_parse, an_interim_flood_is_bounded)
{
    static proxy_parse p;
    static char a[PROXY_PARSE_LINE_MAX + 100];
    proxy_parse_cb cb = {on_header, on_body, NULL};
    const char *c = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t cl = strlen(c), at = 0;
    seen s;
    long r = 0;

    while (at + cl <= sizeof a) {
        memcpy(a + at, c, cl);
        at += cl;
    }
    proxy_parse_start(&p, 0);
    for (size_t i = 0; i + cl <= at && r >= 0; i += cl) {
        memset(&s, 0, sizeof s);
        cb.ud = &s;
        r = proxy_parse_feed(&p, a + i, cl, &cb);
    }
    cr_expect_eq(r, -1, "interim answers without end are refused at the head's bound");
    cr_expect(p.close);
}

Test(proxy_parse, body_until_close)
{
    static proxy_parse p;
    seen s;
    const char *a = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nall of it";
    const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n";

    both(a, 0, (long)strlen(a), 0, "all of it", 1);
    feed(&p, &s, a, 3, 0);
    cr_expect(proxy_parse_eof(&p));
    cr_expect(proxy_parse_done(&p));
    both(te, 0, (long)strlen(te), 0, "0\r\n\r\n", 1); /* not chunked last: raw until the close */
}

Test(proxy_parse, no_body_for_head_204_304)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    const char *b = "HTTP/1.1 204 No Content\r\n\r\n";
    const char *c = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";

    both(a, 1, (long)strlen(a), 1, "", 0);
    both(b, 0, (long)strlen(b), 1, "", 0);
    both(c, 0, (long)strlen(c), 1, "", 0);
}

Test(proxy_parse, close_when_the_backend_says_so)
{
    const char *a = "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx";
    const char *b = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";

    both(a, 0, (long)strlen(a), 1, "x", 1);
    both(b, 0, (long)strlen(b), 1, "x", 1);
}

Test(proxy_parse, a_cut_answer_is_not_complete)
{
    static proxy_parse p;
    seen s;

    proxy_parse_start(&p, 0);
    cr_expect(proxy_parse_untouched(&p));
    feed(&p, &s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 5, 0);
    cr_expect(!proxy_parse_untouched(&p));
    cr_expect(!proxy_parse_done(&p));
    cr_expect(!proxy_parse_eof(&p));
    feed(&p, &s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 5, 0);
    cr_expect(!proxy_parse_eof(&p));
    feed(&p, &s, "HTTP/1.1 200 OK\r\nContent-", 5, 0);
    cr_expect(!proxy_parse_eof(&p));
}

Test(proxy_parse, refused_answers)
{
    static const char *const bad[] = {
        "HELLO\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        "HTTP/1.1 600 Six\r\n\r\n",
        "HTTP/1.1 999 Nine\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\r\n  folded\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\rSet-Cookie: c\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\x0b" "c\r\n\r\n",
        "HTTP/1.1 200 O\x1bK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nHTTP/1.1 302 Found\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno trailer\r\n\r\n",
    };
    static proxy_parse p;
    seen s;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t step = 1; step <= 4096; step *= 4096) {
            cr_expect_eq(feed(&p, &s, bad[i], step, 0), -1, "#%zu step %zu taken", i, step);
            cr_expect(p.why != NULL && p.close, "#%zu says why and closes", i);
        }
    }
}

Test(proxy_parse, a_head_too_long_is_refused)
{
    static proxy_parse p;
    static char a[PROXY_PARSE_LINE_MAX + 100];
    proxy_parse_cb cb = {on_header, on_body, NULL};
    seen s;

    memset(&s, 0, sizeof s);
    cb.ud = &s;
    proxy_parse_start(&p, 0);
    cr_expect_eq(proxy_parse_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &cb), 17);
    memset(a, 'a', sizeof a);
    cb.header = NULL; /* must not be reached: the line is refused before it ends */
    cr_expect_eq(proxy_parse_feed(&p, a, sizeof a, &cb), -1);
    cr_expect(p.why != NULL);
}

Test(proxy_parse, a_nul_in_the_head_is_refused)
{
    static proxy_parse p;
    static const char a[] = "HTTP/1.1 200 OK\r\nX-A: b\0c\r\n\r\n";
    proxy_parse_cb cb = {on_header, on_body, NULL};
    seen s;

    for (size_t step = 1; step <= sizeof a; step += sizeof a - 1) {
        long r = 0;
        memset(&s, 0, sizeof s);
        cb.ud = &s;
        proxy_parse_start(&p, 0);
        for (size_t at = 0; at < sizeof a - 1 && r >= 0; at += step) {
            size_t k = sizeof a - 1 - at < step ? sizeof a - 1 - at : step;
            r = proxy_parse_feed(&p, a + at, k, &cb);
        }
        cr_expect_eq(r, -1, "step %zu", step);
        cr_expect(strstr(s.head, "X-A") == NULL, "the line was not passed on");
    }
}

static int stop(void *ud, const char *buf, size_t n)
{
    (void)ud, (void)buf, (void)n;
    return 1;
}

Test(proxy_parse, a_callback_stops_it)
{
    static proxy_parse p;
    proxy_parse_cb cb = {on_header, stop, NULL};
    seen s;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    memset(&s, 0, sizeof s);
    cb.ud = &s;
    proxy_parse_start(&p, 0);
    cr_expect_eq(proxy_parse_feed(&p, a, strlen(a), &cb), -2);
}
