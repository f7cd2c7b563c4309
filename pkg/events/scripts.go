package events

import "github.com/redis/go-redis/v9"

// The scripts keep the cluster's lifecycle state and append its events in
// one atomic step each. Every key they touch shares the hash tag of the
// events stream (base, "{<tag>}"), so each runs on one shard of a Redis
// Cluster as on a single Redis: a transition and its event are one
// change, and a script run twice (a retry after a lost answer, two
// survivors reaping the same dead node) finds the state already changed
// and appends nothing.
//
// Keys, under base:
//
//	:nodes               HASH  incarnation -> "<node>|<last heartbeat, Unix ms>"
//	:conns:<inc>         HASH  connection -> "<client>|<user>|<transport>"
//	:subs:<conn>         SET   the connection's channels with subscription events
//	:chans:<inc>         SET   the channels the incarnation holds subscribers of
//	:occ:<channel>       SET   the incarnations holding subscribers of channel
//	:seq                 HASH  channel -> transitions so far (names the events)
//
// Every script takes KEYS[1] = the stream, ARGV[1] = base, ARGV[2] = the
// stream's MAXLEN, ARGV[3] = the time, ARGV[4] = the node, then its own.

// prelude defines emit, which appends one event.
const prelude = `
local stream, base, maxlen, now, node = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function emit(typ, id, fields)
  local args = {stream, 'MAXLEN', '~', maxlen, '*', 'type', typ, 'event_id', id, 'node', node, 'time', now}
  for i = 1, #fields, 2 do
    if fields[i+1] ~= nil and fields[i+1] ~= '' then
      args[#args+1] = fields[i]; args[#args+1] = fields[i+1]
    end
  end
  redis.call('XADD', unpack(args))
end
local function split(s)
  local out = {}
  for part in (s .. '|'):gmatch('([^|]*)|') do out[#out+1] = part end
  return out
end
-- vacate removes inc from channel's holders; the last one out vacates it.
local function vacate(inc, channel, reason, events)
  if redis.call('SREM', base .. ':occ:' .. channel, inc) == 1 then
    redis.call('SREM', base .. ':chans:' .. inc, channel)
    if redis.call('SCARD', base .. ':occ:' .. channel) == 0 and events == '1' then
      local seq = redis.call('HINCRBY', base .. ':seq', channel, 1)
      emit('channel.vacated', 'channel.vacated:' .. channel .. ':' .. seq, {'channel', channel, 'reason', reason})
    end
  end
end
-- removeSubs ends the connection's subscriptions, one event each.
local function removeSubs(conn, client, user, transport, reason)
  local key = base .. ':subs:' .. conn
  for _, channel in ipairs(redis.call('SMEMBERS', key)) do
    emit('subscription.removed', 'subscription.removed:' .. conn .. ':' .. channel,
      {'channel', channel, 'client', client, 'user', user, 'transport', transport, 'reason', reason})
  end
  redis.call('DEL', key)
end
`

// connect registers a connection: ARGV[5] inc, [6] conn, [7] client,
// [8] user, [9] transport, [10] "1" to emit.
var connectScript = redis.NewScript(prelude + `
if redis.call('HSETNX', base .. ':conns:' .. ARGV[5], ARGV[6], ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[9]) == 1 and ARGV[10] == '1' then
  emit('client.connected', 'client.connected:' .. ARGV[6], {'client', ARGV[7], 'user', ARGV[8], 'transport', ARGV[9]})
end
return 1`)

// disconnect forgets a connection: ARGV[5] inc, [6] conn, [7] reason,
// [8] "1" to emit client events.
var disconnectScript = redis.NewScript(prelude + `
local key = base .. ':conns:' .. ARGV[5]
local info = redis.call('HGET', key, ARGV[6])
if not info then return 0 end
local f = split(info)
removeSubs(ARGV[6], f[1], f[2], f[3], ARGV[7])
redis.call('HDEL', key, ARGV[6])
if ARGV[8] == '1' then
  emit('client.disconnected', 'client.disconnected:' .. ARGV[6], {'client', f[1], 'user', f[2], 'transport', f[3], 'reason', ARGV[7]})
end
return 1`)

// subscribe records a subscription: ARGV[5] inc, [6] conn, [7] channel.
var subscribeScript = redis.NewScript(prelude + `
local info = redis.call('HGET', base .. ':conns:' .. ARGV[5], ARGV[6])
if not info then return 0 end
if redis.call('SADD', base .. ':subs:' .. ARGV[6], ARGV[7]) == 1 then
  local f = split(info)
  emit('subscription.added', 'subscription.added:' .. ARGV[6] .. ':' .. ARGV[7],
    {'channel', ARGV[7], 'client', f[1], 'user', f[2], 'transport', f[3]})
end
return 1`)

// unsubscribe ends one: ARGV[5] inc, [6] conn, [7] channel, [8] reason.
var unsubscribeScript = redis.NewScript(prelude + `
local info = redis.call('HGET', base .. ':conns:' .. ARGV[5], ARGV[6])
if not info then return 0 end
if redis.call('SREM', base .. ':subs:' .. ARGV[6], ARGV[7]) == 1 then
  local f = split(info)
  emit('subscription.removed', 'subscription.removed:' .. ARGV[6] .. ':' .. ARGV[7],
    {'channel', ARGV[7], 'client', f[1], 'user', f[2], 'transport', f[3], 'reason', ARGV[8]})
end
return 1`)

// occupy adds the incarnation to a channel's holders; the first one in
// occupies it: ARGV[5] inc, [6] channel, [7] "1" to emit.
var occupyScript = redis.NewScript(prelude + `
local inc, channel = ARGV[5], ARGV[6]
if redis.call('HEXISTS', base .. ':nodes', inc) == 0 then return 0 end
if redis.call('SADD', base .. ':occ:' .. channel, inc) == 1 then
  redis.call('SADD', base .. ':chans:' .. inc, channel)
  if redis.call('SCARD', base .. ':occ:' .. channel) == 1 and ARGV[7] == '1' then
    local seq = redis.call('HINCRBY', base .. ':seq', channel, 1)
    emit('channel.occupied', 'channel.occupied:' .. channel .. ':' .. seq, {'channel', channel})
  end
end
return 1`)

// vacateScript removes it: ARGV[5] inc, [6] channel, [7] "1" to emit.
var vacateScript = redis.NewScript(prelude + `
vacate(ARGV[5], ARGV[6], '', ARGV[7])
return 1`)

// heartbeat keeps an incarnation alive: ARGV[5] inc, [6] "new" when it
// starts. It answers 0 when the incarnation was reaped meanwhile: its
// connections were reported lost.
var heartbeatScript = redis.NewScript(prelude + `
local key = base .. ':nodes'
if ARGV[6] ~= 'new' and redis.call('HEXISTS', key, ARGV[5]) == 0 then return 0 end
redis.call('HSET', key, ARGV[5], node .. '|' .. now)
return 1`)

// reap reports a dead incarnation's connections, subscriptions and
// channels lost, once: ARGV[5] inc, [6] "1" to emit client events, [7]
// "1" to emit channel events; ARGV[4] (node) names the reaper.
var reapScript = redis.NewScript(prelude + `
local inc = ARGV[5]
if redis.call('HEXISTS', base .. ':nodes', inc) == 0 then return 0 end
local dead = split(redis.call('HGET', base .. ':nodes', inc))[1]
node = dead
local conns = redis.call('HGETALL', base .. ':conns:' .. inc)
for i = 1, #conns, 2 do
  local f = split(conns[i+1])
  removeSubs(conns[i], f[1], f[2], f[3], 'node_lost')
  if ARGV[6] == '1' then
    emit('client.disconnected', 'client.disconnected:' .. conns[i], {'client', f[1], 'user', f[2], 'transport', f[3], 'reason', 'node_lost'})
  end
end
redis.call('DEL', base .. ':conns:' .. inc)
for _, channel in ipairs(redis.call('SMEMBERS', base .. ':chans:' .. inc)) do
  vacate(inc, channel, 'node_lost', ARGV[7])
end
redis.call('DEL', base .. ':chans:' .. inc)
redis.call('HDEL', base .. ':nodes', inc)
return 1`)
