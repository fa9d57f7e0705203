/* identity.h -- who is asking: the client address behind trusted proxies (internal) */
#ifndef RL_IDENTITY_H
#define RL_IDENTITY_H

#include <stdint.h>

#include "cidr.h"
#include "config_types.h"

#define RL_IDENTITY_HEADER_MAX 8192 /* a longer forwarded header is ignored (peer is used) */
#define RL_IDENTITY_HOPS_MAX 64     /* hops examined, from the right */

/* Finds the client address of a request whose peer is `remote` (REMOTE_ADDR text; an IPv6
 * zone "%eth0" is ignored) and whose forwarded header (ic->header) is `fwd` (NULL when
 * absent). Writes the client's full address into addr (for access lists) and its key text
 * into text: inet_ntop of the address, IPv6 masked to ic->ipv6_prefix, IPv4-mapped shown as
 * IPv4. Returns 0, or -1 when remote is not an IP address. */
int rl_identity_resolve(const rl_identity_config *ic, const char *remote, const char *fwd,
                        uint8_t addr[16], char text[RL_ADDR_TEXT_MAX]);

/* The lowercase name of the header ic->header designates. */
const char *rl_identity_header_name(const rl_identity_config *ic);

#endif
