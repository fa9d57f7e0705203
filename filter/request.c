/* request.c -- copy the parameters a decision needs out of libfcgi's storage (see request.h) */
#include "../core/fmacros.h"

#include "request.h"

#include <arpa/inet.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* Copies src into dst of size bytes. Returns 0, or -1 when it does not fit (dst is then ""). */
static int request_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* A textual IPv4 or IPv6 address, optionally with an IPv6 zone ("fe80::1%eth0"). */
static int request_is_address(const char *s)
{
    unsigned char bin[sizeof(struct in6_addr)];
    char host[REQUEST_CLIENT_MAX];
    size_t n = strcspn(s, "%");

    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, bin) == 1)
        return s[n] == '\0'; /* no zone on IPv4 */
    return inet_pton(AF_INET6, host, bin) == 1;
}

static int request_load_client(request *req, const char *addr)
{
    char shown[64];

    if (addr == NULL || addr[0] == '\0') {
        snprintf(req->reason, sizeof req->reason, "no REMOTE_ADDR from the web server");
        return 400;
    }
    if (request_copy(req->client, sizeof req->client, addr) < 0) {
        snprintf(req->reason, sizeof req->reason,
                 "REMOTE_ADDR \"%s\" is longer (%zu bytes) than an address can be",
                 log_escape(shown, sizeof shown, addr), strlen(addr));
        return 400;
    }
    if (!request_is_address(req->client)) {
        snprintf(req->reason, sizeof req->reason, "REMOTE_ADDR \"%s\" is not an IP address",
                 log_escape(shown, sizeof shown, addr));
        req->client[0] = '\0';
        return 400;
    }
    return 0;
}

static int request_path_too_long(request *req, size_t len)
{
    snprintf(req->reason, sizeof req->reason, "request path of %zu bytes (at most %d)", len,
             REQUEST_PATH_MAX - 1);
    req->path[0] = '\0';
    return 414;
}

static int request_load_path(request *req, char **params)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", params);

    if (uri != NULL && uri[0] != '\0') {
        size_t n = strcspn(uri, "?");
        if (n >= sizeof req->path)
            return request_path_too_long(req, n);
        memcpy(req->path, uri, n);
        req->path[n] = '\0';
        return 0;
    }

    /* No REQUEST_URI (some CGI callers): rebuild the path from its two halves. */
    const char *script = FCGX_GetParam("SCRIPT_NAME", params);
    const char *info = FCGX_GetParam("PATH_INFO", params);
    size_t ns = script ? strlen(script) : 0, ni = info ? strlen(info) : 0;
    if (ns + ni == 0) {
        strcpy(req->path, "/"); /* nothing to go by: the rules for "/" apply */
        return 0;
    }
    if (ns + ni >= sizeof req->path)
        return request_path_too_long(req, ns + ni);
    if (ns)
        memcpy(req->path, script, ns);
    if (ni)
        memcpy(req->path + ns, info, ni);
    req->path[ns + ni] = '\0';
    return 0;
}

int request_load(request *req, char **params)
{
    char shown[64];
    int status;

    memset(req, 0, sizeof *req);
    const char *role = FCGX_GetParam("FCGI_ROLE", params);
    req->role = role != NULL && strcmp(role, "AUTHORIZER") == 0 ? REQUEST_ROLE_AUTHORIZER
                                                                 : REQUEST_ROLE_RESPONDER;
    if ((status = request_load_client(req, FCGX_GetParam("REMOTE_ADDR", params))) != 0)
        return status;

    const char *method = FCGX_GetParam("REQUEST_METHOD", params);
    if (method != NULL && request_copy(req->method, sizeof req->method, method) < 0) {
        snprintf(req->reason, sizeof req->reason, "REQUEST_METHOD \"%s\" is too long",
                 log_escape(shown, sizeof shown, method));
        return 400;
    }

    if ((status = request_load_path(req, params)) != 0)
        return status;

    return 0;
}
