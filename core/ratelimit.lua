-- ratelimit.lua -- the Lua twin of gcra.c, window.c and slidelog.c, decided inside Redis in one
-- call (Redis runs Lua 5.1; `make lint` checks this file with luac5.1 -p)
--
-- Embedded byte for byte (tools/embed_lua.sh; redis_script.h); loaded once per connection by
-- FUNCTION LOAD after the lines "#!lua name=rl_SHA1" and "local name = 'rl_SHA1'" (decide()
-- is rl_SHA1, run by FCALL), or SCRIPT LOAD (run whole per EVALSHA, calling decide()).
--
-- Calling convention (FCALL rl_SHA1 / EVALSHA SHA1, then numkeys KEYS... ARGV...):
--   KEYS[i]            the key of rule i (redis.c builds PREFIX{CLIENT}:RULE, one hash tag)
--   ARGV[1]            now in ms, or -1: the server's TIME; an explicit now is a test clock
--                      (keys then live a day longer in real time)
--   ARGV[6i-4..6i+1]   rule i's rl_algo (0 gcra, 1 fixed_window, 2 sliding_window, 3
--                      sliding_log), count, period_ms, burst, cost (>= 1), dry-run (0/1)
-- Any other count of arguments is an error ("ratelimit: expected N arguments").
-- Reply: a flat array of 4 integers per rule -- allowed (0/1), remaining, reset_ms,
-- retry_after_ms, the fields the C algorithm fills -- then the now it decided at.
--
-- Stored state, one string per key (a value of another shape reads as a new key):
--   gcra            "TAT:FRAC"           gcra.c's w[0], w[1]
--   fixed_window    "f:START:USED"       window.c's w[0], w[1]
--   sliding_window  "s:START:PREV:CUR"   window.c's w[0], w[1], w[2]
--   sliding_log     "l:BASE:O1,O2,..."   slidelog.c's base w[0], its w[1] offsets, oldest
--                                        first; at most RL_LOG_MAX (128): < 1.5 KB
--   sliding_log     a sorted set         count > RL_LOG_MAX: see zlog()
-- A key of another Redis type reads as a new key (replaced when written).
-- Every key is read first; only when every enforced rule admits (a dry-run rule's refusal
-- does not count) is the new state of every admitting rule written, with its expiry, so a
-- refusal changes nothing -- but a repaired state (RL_ALGO_REPAIR in algo.h: a clock stepped
-- back). A rule that admits a refused request reports its state at cost 0 (algo.h's probe).
-- Every writer (the cluster's refund too: it only lowers a state) leaves a key to expire no
-- sooner than its state needs: TAT (+1 if FRAC > 0), START + PERIOD (f), START + 2 PERIOD
-- (s). A write needing no later expiry (GCRA: many admissions a ms; a window's own start)
-- keeps the key's: SET ... PX costs Redis a quarter more. Redis 7 (KEEPTTL: 6.0+), its clock.
--
-- Exactness: Lua numbers are doubles. The arithmetic is the C code's, line for line, with
-- its bounds (gcra.c, window.c, slidelog.c): products and sums stay below 2^53 (redis.c
-- clamps a cost to max(count, burst) + 1: no decision changes), the absolute now (~2^41) is
-- only added to, and floor(a/b) of integers in [0, 2^53) is the integer quotient.
--
-- Cost: a function makes the helpers once, at load (EVALSHA: every call). A lone GCRA rule
-- takes a path of its own, proven alike (test_vectors_redis.c, test_redis.c run both).
-- Set by decide() (a library's load sees no global but redis): the clock, ttl slack, cost.
local floor, now, slack, cost
-- A library (Redis 7) registers; EVALSHA's script may be on Redis 5.
local keepttl = redis.register_function ~= nil
local function ceil_div(a, b)
  if a <= 0 then return 0 end
  return floor((a + b - 1) / b)
end
local function clamp(v, count)
  if v < 0 then return 0 elseif v > count then return count end
  return v
end
-- Each decide function returns r = {allowed, remaining, reset, retry}; if it admits, the
-- probe {remaining, reset} and the state to keep {value, ttl, expiry kept}; a repaired state.
local function gcra(s, count, period, burst)
  local units, depth = count, burst * period
  local c = cost
  if c > burst then c = burst + 1 end
  local need = c * period
  local d, fix, expires = 0, nil, -1
  local function state(dd)
    local q, ttl = floor(dd / units), math.max(ceil_div(dd, units), 1)
    return {string.format('%d:%d', now + q, dd - q * units), ttl, now + ttl <= expires}
  end
  if s then
    local tat, frac = string.match(s, '^(%d+):(%d+)$')
    tat, frac = tonumber(tat), tonumber(frac)
    if tat and frac and tat >= now then
      local ahead = tat - now
      if ahead > floor(depth / units) + 1 then d = depth + 1 else d = ahead * units + frac end
      if d > depth then
        d = depth
        fix = state(d)
      elseif frac > 0 then expires = tat + 1 else expires = tat end
    end
  end
  if d + need > depth then
    local retry = period
    if need <= depth then retry = ceil_div(d + need - depth, units) end
    return {0, floor((depth - d) / period), retry, retry}, nil, nil, fix
  end
  local probe = {floor((depth - d) / period), ceil_div(d, units)}
  d = d + need
  return {1, floor((depth - d) / period), ceil_div(d, units), 0}, probe, state(d), fix
end
-- The stored window start, aligned and pulled back to at most the window after now's.
local function stored_start(v, cur, period)
  local s = v - v % period
  if s > cur + period then return cur + period, true end
  return s, false
end
local function fixed(s, count, period)
  local cur = now - now % period
  local start, used, repair, same = cur, 0, false, false
  if s then
    local ws, wu = string.match(s, '^f:(%-?%d+):(%-?%d+)$')
    ws, wu = tonumber(ws), tonumber(wu)
    if ws and wu then
      local st
      st, repair = stored_start(ws, cur, period)
      if st >= cur then start, used, same = st, clamp(wu, count), ws == st end
    end
  end
  local left = start + period - now
  local function state(u) return {string.format('f:%d:%d', start, u), left, same} end
  if cost > count or used + cost > count then
    local retry = left
    if cost > count then retry = period end
    local fix = nil
    if repair then fix = state(used) end
    return {0, count - used, retry, retry}, nil, nil, fix
  end
  local probe = {count - used, left}
  used = used + cost
  return {1, count - used, left, 0}, probe, state(used), nil
end
-- window.c's sliding_wait: the first ms >= 1 after which cost fits again.
local function sliding_wait(prev, cur, e, count, period)
  local need = prev * (period - e) + (cur + cost - count) * period
  if prev > 0 then
    local w = ceil_div(need, prev)
    if w <= period - 1 - e then return w end
  end
  local need2 = (cur + cost - count) * period
  if need2 <= 0 then return period - e end
  local e2 = ceil_div(need2, cur)
  if e2 <= period - 1 then return period - e + e2 end
  return 2 * period - e
end
local function sliding(s, count, period)
  local cap = count * period
  local cs = now - now % period
  local start, prev, cur, repair, same = cs, 0, 0, false, false
  if s then
    local ws, wp, wc = string.match(s, '^s:(%-?%d+):(%-?%d+):(%-?%d+)$')
    ws, wp, wc = tonumber(ws), tonumber(wp), tonumber(wc)
    if ws and wp and wc then
      local st
      st, repair = stored_start(ws, cs, period)
      wp, wc = clamp(wp, count), clamp(wc, count)
      if st >= cs then start, prev, cur, same = st, wp, wc, ws == st
      elseif st == cs - period then prev = wc end
    end
  end
  local at = now
  if start > at then at = start end
  local e = at - start
  local keep = start + 2 * period - now
  local used = prev * (period - e) + cur * period
  local function state(c)
    return {string.format('s:%d:%d:%d', start, prev, c), keep, same}
  end
  if cost > count or used + cost * period > cap then
    local rem = 0
    if used < cap then rem = floor((cap - used) / period) end
    local retry = period
    if cost <= count then retry = (at - now) + sliding_wait(prev, cur, e, count, period) end
    local fix = nil
    if repair then fix = state(cur) end
    return {0, rem, retry, retry}, nil, nil, fix
  end
  local preset = 0
  if cur > 0 then preset = keep elseif prev > 0 then preset = start + period - now end
  local probe = {floor((cap - used) / period), preset}
  cur = cur + cost
  used = used + cost * period
  return {1, floor((cap - used) / period), keep, 0}, probe, state(cur), nil
end
-- slidelog.c: live entry times, oldest first; entries later than now clamped to it.
local function slog(s, count, period)
  -- RL_LOG_MAX (ratelimit.h; test_redis_script.c checks)
  if count > 128 then count = 128 end
  local t, repair = {}, false
  if s then
    local base, offs = string.match(s, '^l:(%-?%d+):([%d,]*)$')
    base = tonumber(base)
    if base and offs then
      local k = 0
      for o in string.gmatch(offs, '%d+') do
        if k == count then break end
        k = k + 1
        local x = base + tonumber(o)
        if x > now then x, repair = now, true end
        if x > now - period then
          local j = #t + 1
          while j > 1 and t[j - 1] > x do t[j] = t[j - 1]; j = j - 1 end
          t[j] = x
        end
      end
    end
  end
  local used = #t
  local function state()
    local base, o, ttl = now, {}, 1
    if #t > 0 then base, ttl = t[1], t[#t] + period - now end
    for i = 1, #t do o[i] = string.format('%d', t[i] - base) end
    return {string.format('l:%d:', base) .. table.concat(o, ','), string.format('%d', ttl)}
  end
  if cost > count or used + cost > count then
    local retry = period
    if cost <= count then retry = t[used + cost - count] + period - now end
    local fix = nil
    if repair then fix = state() end
    return {0, count - used, retry, retry}, nil, nil, fix
  end
  local preset = 0
  if used > 0 then preset = t[used] + period - now end
  local probe = {count - used, preset}
  for i = 1, cost do t[used + i] = now end
  return {1, count - #t, t[#t] + period - now, 0}, probe, state(), nil
end
-- sliding_log above RL_LOG_MAX, exact: a sorted set, one member per admitted unit scored by
-- its time; member "T:J" is the J-th unit at T (J from ZCOUNT key T T). Writing removes left
-- entries and moves later ones to now (slidelog.c's repair). O(log N) reads; ZADD 500 a call.
local function zlog(key, count, period)
  local ty = redis.call('TYPE', key)['ok']
  local lo, ns = string.format('%d', now - period), string.format('%d', now)
  local total, stale, ahead = 0, 0, 0
  if ty == 'zset' then
    total = redis.call('ZCARD', key)
    stale = redis.call('ZCOUNT', key, '-inf', lo)
    ahead = redis.call('ZCOUNT', key, '(' .. ns, '+inf')
  end
  local used = total - stale
  local function at(rank)
    local t = tonumber(redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')[2])
    if t > now then t = now end
    return t
  end
  local function write(add)
    return function()
      if ty ~= 'zset' and ty ~= 'none' then redis.call('DEL', key) end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', lo)
      if ahead > 0 then redis.call('ZREMRANGEBYSCORE', key, '(' .. ns, '+inf') end
      local j, k = redis.call('ZCOUNT', key, ns, ns), ahead + add
      while k > 0 do
        local a, m = {}, math.min(k, 500)
        for i = 1, m do a[2 * i - 1], a[2 * i] = ns, ns .. ':' .. (j + i - 1) end
        redis.call('ZADD', key, unpack(a))
        j, k = j + m, k - m
      end
      redis.call('PEXPIRE', key, period + slack)
    end
  end
  local rem = math.max(count - used, 0)
  if cost > count or used + cost > count then
    local retry, fix = period, nil
    if cost <= count then retry = at(stale + used + cost - count - 1) + period - now end
    if ahead > 0 then fix = write(0) end
    return {0, rem, retry, retry}, nil, nil, fix
  end
  local preset = 0
  if used > 0 then preset = at(total - 1) + period - now end
  return {1, rem - cost, period, 0}, {rem, preset}, write(cost), nil
end
local function store(key, v)
  if type(v) == 'function' then v()
  elseif v[3] and slack == 0 and keepttl then redis.call('SET', key, v[1], 'KEEPTTL')
  else redis.call('SET', key, v[1], 'PX', string.format('%d', v[2] + slack)) end
end
local function decide(KEYS, ARGV)
  floor = math.floor
  local n = #KEYS
  if #ARGV ~= 1 + 6 * n then
    return redis.error_reply('ratelimit: expected ' .. (1 + 6 * n) .. ' arguments')
  end
  -- An explicit now is a test clock: keys live a day longer in real time.
  now, slack = -1, 86400000
  if ARGV[1] ~= '-1' then now = tonumber(ARGV[1]) end
  if now < 0 then
    local t = redis.call('TIME')
    local us = t[2] + 0
    now = t[1] * 1000 + (us - us % 1000) / 1000
    slack = 0
  end
  -- One GCRA rule: gcra() inlined (a lone refusal writes only a repair; dry-run and probes
  -- change nothing). `s + 0` converts once (strtod), tonumber() twice, so the usual burst =
  -- count and cost 1 are compared as strings; (a - a % b) / b is floor(a / b) (a, b >= 0).
  if n == 1 and ARGV[2] == '0' then
    local units, period, burst, cost = ARGV[3] + 0, ARGV[4] + 0, nil, 1
    if ARGV[5] == ARGV[3] then burst = units else burst = ARGV[5] + 0 end
    if ARGV[6] ~= '1' then cost = ARGV[6] + 0 end
    local depth = burst * period
    if cost > burst then cost = burst + 1 end
    local need = cost * period
    -- expires: the least expiry the key has, or -1
    local d, fix, expires = 0, false, -1
    local s = redis.pcall('GET', KEYS[1])
    if type(s) == 'string' then
      local tat, frac = string.match(s, '^(%d+):(%d+)$')
      if tat then
        tat, frac = tat + 0, frac + 0
        if tat >= now then
          local ahead = tat - now
          if ahead > (depth - depth % units) / units + 1 then d = depth + 1
          else d = ahead * units + frac end
          if d > depth then d, fix = depth, true
          elseif frac > 0 then expires = tat + 1 else expires = tat end
        end
      end
    end
    -- ceil_div(a, b) is floor((a + b - 1) / b) for these a > 0; depth - d >= 0.
    local allowed, retry, x = 1, 0, depth - d
    if d + need > depth then
      retry = period
      if need <= depth then
        x = d + need - depth + units - 1
        retry = (x - x % units) / units
      end
      x = depth - d
      if not fix then return {0, (x - x % period) / period, retry, retry, now} end
      allowed = 0
    else
      d = d + need
      x = depth - d
    end
    local r = d % units
    local q = (d - r) / units
    local ttl = q -- ceil(d / units), at least 1: an admission's reset
    if r > 0 or q < 1 then ttl = q + 1 end
    -- '%d', not `..` (%.14g: an exponent from 1e14 on).
    local v = string.format('%d:%d', now + q, r)
    if now + ttl <= expires and slack == 0 and keepttl then
      redis.call('SET', KEYS[1], v, 'KEEPTTL')
    else
      redis.call('SET', KEYS[1], v, 'PX', string.format('%d', ttl + slack))
    end
    local reset = ttl
    if allowed == 0 then reset = retry end
    return {allowed, (x - x % period) / period, reset, retry, now}
  end
  -- Every rule read and decided first; the writes after.
  local out, keep, fixes, probes, admit = {}, {}, {}, {}, true
  for i = 1, n do
    local b, a = 4 * (i - 1), 6 * i - 4
    local algo = tonumber(ARGV[a])
    local count, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    cost = tonumber(ARGV[a + 4])
    local s, r, probe, st, fix = nil
    if algo ~= 3 or count <= 128 then
      s = redis.pcall('GET', KEYS[i])
      if type(s) ~= 'string' then s = nil end
    end
    if algo == 3 and count > 128 then r, probe, st, fix = zlog(KEYS[i], count, period)
    elseif algo == 1 then r, probe, st, fix = fixed(s, count, period)
    elseif algo == 2 then r, probe, st, fix = sliding(s, count, period)
    elseif algo == 3 then r, probe, st, fix = slog(s, count, period)
    else r, probe, st, fix = gcra(s, count, period, tonumber(ARGV[a + 3])) end
    out[b + 1], out[b + 2], out[b + 3], out[b + 4] = r[1], r[2], r[3], r[4]
    if r[1] == 0 and ARGV[a + 5] ~= '1' then admit = false end
    probes[i], keep[i], fixes[i] = probe, st, fix
  end
  if admit then
    -- Admitting rules store their new state; a refusing dry run only a repair.
    for i = 1, n do
      local v = keep[i] or fixes[i]
      if v then store(KEYS[i], v) end
    end
  else
    for i = 1, n do
      local b = 4 * (i - 1)
      if probes[i] then out[b + 2], out[b + 3] = probes[i][1], probes[i][2] end
      if fixes[i] then store(KEYS[i], fixes[i]) end
    end
  end
  out[4 * n + 1] = now
  return out
end
if redis.register_function then redis.register_function(name, decide) else
  return decide(KEYS, ARGV)
end
