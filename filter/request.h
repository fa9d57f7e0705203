/* request.h -- what a request asks, copied out of the web server's parameters
 *
 * libfcgi keeps the parameters in storage that dies at the next FCGX_Accept_r/FCGX_Finish_r,
 * so the few the decision needs are copied into this fixed struct, each bounded. A request
 * whose client address is missing or could not be an address is refused (400), never decided
 * under a key the client could choose; a path longer than REQUEST_PATH_MAX is refused (414).
 */
#ifndef FILTER_REQUEST_H
#define FILTER_REQUEST_H

#define REQUEST_CLIENT_MAX 46   /* INET6_ADDRSTRLEN: the longest textual address + NUL */
#define REQUEST_METHOD_MAX 32
#define REQUEST_PATH_MAX 4096   /* bytes of the path + NUL */
#define REQUEST_REASON_MAX 256

typedef enum request_role {
    REQUEST_ROLE_RESPONDER = 0, /* also plain CGI, and any role we do not know */
    REQUEST_ROLE_AUTHORIZER,
} request_role;

typedef struct request {
    char client[REQUEST_CLIENT_MAX]; /* REMOTE_ADDR, a valid IPv4 or IPv6 address */
    char method[REQUEST_METHOD_MAX]; /* REQUEST_METHOD, "" when the server gave none */
    char path[REQUEST_PATH_MAX];     /* REQUEST_URI before '?', else SCRIPT_NAME+PATH_INFO,
                                        else "/" */
    request_role role;               /* from FCGI_ROLE */
    char reason[REQUEST_REASON_MAX]; /* why request_load refused it, for the log */
} request;

/* Fills req from params (a NULL-terminated "NAME=value" array: FCGX_Request.envp, or environ
 * in CGI mode; borrowed for the call). Returns 0, or the HTTP status to refuse the request
 * with (400 or 414) and req->reason set. */
int request_load(request *req, char **params);

#endif
