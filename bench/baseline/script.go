package baseline

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// applyScript applies n position updates of one profile atomically, in
// order, refusing each whose version is not larger than the stored one —
// playhead's max-register rule and 409: versions are ordered by
// (epoch, seq, session) compared left to right, and an equal version is
// stale too.
//
// KEYS[i] is update i's cursor hash (fields e, s, sess, c); all keys of a
// call share the profile's hash tag, so the script is Redis Cluster safe.
// ARGV[1] is the profile's pub/sub channel, then four values per update:
// epoch and seq as 20-digit zero-padded decimals (so string order is numeric
// order, with no loss of 64-bit precision in Lua's doubles), the session as
// lower-case hex (so string order is byte order whatever the collation
// locale), and the cursor JSON. An applied update is stored and PUBLISHed.
// Returns one {applied (1 or 0), cursor JSON stored after it} per update.
const applyScript = `
local out = {}
for i = 1, #KEYS do
  local a = 4 * i - 2
  local e, s, sess, c = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local cur = redis.call('HMGET', KEYS[i], 'e', 's', 'sess', 'c')
  local stale = false
  if cur[1] then
    if e < cur[1] then stale = true
    elseif e == cur[1] then
      if s < cur[2] then stale = true
      elseif s == cur[2] and sess <= cur[3] then stale = true end
    end
  end
  if stale then
    out[i] = {0, cur[4]}
  else
    redis.call('HSET', KEYS[i], 'e', e, 's', s, 'sess', sess, 'c', c)
    redis.call('PUBLISH', ARGV[1], c)
    out[i] = {1, c}
  end
end
return out
`

// Script is the stale-refusing apply script; Server loads it at start so
// the hot path is EVALSHA.
var Script = redis.NewScript(applyScript)

// Version is a cursor's order key.
type Version struct {
	Epoch, Seq uint64
	Session    string
}

// Key is the Redis key of a cursor: the account and profile in the hash tag,
// so one profile's cursors live on one Redis Cluster slot.
func Key(account, profile, video string) string {
	return "pos:{" + account + "/" + profile + "}:" + video
}

// Channel is the pub/sub channel of a profile's pushes.
func Channel(account, profile string) string { return "ev:" + account + "/" + profile }

// Write is one update for Apply: where it goes, its version and the cursor
// JSON to store.
type Write struct {
	Key    string
	V      Version
	Cursor string
}

// Applied is Apply's answer for one Write.
type Applied struct {
	Applied bool
	Cursor  string // the cursor stored after the write (the current one when stale)
}

func pad20(v uint64) string { return fmt.Sprintf("%020d", v) }

// Apply runs the script for ws (one profile) and publishes on channel.
func Apply(ctx context.Context, rdb redis.Scripter, channel string, ws []Write) ([]Applied, error) {
	keys := make([]string, len(ws))
	args := make([]any, 1, 1+4*len(ws))
	args[0] = channel
	for i, w := range ws {
		keys[i] = w.Key
		args = append(args, pad20(w.V.Epoch), pad20(w.V.Seq), hex.EncodeToString([]byte(w.V.Session)), w.Cursor)
	}
	v, err := Script.Run(ctx, rdb, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	rows, ok := v.([]any)
	if !ok || len(rows) != len(ws) {
		return nil, fmt.Errorf("baseline: script answered %T with %d rows for %d writes", v, len(rows), len(ws))
	}
	out := make([]Applied, len(ws))
	for i, row := range rows {
		pair, _ := row.([]any)
		if len(pair) != 2 {
			return nil, fmt.Errorf("baseline: script row %d is %v", i, row)
		}
		n, _ := pair[0].(int64)
		s, _ := pair[1].(string)
		out[i] = Applied{Applied: n == 1, Cursor: s}
	}
	return out, nil
}
