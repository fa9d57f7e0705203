/* fmacros.h -- feature-test macros; included first by every .c file of the project. */
#ifndef RL_FMACROS_H
#define RL_FMACROS_H
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#endif
