package gossip

import (
	"time"

	"github.com/playhead/playhead/gossip/ring"
)

// Duplicate requests. A transport may deliver a frame twice (after a
// reconnect), and merges make every other message safe to take twice. A
// forwarded request is not: its coordinator stamps node-stamped updates
// with its clock, so a second execution is a new, larger version of an old
// position — a copy of "12:00" arriving after "12:10" of the same session
// would move the cursor back. So a Core remembers the (origin, request id)
// of every request it took from a peer for dedupWindow and drops copies.
// Request ids are unique per origin, also across its restarts (they start
// from its clock).

// forwardDedup is the set of recently taken requests. Entries expire in
// the order they were added (the Core's time never goes back), so expiry
// pops from the front of a queue: O(1) per request.
type forwardDedup struct {
	taken map[dedupKey]struct{}
	queue []dedupEntry
}

type dedupKey struct {
	origin ring.NodeID
	reqID  uint64
}

type dedupEntry struct {
	key   dedupKey
	until int64
}

// dedupWindow is how long a taken request is remembered: long past the
// origin's own timeout, and past any redelivery by a reconnecting
// transport (its backoff is capped well below it).
func (c *Core) dedupWindow() int64 {
	return max(5*c.cfg.RequestTimeout, 10*time.Second).Milliseconds()
}

// seen reports whether the request was taken already, and remembers it if
// not.
func (d *forwardDedup) seen(origin ring.NodeID, reqID uint64, nowMs, windowMs int64) bool {
	k := dedupKey{origin, reqID}
	if _, ok := d.taken[k]; ok {
		return true
	}
	if d.taken == nil {
		d.taken = map[dedupKey]struct{}{}
	}
	d.taken[k] = struct{}{}
	d.queue = append(d.queue, dedupEntry{key: k, until: nowMs + windowMs})
	return false
}

// expire forgets the requests taken more than the window ago.
func (d *forwardDedup) expire(nowMs int64) {
	i := 0
	for i < len(d.queue) && d.queue[i].until <= nowMs {
		delete(d.taken, d.queue[i].key)
		i++
	}
	d.queue = d.queue[i:] // append reallocates, dropping the expired prefix
	if len(d.queue) == 0 {
		d.queue = nil
	}
}
