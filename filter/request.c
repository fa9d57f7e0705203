/* request.c -- copy the parameters a decision needs out of the server loop's storage (see
 * request.h) */
#include "../core/fmacros.h"

#include "request.h"

#include <arpa/inet.h>
#include <ctype.h>
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

/* The canonical path (rl_path_canon) of target into req->path; 0, or the status to refuse
 * the request with (400, 414) and req->reason set. */
static int request_canon(request *req, const char *target, unsigned flags)
{
    char shown[64];
    rl_path_status st = rl_path_canon(target, flags, req->path, NULL);

    if (st == RL_PATH_OK)
        return 0;
    snprintf(req->reason, sizeof req->reason, "%s: \"%s\" (%zu bytes)", rl_path_strerror(st),
             log_escape(shown, sizeof shown, target), strlen(target));
    return rl_path_http_status(st);
}

/* Made canonical here, once per request: the admin endpoints and every rule (rl_decide is
 * told so by path_canonical) match this one form. */
static int request_load_path(request *req, const char *uri, const char *script, const char *info)
{
    if (uri != NULL && uri[0] != '\0')
        return request_canon(req, uri, 0);

    /* No REQUEST_URI (some CGI callers): rebuild the path from its two halves, which the web
     * server has decoded already (decoding them again would read "%2541" as "A"). */
    size_t ns = script ? strlen(script) : 0, ni = info ? strlen(info) : 0;
    if (ns + ni == 0) {
        strcpy(req->path, "/"); /* nothing to go by: the rules for "/" apply */
        return 0;
    }
    if (ns + ni >= sizeof req->raw) {
        snprintf(req->reason, sizeof req->reason, "%s: SCRIPT_NAME + PATH_INFO of %zu bytes",
                 rl_path_strerror(RL_PATH_TOO_LONG), ns + ni);
        return rl_path_http_status(RL_PATH_TOO_LONG);
    }
    if (ns)
        memcpy(req->raw, script, ns);
    if (ni)
        memcpy(req->raw + ns, info, ni);
    req->raw[ns + ni] = '\0';
    return request_canon(req, req->raw, RL_PATH_DECODED);
}

static void request_add_name(request *req, const char *name)
{
    request_header *h;
    size_t n = strlen(name);

    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return;
    if (req->nheaders == REQUEST_HEADERS_MAX || n + 5 >= REQUEST_PARAM_MAX)
        return; /* cannot happen: config.c bounds both */
    h = &req->headers[req->nheaders++];
    memcpy(h->name, name, n + 1);
    memcpy(h->param, "HTTP_", 5);
    for (size_t i = 0; i <= n; i++)
        h->param[5 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    h->param_len = n + 5;
}

void request_init(request *req, const rl_config *cfg)
{
    memset(req, 0, sizeof *req);
    const char *fwd = rl_config_forward_header(cfg);
    if (fwd != NULL)
        request_add_name(req, fwd);
    for (size_t i = 0; rl_config_key_header(cfg, i) != NULL; i++)
        request_add_name(req, rl_config_key_header(cfg, i));
}

const char *request_get_header(void *ud, const char *lowercase_name)
{
    const request *req = ud;

    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].present && strcmp(req->headers[i].name, lowercase_name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* The parameters a decision reads, found in one pass over params: the first of each, as
 * FCGX_GetParam would return it (which scans the whole array again for every name: 2,100
 * instructions per request under callgrind for the five it was asked, against about 600
 * for this pass). */
typedef struct request_found {
    const char *role, *addr, *method, *uri, *script, *info, *host;
    const char *header[REQUEST_HEADERS_MAX];
} request_found;

/* The value of entry e when its name is the n bytes of name, else NULL. */
static const char *request_param(const char *e, const char *name, size_t n)
{
    return strncmp(e, name, n) == 0 && e[n] == '=' ? e + n + 1 : NULL;
}

/* Sets *slot to the value of e when e is the parameter name (n bytes) and *slot is still
 * unset. Returns 1 when it did. */
static int request_take(const char *e, const char *name, size_t n, const char **slot)
{
    return *slot == NULL && (*slot = request_param(e, name, n)) != NULL;
}

#define REQUEST_TAKE(e, lit, slot) request_take((e), "" lit, sizeof(lit) - 1, &(slot))

static void request_scan(const request *req, char **params, request_found *f)
{
    memset(f, 0, sizeof *f);
    for (char **p = params; *p != NULL; p++) {
        const char *e = *p;
        switch (e[0]) {
        case 'F': REQUEST_TAKE(e, "FCGI_ROLE", f->role); break;
        case 'R':
            if (!REQUEST_TAKE(e, "REMOTE_ADDR", f->addr) &&
                !REQUEST_TAKE(e, "REQUEST_METHOD", f->method))
                REQUEST_TAKE(e, "REQUEST_URI", f->uri);
            break;
        case 'S': REQUEST_TAKE(e, "SCRIPT_NAME", f->script); break;
        case 'P': REQUEST_TAKE(e, "PATH_INFO", f->info); break;
        case 'H':
            if (strncmp(e, "HTTP_", 5) != 0)
                break;
            REQUEST_TAKE(e, "HTTP_HOST", f->host);
            /* Every one: a rule may read the Host, and two names may map to one parameter. */
            for (size_t i = 0; i < req->nheaders; i++)
                if (f->header[i] == NULL)
                    f->header[i] =
                        request_param(e, req->headers[i].param, req->headers[i].param_len);
            break;
        default: break;
        }
    }
}

/* Copies the configured headers and the Host; over-long ones are logged and left absent. */
static void request_load_headers(request *req, const request_found *f)
{
    const char *host = f->host;

    if (host != NULL && request_copy(req->host, sizeof req->host, host) < 0)
        log_warn("Host header of %zu bytes ignored (at most %d)", strlen(host),
                 REQUEST_HOST_MAX - 1);
    for (size_t i = 0; i < req->nheaders; i++) {
        request_header *h = &req->headers[i];
        const char *v = f->header[i];
        if (v == NULL)
            continue;
        if (request_copy(h->value, sizeof h->value, v) < 0) {
            log_warn("header %s of %zu bytes ignored (at most %d)", h->name, strlen(v),
                     REQUEST_HEADER_MAX);
            continue;
        }
        h->present = 1;
    }
}

int request_load(request *req, char **params)
{
    char shown[64];
    int status;
    request_found f;

    /* Everything but the header names request_init set up. */
    req->client[0] = req->method[0] = req->path[0] = req->host[0] = req->reason[0] = '\0';
    for (size_t i = 0; i < req->nheaders; i++) {
        req->headers[i].present = 0;
        req->headers[i].value[0] = '\0';
    }
    request_scan(req, params, &f);
    req->role = f.role != NULL && strcmp(f.role, "AUTHORIZER") == 0 ? REQUEST_ROLE_AUTHORIZER
                                                                    : REQUEST_ROLE_RESPONDER;
    if ((status = request_load_client(req, f.addr)) != 0)
        return status;

    if (f.method != NULL && request_copy(req->method, sizeof req->method, f.method) < 0) {
        snprintf(req->reason, sizeof req->reason, "REQUEST_METHOD \"%s\" is too long",
                 log_escape(shown, sizeof shown, f.method));
        return 400;
    }

    if ((status = request_load_path(req, f.uri, f.script, f.info)) != 0)
        return status;

    request_load_headers(req, &f);
    return 0;
}
