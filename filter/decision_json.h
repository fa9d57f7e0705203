/* decision_json.h -- one decision as a JSON object (see decision_json.c) */
#ifndef FILTER_DECISION_JSON_H
#define FILTER_DECISION_JSON_H

#include <jansson.h>

#include "ratelimit.h"

/* d as a new JSON object (the caller owns the reference), or NULL when out of memory. d is
 * borrowed for the call. */
json_t *decision_json(const rl_decision *d);

#endif
