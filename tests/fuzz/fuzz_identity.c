/* fuzz_identity.c -- libFuzzer target: the client behind X-Forwarded-For / Forwarded
 *
 * Input: byte 0 picks the header kind (bit 0: x-forwarded-for or forwarded), the peer (bit 1:
 * a trusted 127.0.0.1 or an untrusted 192.0.2.1) and the IPv6 grouping (bit 2: /64 or /128);
 * the rest is the header's value. Trusted proxies: 127.0.0.0/8, 10.0.0.0/8, 2001:db8::/32.
 * Contract checked: a valid peer always resolves; the key text is a real address (inet_pton
 * reads it back); an untrusted peer is the client whatever the header says (a client can never
 * choose its own key); and the header is never read past its end (ASan).
 */
#include "fmacros.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rl_cidr trusted[3];

static void fuzz_init(void)
{
    static const char *const blocks[] = {"127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"};
    char why[128];
    for (size_t i = 0; i < 3; i++)
        if (rl_cidr_parse(blocks[i], &trusted[i], why, sizeof why) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t addr[16], probe[16];
    char text[RL_ADDR_TEXT_MAX];

    if (!ready) {
        fuzz_init();
        ready = 1;
    }
    if (size == 0)
        return 0;
    rl_identity_config ic = {.trusted = trusted, .ntrusted = 3,
                             .header = (data[0] & 1) ? RL_FORWARD_FORWARDED
                                                     : RL_FORWARD_XFF,
                             .ipv6_prefix = (data[0] & 4) ? 128 : 64};
    const char *peer = (data[0] & 2) ? "192.0.2.1" : "127.0.0.1";
    /* An exact-size heap copy, so ASan sees any read past the header's NUL. */
    char *fwd = malloc(size);
    if (fwd == NULL)
        abort();
    memcpy(fwd, data + 1, size - 1);
    fwd[size - 1] = '\0';

    if (rl_identity_resolve(&ic, peer, fwd, addr, text) != 0)
        abort(); /* the peer is a valid address */
    if (inet_pton(strchr(text, ':') ? AF_INET6 : AF_INET, text, probe) != 1)
        abort(); /* the key text is not an address */
    if ((data[0] & 2) && strcmp(text, "192.0.2.1") != 0)
        abort(); /* an untrusted peer's header chose the key */
    free(fwd);
    return 0;
}
