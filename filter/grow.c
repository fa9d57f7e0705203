/* grow.c -- growing a heap buffer by doubling (see grow.h) */
#include "../core/fmacros.h"

#include "grow.h"

#include <stdlib.h>

#define GROW_FIRST 4096

void *grow_to(void *buf, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : GROW_FIRST;
    void *p;

    if (need <= *cap && buf != NULL)
        return buf;
    while (n < need)
        n *= 2;
    p = realloc(buf, n);
    if (p != NULL)
        *cap = n;
    return p;
}
