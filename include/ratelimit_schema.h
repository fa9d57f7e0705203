/* ratelimit_schema.h -- the configuration schema: one table row per setting
 *
 * In the style of nginx's ngx_command_t: every setting of the configuration file is one
 * rl_setting row (key, type, offset into its section's struct, bounds, default, environment
 * variable, doc line), and a section (a top-level group: "redis", "proxy", ...) is a table of
 * rows plus an optional finish hook for what concerns several keys. One loader walks the file
 * against these tables, so a default, a bound or a type is written once, in its row; the
 * MANUAL's key tables are checked against the rows by a unit test.
 *
 * The core registers its own sections (shm, redis, identity, access, rules:
 * rl_config_schema()); a program adds its own with rl_config_load_with() and reads them back
 * with rl_config_section(). Environment variables are the program's business: the core never
 * reads the environment, but its rows name the variables a program may map onto them, and a
 * program hands their values to rl_config_override(), which validates them by the same rows.
 *
 * Invariants: a row's offset lies inside its section's struct; BOOL, INT and CHOICE fields are
 * int (CHOICE: an enum the size of an int), INT64 int64_t, STRING char * (owned by the config,
 * freed with it), CIDRS rl_cidr * (owned) with its size_t count at offset2, LIST char ** (the
 * array and each entry owned) with its size_t count at offset2. A section struct is zeroed,
 * then every row's default is applied (unless RL_SETTING_DERIVED), then the file's values,
 * then finish(). An override changes one value, then finish() runs again on the whole
 * section, so a cross-key check holds whichever way a value came; a refused override leaves
 * the section as it was.
 */
#ifndef RATELIMIT_SCHEMA_H
#define RATELIMIT_SCHEMA_H

#include "ratelimit.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* An address block, as a CIDRS setting holds it. Addresses are kept in their IPv6 form: an
 * IPv4 block a.b.c.d/n is ::ffff:a.b.c.d/(96+n), so one comparison serves both families. Host
 * bits are zero. */
typedef struct rl_cidr {
    uint8_t addr[16];
    int bits; /* 0..128 */
} rl_cidr;

/* 1 when the client of req (its remote_addr, behind cfg's trusted proxies like a rule key's
 * identity, but never grouped by ipv6_prefix) lies in list[0..n), e.g. a program's own CIDRS
 * setting; 0 otherwise, and for a remote_addr that is not an IP address. */
int rl_client_in(const rl_config *cfg, const rl_request *req, const rl_cidr *list, size_t n);

typedef enum rl_setting_type {
    RL_SETTING_BOOL = 0, /* int, 0 or 1 (file: true/false; text: true/false/1/0/yes/no) */
    RL_SETTING_INT,      /* int in min..max */
    RL_SETTING_INT64,    /* int64_t in min..max */
    RL_SETTING_STRING,   /* char *, validated by check() and canonical */
    RL_SETTING_CIDRS,    /* rl_cidr * and its size_t count at offset2: a list of address blocks */
    RL_SETTING_LIST,     /* char ** and its size_t count at offset2: min..max strings, each of
                            1..item_max bytes and validated by check() */
    RL_SETTING_CUSTOM,   /* read by the core's own reader (impl); core sections only */
    RL_SETTING_CHOICE,   /* int: the value of the one of choices[] the string names; a wrong
                            name is an "unknown NOUN" error that lists the names */
} rl_setting_type;

#define RL_SETTING_EMPTY_NULL 1u /* STRING: "" means unset (NULL) */
#define RL_SETTING_REQUIRED 2u   /* the group must give it ("missing required key") */
#define RL_SETTING_DERIVED 4u    /* def only documents a default computed by finish() */
#define RL_SETTING_ANY_CASE 8u   /* CHOICE: names match in any ASCII case */

/* One name a CHOICE row accepts and the value it stores; a table ends with {NULL, 0}. */
typedef struct rl_setting_choice {
    const char *name;
    int value;
} rl_setting_choice;

/* Checks a STRING value (a copy, which it may shorten in place) before it is stored.
 * quoted is the value as messages quote it. 0, or -1 with the reason in why (the whole
 * message after "FILE:LINE: KEY: ", e.g. "invalid host \"\": must not be empty"). */
typedef int (*rl_setting_check_fn)(char *value, const char *quoted, char *why, size_t size);

typedef struct rl_setting {
    const char *key;           /* the member's name in its group */
    rl_setting_type type;      /* how the file's value is read and stored */
    size_t offset;             /* of the field in the section's struct */
    long long min, max;        /* INT, INT64: the bounds; LIST: of the number of entries */
    const char *def;           /* the default as the MANUAL writes it (no backticks); NULL: none */
    const char *env;           /* an environment variable a program may map onto it; NULL: none */
    const char *doc;           /* one line: what it does */
    unsigned flags;            /* RL_SETTING_* */
    size_t offset2;            /* CIDRS, LIST: of the size_t count */
    const char *canonical;     /* STRING: the value must be a canonical request path,
                                      named so in messages ("path", "path prefix"); NULL: no */
    rl_setting_check_fn check; /* STRING, LIST (each entry): NULL = any string */
    const char *type_doc;      /* the MANUAL's type column; NULL: from the type */
    const char *range_doc;     /* the bounds as the MANUAL writes them; NULL: "MIN..MAX" */
    const void *impl;          /* CUSTOM: the core's reader (private) */
    size_t item_max;           /* LIST: bytes of one entry at most (0: any) */
    const rl_setting_choice *choices; /* CHOICE: the names and values, {NULL, 0} last */
    const char *noun; /* CHOICE: a wrong name is an "unknown NOUN" (NULL: "value") */
} rl_setting;

/* The commonest row: an INT setting with nothing but its bounds, default and doc line. A row
 * with more (an environment variable, flags, a range_doc) names its fields instead. */
#define RL_SETTING_INT_ROW(key_, offset_, min_, max_, def_, doc_)                                  \
    {                                                                                              \
        .key = (key_), .type = RL_SETTING_INT, .offset = (offset_), .min = (min_), .max = (max_),  \
        .def = (def_), .doc = (doc_)                                                               \
    }

/* What a finish hook is given: the section being loaded (opaque). */
typedef struct rl_schema_ctx rl_schema_ctx;

typedef struct rl_section {
    const char *name; /* the top-level key */
    const rl_setting *settings;
    size_t nsettings;
    size_t size; /* bytes of the section's struct (a program's section: allocated zeroed) */
    /* Cross-key checks and derived defaults, after the group's keys (also when the file has
     * no such group), and again after each override of one of its keys (so it must give the
     * same result when run twice, and allocate nothing once loaded). 0, or -1 after
     * rl_schema_fail. NULL: none. */
    int (*finish)(rl_schema_ctx *ctx, void *sec);
} rl_section;

/* 1 when the file's group gives key (or, once loaded, an override has set it), else 0. */
int rl_schema_given(const rl_schema_ctx *ctx, const char *key);
/* Reports an error about key of the section ("FILE:LINE: SECTION.KEY: ..."; the group's line
 * when the key is not given, "FILE: ..." when the group is absent; during an override, the
 * override's own message: "ORIGIN: invalid value "V": ..."). Returns -1. */
int rl_schema_fail(rl_schema_ctx *ctx, const char *key, const char *fmt, ...) RL_PRINTF(3, 4);

/* The core's sections, in the order the MANUAL lists them; *n set to their number. */
const rl_section *const *rl_config_schema(size_t *n);

/* Like rl_config_load, with a program's own sections too (extra[0..nextra), borrowed: they
 * must outlive the config). Their structs are owned by the config. */
rl_config *rl_config_load_with(const char *file, const rl_section *const *extra, size_t nextra,
                               rl_error *err) RL_WARN_UNUSED;
/* The struct of the program's section `name` (rl_config_load_with), or NULL. */
const void *rl_config_section(const rl_config *cfg, const char *name);

/* One value from outside the file, e.g. an environment variable. */
typedef struct rl_override {
    /* "SECTION.KEY", or for rules "rules[NAME].KEY" (one rule) or "rules[*].KEY" (every one).
     * Rule keys that take text: limit and the choices (algorithm, on_missing_key,
     * on_redis_down). */
    const char *key;
    const char *value;  /* as text: BOOL true/false/1/0/yes/no (any case); INT decimal */
    const char *origin; /* names the source in messages: "environment RATE_LIMIT_REDIS_PORT" */
    const char *shown;  /* the value as the user wrote it, for messages; NULL: value */
} rl_override;

/* Sets one setting of a loaded config through its row: the same type and bounds as the
 * file's value, then its section's finish hook (the file's cross-key checks), and a rule's
 * numbers through the file's rule check (the rule's key identity follows its new numbers; a
 * burst equal to the old count follows the new one). A LIST's text is its entries separated
 * by commas or blanks, brackets and quotes allowed: ["a:1", "b:2"]. 0, or -1 with err->text
 * "ORIGIN: invalid value "V": why" (or "ORIGIN: why"); the setting is then unchanged (with
 * rules[*], the rules before the one refused keep the new value). */
int rl_config_override(rl_config *cfg, const rl_override *ov, rl_error *err);

/* Quotes v as every configuration message does (escapes, at most 64 bytes then "..."), into
 * buf of RL_SCHEMA_QUOTE_SIZE bytes; returns buf. */
#define RL_SCHEMA_QUOTE_SIZE 264
const char *rl_schema_quote(char *buf, const char *v);

/* "true", "false", "1", "0", "yes", "no" (any case) into *out (1 or 0); 0, or -1. */
int rl_parse_bool(const char *text, int *out);
/* What rl_parse_bool accepts, as messages say it. */
#define RL_BOOL_EXPECTED "expected true, false, 1, 0, yes or no"

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* RATELIMIT_SCHEMA_H */
