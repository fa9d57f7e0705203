/* grow.h -- growing a heap buffer by doubling, for the buffers that do not have a fixed size
 * (admin answers, a FastCGI connection's output and parameters) */
#ifndef FILTER_GROW_H
#define FILTER_GROW_H

#include <stddef.h>

/* Returns buf (realloc'ed when *cap < need, or allocated when buf is NULL: *cap doubled from 4096 until it is >= need, and
 * updated), or NULL when out of memory, buf and *cap then unchanged and still the caller's. */
void *grow_to(void *buf, size_t *cap, size_t need);

#endif
