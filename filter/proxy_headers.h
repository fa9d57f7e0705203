/* proxy_headers.h -- header rules of the proxy, as pure string functions
 *
 * FastCGI/CGI carries request headers as parameters HTTP_FOO_BAR; the proxy rebuilds the name
 * "Foo-Bar". Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and are never
 * forwarded, either way: Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding,
 * Upgrade, and any header the Connection header names.
 */
#ifndef FILTER_PROXY_HEADERS_H
#define FILTER_PROXY_HEADERS_H

#include <stddef.h>

/* Writes the header name for parameter suffix p[0..n) ("FOO_BAR" -> "Foo-Bar") into name
 * (size bytes). Returns its length, or -1 when it does not fit or p holds a byte that cannot
 * be in a header name. */
int proxy_header_name(const char *p, size_t n, char *name, size_t size);

/* 1 when the header name name[0..n) is want (case-insensitive). */
int proxy_name_is(const char *name, size_t n, const char *want);

/* 1 when the header name[0..n) must not be forwarded; connection is the value of the
 * message's Connection header (NULL when absent). Case-insensitive. */
int proxy_hop_by_hop(const char *name, size_t n, const char *connection);

/* Writes the Forwarded element for one hop, RFC 7239: for=192.0.2.7;proto=http, an IPv6
 * address quoted and bracketed: for="[2001:db8::1]";proto=https. prev (NULL or "") is the
 * value the request already had, kept in front: "PREV, for=...". Returns the length, or -1
 * when it does not fit. */
int proxy_forwarded(char *buf, size_t size, const char *prev, const char *addr,
                    const char *proto);

/* 1 when value may go into a header line as is: no CR, LF or NUL. */
int proxy_header_value_ok(const char *value);

#endif
