/* error.c -- formatting an error message (see error.h) */
#include "fmacros.h"

#include "error.h"

#include <stdio.h>

void rl_errbuf_vset(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (buf == NULL || size == 0)
        return;
    vsnprintf(buf, size, fmt, ap);
}

void rl_errorf(rl_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    rl_errbuf_vset(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
}
