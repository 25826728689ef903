-- Many limiter checks in one atomic step. KEYS[i] is the log of check i; ARGV holds, for each
-- check in order, its number of windows n and then n pairs (limit, period in ms). The answer
-- is, per check in order, admitted (1), refused (0) or failed (-1: its key was unusable, e.g.
-- WRONGTYPE), then (remaining, reset ms) per window. Every check is decided as if it ran
-- alone, in order, at one time read once from Redis's own clock (TIME), so a batch gives the
-- answers of the same checks run one after the other.
--
-- A key met several times in one batch is trimmed and counted once; its admissions are all
-- at `now`, so each window's count is (entries already in it) + (admitted in this batch), and
-- they are written with one ZADD at the end. Integers go through string.format('%d') because
-- Lua's default number formatting (%.14g) would round large values.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function int(v) return string.format('%d', v) end

local logs, order = {}, {}
local function log_of(key, longest)
  local s = logs[key]
  if s then return s end
  s = {existing = {}, oldest = {}, members = {}, added = 0, longest = longest, slots = {}}
  local r = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', int(now - longest))
  if type(r) == 'table' and r.err then
    s.failed = true
  else
    s.card = redis.call('ZCARD', key)
  end
  logs[key] = s
  order[#order + 1] = key
  return s
end
-- Entries that were in the window of `period` before this batch.
local function existing(s, key, period)
  local c = s.existing[period]
  if c == nil then
    c = redis.call('ZCOUNT', key, int(now - period + 1), '+inf')
    s.existing[period] = c
  end
  return c
end
-- The time of the entry at `rank` (0 = oldest) among those already in the window, or nil.
local function entry_at(s, key, period, rank)
  if rank == 0 and s.oldest[period] ~= nil then return s.oldest[period] or nil end
  local e = redis.call('ZRANGEBYSCORE', key, int(now - period + 1), '+inf',
    'WITHSCORES', 'LIMIT', rank, 1)
  local score = e[2] and tonumber(e[2]) or false
  if rank == 0 then s.oldest[period] = score end
  return score or nil
end

local out, a = {}, 1
for i = 1, #KEYS do
  local key = KEYS[i]
  local n = tonumber(ARGV[a])
  local limits, periods, longest = {}, {}, 0
  for w = 1, n do
    limits[w], periods[w] = tonumber(ARGV[a + 2 * w - 1]), tonumber(ARGV[a + 2 * w])
    longest = math.max(longest, periods[w])
  end
  a = a + 1 + 2 * n
  local s = log_of(key, longest)
  out[#out + 1] = -1
  local slot = #out
  if s.failed then
    for _ = 1, n do out[#out + 1] = 0; out[#out + 1] = 0 end
  else
    local used, admitted = {}, 1
    for w = 1, n do
      used[w] = existing(s, key, periods[w]) + s.added
      if used[w] >= limits[w] then admitted = 0 end
    end
    if admitted == 1 then
      -- (time, size) is unique: within one millisecond the size only grows.
      s.members[#s.members + 1] = int(now)
      s.members[#s.members + 1] = int(now) .. ':' .. (s.card + s.added)
      s.added = s.added + 1
      s.longest = math.max(s.longest, longest)
      s.slots[#s.slots + 1] = slot
    end
    out[slot] = admitted
    for w = 1, n do
      local count = used[w] + admitted
      local reset = 0
      if count > 0 then
        -- Past the limit only entries from before the batch can be counted (nothing of this
        -- key is admitted then), so the rank is looked up among them; at rank 0 an empty
        -- window means the oldest is one admitted now.
        local rank = math.max(count - limits[w], 0)
        local score = entry_at(s, key, periods[w], rank)
        if score == nil and rank == 0 then score = now end
        if score then reset = math.max(score + periods[w] - now, 0) end
      end
      out[#out + 1] = math.max(limits[w] - count, 0)
      out[#out + 1] = reset
    end
  end
end

for _, key in ipairs(order) do
  local s = logs[key]
  if s.added > 0 then
    local r = redis.pcall('ZADD', key, unpack(s.members))
    if type(r) == 'table' and r.err then
      -- Admissions that could not be recorded fail open; refusals stand.
      for _, slot in ipairs(s.slots) do out[slot] = -1 end
    else
      redis.call('PEXPIRE', key, int(s.longest))
    end
  end
end
return out
