/* num.c -- integers written as decimal text without printf
 *
 * Digits are made right to left in a small buffer, then copied once: every int64_t, the
 * smallest included (its magnitude is taken as uint64_t).
 */
#include "fmacros.h"

#include <string.h>

#include "num.h"

char *rl_put_int(char *p, int64_t v)
{
    char tmp[RL_INT_TEXT_MAX];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do
        tmp[--i] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        tmp[--i] = '-';
    memcpy(p, tmp + i, sizeof tmp - i);
    return p + (sizeof tmp - i);
}
