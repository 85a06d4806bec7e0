"""The Lua scripts of the Redis log (see :mod:`.log`): each runs atomically where the data lives."""

from __future__ import annotations

__all__ = ["APPEND", "BACKFILL", "READ", "RESTORE", "SNAPSHOT"]

# KEYS: the client's last-batch key, then per append: the session's hash, its stream, its
#   tombstone (set by a delete: the append is refused, its seq is 0), its owner's fence (a
#   fenced generation: an append of that generation or an older one is refused, its seq is -1),
#   its lifecycle hash (subject -> state, see ..lifecycle: a violation refuses the append, its
#   answer is "!<rule letter>:<subject index>"; field "~" says the states are kept since the
#   session's first record, else an append that names subjects is answered "!L:0" and its
#   session's states are built from its records first); then the sets that index work by owner.
# ARGV: last-batch ttl, number of appends, batch token, 1 on a retry (else 0: a new
#   token needs no look-up), then per append: n, record prefix, its n event
#   JSONs joined by newlines (JSON text has none of its own: one argument, not n, is
#   much cheaper to send), its fence's generation (0: none), the last seq its appender
#   delivered (the log holding fewer, it lost writes: refused, -2 - its last seq), 1 if an
#   external producer appends, the number m of subjects it names, then m pairs: subject,
#   its outcomes when unseen, open, closed (see ..lifecycle.Plan); then one member per index set.
# Returns {ts, first seq of append 1, first seq of append 2, ...} (0: deleted, -1: fenced,
#   <= -2: behind, a string: a lifecycle rule broken).
APPEND = """
local token = ARGV[3] .. ':'
if ARGV[4] == '1' then
  local done = redis.call('GET', KEYS[1])
  if done and string.sub(done, 1, #token) == token then
    local out = {}
    for v in string.gmatch(string.sub(done, #token + 1), '[^,]+') do out[#out + 1] = tonumber(v) or v end
    return out
  end
end
local t = redis.call('TIME')
local ts = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local out = {tonumber(ts)}
local a = 5
local groups = tonumber(ARGV[2])
local slot = {u = 1, o = 2, O = 2, c = 3, C = 3}
for k = 2, 5 * groups, 5 do
  local generation = tonumber(ARGV[a + 3])
  local known = tonumber(ARGV[a + 4])
  local external = ARGV[a + 5] == '1'
  local m = tonumber(ARGV[a + 6])
  local behind = known > 0 and tonumber(redis.call('HGET', KEYS[k], 'last') or '0') or known
  local refused = nil
  if redis.call('EXISTS', KEYS[k + 2]) == 1 then
    refused = 0
  elseif generation > 0 and tonumber(redis.call('GET', KEYS[k + 3]) or '0') >= generation then
    refused = -1
  elseif behind < known then
    refused = -2 - behind
  end
  local changes = {}
  if refused == nil and m > 0 and redis.call('HEXISTS', KEYS[k + 4], '~') == 0
      and tonumber(redis.call('HGET', KEYS[k], 'last') or '0') > 0 then
    refused = '!L:0'  -- a session written before the lifecycle rules: its states are to be built first
  end
  if refused == nil and m > 0 then
    for j = 1, m do
      local subject = ARGV[a + 5 + 2 * j]
      local current = redis.call('HGET', KEYS[k + 4], subject)
      local outcome = ARGV[a + 6 + 2 * j]
      local letter
      if current and external and string.upper(current) == current then
        letter = 'R'
      else
        local at = current and slot[current] or 1
        letter = string.sub(outcome, at, at)
      end
      if letter == 'R' or letter == 'S' or letter == 'N' or letter == 'E' or letter == 'A' then
        refused = '!' .. letter .. ':' .. j
        break
      end
      if letter ~= 'u' and (not current or string.lower(current) ~= letter) then
        local owned = (not current and not external) or (current and string.upper(current) == current)
        changes[#changes + 1] = {subject, owned and string.upper(letter) or letter}
      end
    end
  end
  if refused ~= nil then
    out[#out + 1] = refused
  else
    for _, change in ipairs(changes) do redis.call('HSET', KEYS[k + 4], change[1], change[2]) end
    local n = tonumber(ARGV[a])
    local prefix = ARGV[a + 1]
    local last = redis.call('HINCRBY', KEYS[k], 'last', n)
    local seq = last - n
    if seq == 0 then redis.call('HSET', KEYS[k + 4], '~', '1') end  -- its states are kept from its start
    out[#out + 1] = seq + 1
    local blob = ARGV[a + 2]
    local pos = 1
    for i = 1, n do
      seq = seq + 1
      local s = string.format('%.0f', seq)
      local stop = string.find(blob, '\\n', pos, true) or (#blob + 1)
      -- the event's fields without its opening brace go after the envelope
      local fields = string.sub(blob, pos + 1, stop - 1)
      redis.call('XADD', KEYS[k + 1], s .. '-0', 'd', prefix .. s .. ',"ts":' .. ts .. ',' .. fields)
      pos = stop + 1
    end
  end
  a = a + 7 + 2 * m
end
for k = 5 * groups + 2, #KEYS do
  redis.call('SADD', KEYS[k], ARGV[a])
  a = a + 1
end
redis.call('SET', KEYS[1], token .. table.concat(out, ','), 'EX', ARGV[1])
return out
"""

# KEYS: hash, stream. ARGV: after, count (0: all). Returns {first, d, d, ...}.
READ = """
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '1')
local rows
if tonumber(ARGV[2]) > 0 then
  rows = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
else
  rows = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+')
end
local out = {first}
for i, row in ipairs(rows) do out[i + 1] = row[2][2] end
return out
"""

# KEYS: hash, stream. ARGV: at, state, retain (-1: keep all).
SNAPSHOT = """
local at = tonumber(ARGV[1])
local cur = redis.call('HGET', KEYS[1], 'snap_at')
if (not cur) or at >= tonumber(cur) then
  redis.call('HSET', KEYS[1], 'snap_at', ARGV[1], 'snap', ARGV[2])
  cur = at
else
  cur = tonumber(cur)
end
local retain = tonumber(ARGV[3])
if retain >= 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
  local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '1')
  local drop = math.min(cur, last - retain)
  if drop + 1 > first then
    redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', drop + 1) .. '-0')
    redis.call('HSET', KEYS[1], 'first', string.format('%.0f', drop + 1))
  end
end
return 1
"""


# KEYS: hash, stream, lifecycle hash. ARGV: per record (ascending): seq, record JSON, the number c of
# lifecycle states it sets, c triples (subject, o or c, 1 if owned), the number n of the other
# subjects it names, and those (see ..lifecycle.restored). Appends the ones that follow the
# stream's last seq, as they were, with their states; returns the last seq after.
RESTORE = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local i = 1
while i <= #ARGV do
  local seq = tonumber(ARGV[i])
  local c = tonumber(ARGV[i + 2])
  local n = tonumber(ARGV[i + 3 + 3 * c])
  if seq == last + 1 then
    redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 'd', ARGV[i + 1])
    last = seq
    local mine = false
    for j = 1, n do
      local named = redis.call('HGET', KEYS[3], ARGV[i + 3 + 3 * c + j])
      if named and string.upper(named) == named then mine = true end
    end
    for j = 0, c - 1 do
      local subject, letter = ARGV[i + 3 + 3 * j], ARGV[i + 4 + 3 * j]
      local owned = mine or ARGV[i + 5 + 3 * j] == '1'
      local current = redis.call('HGET', KEYS[3], subject)
      if current and letter == 'c' then
        redis.call('HSET', KEYS[3], subject, string.upper(current) == current and 'C' or 'c')
      elseif not current then
        redis.call('HSET', KEYS[3], subject, owned and string.upper(letter) or letter)
      end
    end
  end
  i = i + 4 + 3 * c + n
end
redis.call('HSET', KEYS[1], 'last', string.format('%.0f', last))
return last
"""


# KEYS: lifecycle hash. ARGV: subject, state, subject, state... Sets them, and the "~" field,
# unless "~" is set (another process built them first).
BACKFILL = """
if redis.call('HEXISTS', KEYS[1], '~') == 1 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], '~', '1')
return 1
"""


# KEYS: session hash. ARGV: the metadata as read, the metadata to store. Stores it only if the
# metadata is still what was read (no process wrote it since, and the session was not deleted).
META = """
if redis.call('HGET', KEYS[1], 'meta') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[2])
return 1
"""
