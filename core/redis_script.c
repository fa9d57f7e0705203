/* redis_script.c -- the Lua twin of gcra.c, decided inside Redis in one atomic call
 *
 * Calling convention (EVALSHA sha numkeys KEYS... ARGV...):
 *   KEYS[i]          the key of rule i (redis.c builds PREFIX{CLIENT}:RULE, one hash tag)
 *   ARGV[1]          now in ms, or -1: read the server's TIME (ms = sec*1000 + floor(usec/1000))
 *   ARGV[5i-3..5i+1] rule i's count, period_ms, burst, cost (>= 1) and dry-run (0/1)
 *                    (i = 1..#KEYS)
 * Reply: a flat array of 4 integers per rule: allowed (0/1), remaining, reset_ms,
 * retry_after_ms -- exactly the fields rl_gcra_decide fills.
 *
 * Stored state: a string "TAT:FRAC" (two decimal integers) = gcra.c's w[0] (theoretical
 * arrival time, ms) and w[1] (its fraction, in 1/count ms). A missing or unparsable value is
 * a new key. Every key is read first; only when every enforced rule admits (a dry-run rule's
 * refusal does not count) is the new state of every admitting rule written, each with its
 * expiry (SET ... PX ttl) in the same script, so a refusal changes nothing --
 * except a repaired state (a TAT beyond the bucket's depth, left by a clock that stepped
 * back), which is written clamped even on a refusal, as gcra.c's RL_ALGO_REPAIR says.
 *
 * Exactness: Lua numbers are doubles. As in gcra.c, everything is computed relative to now,
 * so the largest intermediate is about burst*period + cost*period + count <= 2^51 (config
 * bounds, and redis.c clamps each cost to its rule's burst+1, which changes no decision); the absolute
 * now (~2^41) is only ever added to, never multiplied. Below 2^53 doubles hold integers
 * exactly and floor(a/b) of two such non-negative integers is the integer quotient, so every
 * result equals the int64 one.
 */
#include "fmacros.h"

#include "redis_script.h"

const char rl_redis_script[] =
    "local floor = math.floor\n"
    "local n = #KEYS\n"
    "if #ARGV ~= 1 + 5 * n then\n"
    "  return redis.error_reply('ratelimit: expected ' .. (1 + 5 * n) .. ' arguments')\n"
    "end\n"
    "local now = tonumber(ARGV[1])\n"
    "if now < 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local function ceil_div(a, b)\n"
    "  if a <= 0 then return 0 end\n"
    "  return floor((a + b - 1) / b)\n"
    "end\n"
    "local out, keep, fixes, idle, admit = {}, {}, {}, {}, true\n"
    "for i = 1, n do\n"
    "  local a = 5 * i - 3\n"
    "  local units = tonumber(ARGV[a])\n"
    "  local period = tonumber(ARGV[a + 1])\n"
    "  local depth = tonumber(ARGV[a + 2]) * period\n"
    "  local need = tonumber(ARGV[a + 3]) * period\n"
    "  local d = 0\n"
    "  local s = redis.call('GET', KEYS[i])\n"
    "  if s then\n"
    "    local tat, frac = string.match(s, '^(%d+):(%d+)$')\n"
    "    tat, frac = tonumber(tat), tonumber(frac)\n"
    /* A TAT further ahead than the bucket's depth means the clock stepped back: clamp. */
    "    if tat and frac and tat >= now then\n"
    "      local ahead = tat - now\n"
    "      if ahead > floor(depth / units) + 1 then\n"
    "        d = depth + 1\n"
    "      else\n"
    "        d = ahead * units + frac\n"
    "      end\n"
    "      if d > depth then\n"
    "        d = depth\n"
    /* Repair: keep the clamped state even if refused (gcra.c's RL_ALGO_REPAIR). */
    "        local q = floor(d / units)\n"
    "        fixes[i] = {string.format('%d:%d', now + q, d - q * units),\n"
    "                    string.format('%d', math.max(ceil_div(d, units), 1))}\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local b = 4 * (i - 1)\n"
    "  if d + need > depth then\n"
    "    local retry = period\n"
    "    if need <= depth then retry = ceil_div(d + need - depth, units) end\n"
    "    if ARGV[a + 4] ~= '1' then admit = false end\n"
    "    out[b + 1], out[b + 2], out[b + 3], out[b + 4] = 0, floor((depth - d) / period), retry, retry\n"
    "  else\n"
    /* What this rule reports if another rule refuses: its state unchanged (cost 0). */
    "    idle[b] = {floor((depth - d) / period), ceil_div(d, units)}\n"
    "    d = d + need\n"
    "    local q = floor(d / units)\n"
    "    local reset = ceil_div(d, units)\n"
    "    out[b + 1], out[b + 2], out[b + 3], out[b + 4] = 1, floor((depth - d) / period), reset, 0\n"
    "    local ttl = reset\n"
    "    if ttl < 1 then ttl = 1 end\n"
    "    keep[i] = {string.format('%d:%d', now + q, d - q * units), string.format('%d', ttl)}\n"
    "  end\n"
    "end\n"
    "if admit then\n"
    /* Admitting rules store their new state; a refusing dry run only a repair. */
    "  for i = 1, n do\n"
    "    local v = keep[i] or fixes[i]\n"
    "    if v then redis.call('SET', KEYS[i], v[1], 'PX', v[2]) end\n"
    "  end\n"
    "else\n"
    "  for b, v in pairs(idle) do\n"
    "    out[b + 2], out[b + 3] = v[1], v[2]\n"
    "  end\n"
    "  for i, f in pairs(fixes) do\n"
    "    redis.call('SET', KEYS[i], f[1], 'PX', f[2])\n"
    "  end\n"
    "end\n"
    "return out\n";
