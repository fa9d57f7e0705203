/* cidr.h -- IP addresses and address blocks, parsed once, matched without allocation
 * (internal)
 *
 * Every address is held in 16 bytes, IPv6 form; IPv4 a.b.c.d is the IPv4-mapped
 * ::ffff:a.b.c.d, so an IPv4 block matches the IPv4-mapped spelling of its addresses too.
 */
#ifndef RL_CIDR_H
#define RL_CIDR_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit_schema.h"

#define RL_ADDR_TEXT_MAX 46 /* INET6_ADDRSTRLEN: the longest textual address + NUL */
#define RL_CIDR_TEXT_MAX 64 /* longest block text accepted, NUL excluded */

/* Parses an IPv4 or IPv6 literal of exactly len bytes (no brackets, port or zone) into
 * addr. Returns 0, or -1 when it is not one. */
int rl_addr_parse(const char *s, size_t len, uint8_t addr[16]);

/* 1 when addr is IPv4 (IPv4-mapped). */
int rl_addr_is_v4(const uint8_t addr[16]);

/* Parses "ADDR/BITS" or a bare address (a /32 or /128). Returns 0, or -1 with a reason
 * ("not an address", "prefix length ...", "host bits set ...") in why (size >= 96). */
int rl_cidr_parse(const char *text, rl_cidr *out, char *why, size_t whysize);

/* 1 when addr lies in any of list[0..n). */
int rl_cidr_match(const rl_cidr *list, size_t n, const uint8_t addr[16]);

/* Zeroes the bits of addr past the first `bits`. */
void rl_addr_mask(uint8_t addr[16], int bits);

/* Writes the canonical text of addr (as inet_ntop does; IPv4-mapped as dotted IPv4) into buf of
 * RL_ADDR_TEXT_MAX bytes. Returns buf. */
char *rl_addr_format(const uint8_t addr[16], char *buf);

#endif
