/* decision_json.c -- one decision as a JSON object: the line --decide prints, and the answer
 * of the admin test endpoint
 *
 *   {"allowed":true,"backend":"shm","retry_after_ms":0,"rules":[{"rule":"r","allowed":true,
 *    "dry_run":false,"limit":3,"remaining":2,"reset_ms":20000,"retry_after_ms":0}],
 *    "verdict":"allowed","status":200,"client":"192.0.2.1"}
 */
#include "../core/fmacros.h"

#include "decision_json.h"

static const char *decide_verdict(rl_verdict v)
{
    switch (v) {
    case RL_VERDICT_ALLOWLISTED: return "allow-listed";
    case RL_VERDICT_LIMITED: return "limited";
    case RL_VERDICT_DENYLISTED: return "deny-listed";
    case RL_VERDICT_MISSING_KEY: return "missing-key";
    case RL_VERDICT_BAD_PATH: return "bad-path";
    default: return "allowed";
    }
}

json_t *decision_json(const rl_decision *d)
{
    json_t *rules = json_array();
    json_t *o;

    for (size_t i = 0; rules != NULL && i < d->nresults; i++) {
        const rl_rule_result *r = &d->results[i];
        json_array_append_new(rules, json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:I}", "rule",
                                               rl_rule_name(r->rule), "allowed", r->allowed,
                                               "dry_run", r->dry_run, "limit", (json_int_t)r->limit,
                                               "remaining", (json_int_t)r->remaining, "reset_ms",
                                               (json_int_t)r->reset_ms, "retry_after_ms",
                                               (json_int_t)r->retry_after_ms));
    }
    o = json_pack("{s:b, s:s, s:I, s:o*, s:s, s:i, s:s}", "allowed", d->allowed, "backend",
                  rl_backend_name(d->backend), "retry_after_ms", (json_int_t)d->retry_after_ms,
                  "rules", rules, "verdict", decide_verdict(d->verdict), "status", d->status,
                  "client", d->client);
    return o;
}
