/* rule_access.c -- what a program may read of a rule (rl_rule is opaque outside the core;
 * rule_types.h holds its fields) */
#include "rule_types.h"

const char *rl_rule_name(const rl_rule *rule)
{
    return rule->name;
}

const char *rl_rule_body(const rl_rule *rule)
{
    return rule->body;
}

const char *rl_rule_path_prefix(const rl_rule *rule)
{
    return rule->path_prefix;
}
