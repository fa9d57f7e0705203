/* request.h -- what a request asks, copied out of the web server's parameters
 *
 * The server loop keeps the parameters in storage it reuses for the next request (fcgi_conn.c),
 * so the few the decision needs are copied into this fixed struct, each bounded. A request
 * whose client address is missing or could not be an address is refused (400), never decided
 * under a key the client could choose. The path is made canonical here, once (rl_path_canon):
 * one the core refuses (%2F, %00, a bad escape, a control byte) is refused with 400, one of
 * REQUEST_PATH_MAX bytes or more (query excluded) with 414.
 *
 * Headers: only those the configuration reads are copied (the forwarded header, Cookie, and
 * every header a rule's key names), each from its CGI parameter HTTP_<NAME> (upper case, '-'
 * as '_'). The table of names is made once by request_init; a value longer than
 * REQUEST_HEADER_MAX, or a Host longer than REQUEST_HOST_MAX, is logged and treated as absent
 * (the core then falls back as it would for a missing header), never cut.
 */
#ifndef FILTER_REQUEST_H
#define FILTER_REQUEST_H

#include <stddef.h>

#include "ratelimit.h"

#define REQUEST_CLIENT_MAX 46   /* INET6_ADDRSTRLEN: the longest textual address + NUL */
#define REQUEST_METHOD_MAX 32
#define REQUEST_PATH_MAX RL_PATH_MAX /* bytes of the path (query excluded) + NUL */
#define REQUEST_REASON_MAX 256
#define REQUEST_HOST_MAX 256    /* bytes of the Host header + NUL */
#define REQUEST_HEADER_MAX 8192 /* bytes of one header value, NUL excluded */
#define REQUEST_PARAM_MAX 72    /* "HTTP_" + a 63-byte header name + NUL */
/* The forwarded header, Cookie, and the headers rules' keys read. */
#define REQUEST_HEADERS_MAX (RL_KEY_HEADERS_MAX + 2)

typedef struct request_header {
    char name[REQUEST_PARAM_MAX];  /* lowercase header name, as the core asks for it */
    char param[REQUEST_PARAM_MAX]; /* the CGI parameter: "HTTP_X_API_KEY" */
    size_t param_len;              /* strlen(param) */
    int present;                   /* this request carries it (and it fit) */
    char value[REQUEST_HEADER_MAX + 1];
} request_header;

typedef enum request_role {
    REQUEST_ROLE_RESPONDER = 0, /* also plain CGI, and any role we do not know */
    REQUEST_ROLE_AUTHORIZER,
} request_role;

typedef struct request {
    char client[REQUEST_CLIENT_MAX]; /* REMOTE_ADDR, a valid IPv4 or IPv6 address */
    char method[REQUEST_METHOD_MAX]; /* REQUEST_METHOD, "" when the server gave none */
    char path[REQUEST_PATH_MAX];     /* the canonical path (rl_path_canon) of REQUEST_URI,
                                        else of SCRIPT_NAME+PATH_INFO, else "/" */
    char raw[REQUEST_PATH_MAX];      /* scratch: SCRIPT_NAME+PATH_INFO joined */
    char host[REQUEST_HOST_MAX];     /* HTTP_HOST, "" when absent */
    request_role role;               /* from FCGI_ROLE */
    request_header headers[REQUEST_HEADERS_MAX]; /* names from request_init */
    size_t nheaders;
    char reason[REQUEST_REASON_MAX]; /* why request_load refused it, for the log */
} request;

/* Prepares req for cfg (borrowed for the call): the header names to copy. Once. */
void request_init(request *req, const rl_config *cfg);

/* rl_header_fn over a loaded request (ud = the request): its copy of the header, or NULL. */
const char *request_get_header(void *ud, const char *lowercase_name);

/* Fills req from params (a NULL-terminated "NAME=value" array: FCGX_Request.envp, or environ
 * in CGI mode; borrowed for the call). Returns 0, or the HTTP status to refuse the request
 * with (400 or 414) and req->reason set. */
int request_load(request *req, char **params);

#endif
