/* redis_script.c -- the Lua twin of gcra.c, window.c and slidelog.c, decided inside Redis in
 * one call
 *
 * Calling convention (EVALSHA sha numkeys KEYS... ARGV...):
 *   KEYS[i]            the key of rule i (redis.c builds PREFIX{CLIENT}:RULE, one hash tag)
 *   ARGV[1]            now in ms, or -1: read the server's TIME (ms = sec*1000 + floor(usec/1000));
 *                      an explicit now is a test clock: keys then live a day longer in real time
 *   ARGV[6i-4..6i+1]   rule i's algorithm (0 gcra, 1 fixed_window, 2 sliding_window,
 *                      3 sliding_log: the values of rl_algo), count, period_ms, burst,
 *                      cost (>= 1) and dry-run (0/1)
 *                      (i = 1..#KEYS)
 * Reply: a flat array of 4 integers per rule -- allowed (0/1), remaining, reset_ms,
 * retry_after_ms, exactly the fields the C algorithm fills -- then one more: the now the
 * script decided at (the caller learns Redis' clock from it).
 *
 * Stored state, one string per key (a value of another shape, as left by a rule whose
 * algorithm changed, reads as a new key):
 *   gcra            "TAT:FRAC"           gcra.c's w[0], w[1]
 *   fixed_window    "f:START:USED"       window.c's w[0], w[1]
 *   sliding_window  "s:START:PREV:CUR"   window.c's w[0], w[1], w[2]
 *   sliding_log     "l:BASE:O1,O2,..."   slidelog.c's base w[0] and its w[1] offsets, oldest
 *                                        first ("l:BASE:" is an empty log); at most
 *                                        RL_LOG_MAX (128) entries of <= 10 digits: < 1.5 KB
 * Every key is read first; only when every enforced rule admits (a dry-run rule's refusal
 * does not count) is the new state of every admitting rule written, each with its expiry
 * (SET ... PX ttl) in the same script, so a refusal changes nothing -- except a
 * repaired state (RL_ALGO_REPAIR in algo.h: a clock that stepped back left it impossible),
 * which is written even on a refusal. A rule that admits a refused request reports its state
 * at cost 0 (algo.h's probe), as shm.c does.
 *
 * Exactness: Lua numbers are doubles. The arithmetic is the C code's, line for line, and keeps
 * its bounds (see gcra.c, window.c and slidelog.c): every product and sum is below 2^53
 * (redis.c clamps each rule's cost to max(count, burst) + 1, which changes no decision), the
 * absolute now (~2^41) is only
 * added to, and floor(a/b) of two non-negative integers below 2^53 is the integer quotient.
 * `a % p` in Lua is floored, so `t - t % p` is window.c's window_floor.
 *
 * Cost: Redis runs the whole chunk on every call, so each `local function` below is a closure
 * made per call, and each table and string is garbage. One GCRA rule alone, the common case,
 * takes a path of its own first: gcra()'s arithmetic inlined, no closure, no table but the
 * reply (about 40% fewer instructions in Redis per call; test_redis.c runs the same steps
 * through both paths).
 */
#include "fmacros.h"

#include "ratelimit.h"
#include "redis_script.h"

/* A constant of ratelimit.h spelt into the script. */
#define RL_SCRIPT_STR2(x) #x
#define RL_SCRIPT_STR(x) RL_SCRIPT_STR2(x)

/* clang-format off: the script is laid out as Lua, one line per C string. */
const char rl_redis_script[] =
    "local floor = math.floor\n"
    "local n = #KEYS\n"
    "if #ARGV ~= 1 + 6 * n then\n"
    "  return redis.error_reply('ratelimit: expected ' .. (1 + 6 * n) .. ' arguments')\n"
    "end\n"
    /* An explicit now is a test clock that Redis' real one knows nothing of: keep keys a day
     * longer in real time, so a short ttl in test time cannot expire between two steps. */
    "local now, slack = -1, 86400000\n"
    "if ARGV[1] ~= '-1' then now = tonumber(ARGV[1]) end\n"
    "if now < 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = t[1] * 1000 + floor(t[2] / 1000)\n"
    "  slack = 0\n"
    "end\n"
    /* The common case, one GCRA rule: gcra() below inlined, with no closure, no table but the
     * reply, and the state written straight away (with one rule a refusal that repairs writes
     * the repair, and the dry-run flag and the probes change nothing). Numbers come from
     * strings by arithmetic (`s + 0`), one conversion where tonumber() makes two. */
    "if n == 1 and ARGV[2] == '0' then\n"
    "  local units, period, burst, cost = ARGV[3] + 0, ARGV[4] + 0, ARGV[5] + 0, ARGV[6] + 0\n"
    "  local depth = burst * period\n"
    "  if cost > burst then cost = burst + 1 end\n"
    "  local need = cost * period\n"
    "  local d, fix = 0, false\n"
    "  local s = redis.call('GET', KEYS[1])\n"
    "  if s then\n"
    "    local tat, frac = string.match(s, '^(%d+):(%d+)$')\n"
    "    if tat then\n"
    "      tat = tat + 0\n"
    "      if tat >= now then\n"
    "        local ahead = tat - now\n"
    "        if ahead > floor(depth / units) + 1 then d = depth + 1 else d = ahead * units + frac "
    "end\n"
    "        if d > depth then d, fix = depth, true end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    /* d + need - depth > 0 on a refusal and d >= need >= 1 on an admission: ceil_div(a, b)
     * is floor((a + b - 1) / b) there. */
    "  local allowed, reset, retry = 1, 0, 0\n"
    "  if d + need > depth then\n"
    "    retry = period\n"
    "    if need <= depth then retry = floor((d + need - depth + units - 1) / units) end\n"
    "    if not fix then return {0, floor((depth - d) / period), retry, retry, now} end\n"
    "    allowed, reset = 0, retry\n"
    "  else\n"
    "    d = d + need\n"
    "    reset = floor((d + units - 1) / units)\n"
    "  end\n"
    "  local q, ttl = floor(d / units), 1\n"
    "  if d > 0 then ttl = floor((d + units - 1) / units) end\n"
    /* string.format('%d'), not `..`: tostring() is %.14g (an exponent from 1e14 on, and
     * slower); the TTL as a string spares Redis its own %.17g of a number. */
    "  redis.call('SET', KEYS[1], string.format('%d:%d', now + q, d - q * units), 'PX',\n"
    "             string.format('%d', ttl + slack))\n"
    "  return {allowed, floor((depth - d) / period), reset, retry, now}\n"
    "end\n"
    /* The decide functions read the cost of the rule being decided from this upvalue. */
    "local cost = 1\n"
    "local function ceil_div(a, b)\n"
    "  if a <= 0 then return 0 end\n"
    "  return floor((a + b - 1) / b)\n"
    "end\n"
    "local function clamp(v, count)\n"
    "  if v < 0 then return 0 elseif v > count then return count end\n"
    "  return v\n"
    "end\n"
    /* Each decide function returns r = {allowed, remaining, reset, retry}, the probe result
     * {remaining, reset} when it admits, the state to keep {value, ttl} when it admits, and
     * the repaired state {value, ttl} when it repaired one. */
    "local function gcra(s, count, period, burst)\n"
    "  local units, depth = count, burst * period\n"
    "  local c = cost\n"
    "  if c > burst then c = burst + 1 end\n"
    "  local need = c * period\n"
    "  local d, fix = 0, nil\n"
    "  local function state(dd)\n"
    "    local q = floor(dd / units)\n"
    "    return {string.format('%d:%d', now + q, dd - q * units),\n"
    "            string.format('%d', math.max(ceil_div(dd, units), 1))}\n"
    "  end\n"
    "  if s then\n"
    "    local tat, frac = string.match(s, '^(%d+):(%d+)$')\n"
    "    tat, frac = tonumber(tat), tonumber(frac)\n"
    "    if tat and frac and tat >= now then\n"
    "      local ahead = tat - now\n"
    "      if ahead > floor(depth / units) + 1 then d = depth + 1 else d = ahead * units + frac "
    "end\n"
    "      if d > depth then\n"
    "        d = depth\n"
    "        fix = state(d)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if d + need > depth then\n"
    "    local retry = period\n"
    "    if need <= depth then retry = ceil_div(d + need - depth, units) end\n"
    "    return {0, floor((depth - d) / period), retry, retry}, nil, nil, fix\n"
    "  end\n"
    "  local probe = {floor((depth - d) / period), ceil_div(d, units)}\n"
    "  d = d + need\n"
    "  return {1, floor((depth - d) / period), ceil_div(d, units), 0}, probe, state(d), fix\n"
    "end\n"
    /* The stored window start, aligned and pulled back to at most the window after now's. */
    "local function stored_start(v, cur, period)\n"
    "  local s = v - v % period\n"
    "  if s > cur + period then return cur + period, true end\n"
    "  return s, false\n"
    "end\n"
    "local function fixed(s, count, period)\n"
    "  local cur = now - now % period\n"
    "  local start, used, repair = cur, 0, false\n"
    "  if s then\n"
    "    local ws, wu = string.match(s, '^f:(%-?%d+):(%-?%d+)$')\n"
    "    ws, wu = tonumber(ws), tonumber(wu)\n"
    "    if ws and wu then\n"
    "      local st\n"
    "      st, repair = stored_start(ws, cur, period)\n"
    "      if st >= cur then start, used = st, clamp(wu, count) end\n"
    "    end\n"
    "  end\n"
    "  local left = start + period - now\n"
    "  local function state(u) return {string.format('f:%d:%d', start, u), string.format('%d', "
    "left)} end\n"
    "  if cost > count or used + cost > count then\n"
    "    local retry = left\n"
    "    if cost > count then retry = period end\n"
    "    local fix = nil\n"
    "    if repair then fix = state(used) end\n"
    "    return {0, count - used, retry, retry}, nil, nil, fix\n"
    "  end\n"
    "  local probe = {count - used, left}\n"
    "  used = used + cost\n"
    "  return {1, count - used, left, 0}, probe, state(used), nil\n"
    "end\n"
    /* window.c's sliding_wait: the first ms >= 1 after which cost fits again. */
    "local function sliding_wait(prev, cur, e, count, period)\n"
    "  local need = prev * (period - e) + (cur + cost - count) * period\n"
    "  if prev > 0 then\n"
    "    local w = ceil_div(need, prev)\n"
    "    if w <= period - 1 - e then return w end\n"
    "  end\n"
    "  local need2 = (cur + cost - count) * period\n"
    "  if need2 <= 0 then return period - e end\n"
    "  local e2 = ceil_div(need2, cur)\n"
    "  if e2 <= period - 1 then return period - e + e2 end\n"
    "  return 2 * period - e\n"
    "end\n"
    "local function sliding(s, count, period)\n"
    "  local cap = count * period\n"
    "  local cs = now - now % period\n"
    "  local start, prev, cur, repair = cs, 0, 0, false\n"
    "  if s then\n"
    "    local ws, wp, wc = string.match(s, '^s:(%-?%d+):(%-?%d+):(%-?%d+)$')\n"
    "    ws, wp, wc = tonumber(ws), tonumber(wp), tonumber(wc)\n"
    "    if ws and wp and wc then\n"
    "      local st\n"
    "      st, repair = stored_start(ws, cs, period)\n"
    "      wp, wc = clamp(wp, count), clamp(wc, count)\n"
    "      if st >= cs then start, prev, cur = st, wp, wc\n"
    "      elseif st == cs - period then prev = wc end\n"
    "    end\n"
    "  end\n"
    "  local at = now\n"
    "  if start > at then at = start end\n"
    "  local e = at - start\n"
    "  local keep = start + 2 * period - now\n"
    "  local used = prev * (period - e) + cur * period\n"
    "  local function state(c) return {string.format('s:%d:%d:%d', start, prev, c), "
    "string.format('%d', keep)} end\n"
    "  if cost > count or used + cost * period > cap then\n"
    "    local rem = 0\n"
    "    if used < cap then rem = floor((cap - used) / period) end\n"
    "    local retry = period\n"
    "    if cost <= count then retry = (at - now) + sliding_wait(prev, cur, e, count, period) end\n"
    "    local fix = nil\n"
    "    if repair then fix = state(cur) end\n"
    "    return {0, rem, retry, retry}, nil, nil, fix\n"
    "  end\n"
    "  local preset = 0\n"
    "  if cur > 0 then preset = keep elseif prev > 0 then preset = start + period - now end\n"
    "  local probe = {floor((cap - used) / period), preset}\n"
    "  cur = cur + cost\n"
    "  used = used + cost * period\n"
    "  return {1, floor((cap - used) / period), keep, 0}, probe, state(cur), nil\n"
    "end\n"
    /* slidelog.c: live entry times, oldest first; entries later than now clamped to it. */
    "local function slog(s, count, period)\n"
    "  if count > " RL_SCRIPT_STR(RL_LOG_MAX) " then count = " RL_SCRIPT_STR(
        RL_LOG_MAX) " end\n"
                    "  local t, repair = {}, false\n"
                    "  if s then\n"
                    "    local base, offs = string.match(s, '^l:(%-?%d+):([%d,]*)$')\n"
                    "    base = tonumber(base)\n"
                    "    if base and offs then\n"
                    "      local k = 0\n"
                    "      for o in string.gmatch(offs, '%d+') do\n"
                    "        if k == count then break end\n"
                    "        k = k + 1\n"
                    "        local x = base + tonumber(o)\n"
                    "        if x > now then x, repair = now, true end\n"
                    "        if x > now - period then\n"
                    "          local j = #t + 1\n"
                    "          while j > 1 and t[j - 1] > x do t[j] = t[j - 1]; j = j - 1 end\n"
                    "          t[j] = x\n"
                    "        end\n"
                    "      end\n"
                    "    end\n"
                    "  end\n"
                    "  local used = #t\n"
                    "  local function state()\n"
                    "    local base, o, ttl = now, {}, 1\n"
                    "    if #t > 0 then base, ttl = t[1], t[#t] + period - now end\n"
                    "    for i = 1, #t do o[i] = string.format('%d', t[i] - base) end\n"
                    "    return {string.format('l:%d:', base) .. table.concat(o, ','), "
                    "string.format('%d', ttl)}\n"
                    "  end\n"
                    "  if cost > count or used + cost > count then\n"
                    "    local retry = period\n"
                    "    if cost <= count then retry = t[used + cost - count] + period - now end\n"
                    "    local fix = nil\n"
                    "    if repair then fix = state() end\n"
                    "    return {0, count - used, retry, retry}, nil, nil, fix\n"
                    "  end\n"
                    "  local preset = 0\n"
                    "  if used > 0 then preset = t[used] + period - now end\n"
                    "  local probe = {count - used, preset}\n"
                    "  for i = 1, cost do t[used + i] = now end\n"
                    "  return {1, count - #t, t[#t] + period - now, 0}, probe, state(), nil\n"
                    "end\n"
                    "local out, keep, fixes, probes, admit = {}, {}, {}, {}, true\n"
                    "for i = 1, n do\n"
                    "  local b, a = 4 * (i - 1), 6 * i - 4\n"
                    "  local algo = tonumber(ARGV[a])\n"
                    "  local count, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
                    "  cost = tonumber(ARGV[a + 4])\n"
                    "  local s = redis.call('GET', KEYS[i])\n"
                    "  local r, probe, st, fix\n"
                    "  if algo == 1 then r, probe, st, fix = fixed(s, count, period)\n"
                    "  elseif algo == 2 then r, probe, st, fix = sliding(s, count, period)\n"
                    "  elseif algo == 3 then r, probe, st, fix = slog(s, count, period)\n"
                    "  else r, probe, st, fix = gcra(s, count, period, tonumber(ARGV[a + 3])) end\n"
                    "  out[b + 1], out[b + 2], out[b + 3], out[b + 4] = r[1], r[2], r[3], r[4]\n"
                    "  if r[1] == 0 and ARGV[a + 5] ~= '1' then admit = false end\n"
                    "  probes[i], keep[i], fixes[i] = probe, st, fix\n"
                    "end\n"
                    "if admit then\n"
                    /* Admitting rules store their new state; a refusing dry run only a repair. */
                    "  for i = 1, n do\n"
                    "    local v = keep[i] or fixes[i]\n"
                    "    if v then redis.call('SET', KEYS[i], v[1], 'PX', v[2] + slack) end\n"
                    "  end\n"
                    "else\n"
                    "  for i = 1, n do\n"
                    "    local b = 4 * (i - 1)\n"
                    "    if probes[i] then out[b + 2], out[b + 3] = probes[i][1], probes[i][2] "
                    "end\n"
                    "    if fixes[i] then redis.call('SET', KEYS[i], fixes[i][1], 'PX', "
                    "fixes[i][2] + slack) end\n"
                    "  end\n"
                    "end\n"
                    "out[4 * n + 1] = now\n"
                    "return out\n";
/* clang-format on */
