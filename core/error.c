/* error.c -- filling a caller's rl_error (see error.h) */
#include "fmacros.h"

#include "error.h"

#include <stdarg.h>
#include <stdio.h>

void rl_errorf(rl_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
}
