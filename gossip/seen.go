package gossip

import (
	"context"
	"fmt"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
)

// Session-consistent reads. A device's resume position must never go back:
// once it has seen a version of a video's cursor — pushed, read, or its
// own acknowledged write — no read through any node may answer an older
// one. The device sends the largest version it has seen with the read
// (Op.Seen; the Playhead-Seen header, which the SDK sets), the way Cosmos
// DB's session token or MongoDB's afterClusterTime work.
//
// The coordinator serves such a read from its own copy when that copy
// covers Seen: the stored cursor's version is at or above it, or a delete
// of the video or of the profile covers it (the device may then be told
// there is no cursor: the version it saw was deleted after it). Otherwise
// its copy lags (it became the coordinator after a failover, or came back
// from a crash before repair reached it): it reads every live owner of the
// partition, merges their copies and repairs the owners (quorumread.go),
// and answers from the merged state if that covers Seen. If it still does
// not, no reachable owner has the version the device saw (the owner that
// has it is down or cut off): the answer is ErrUnavailable, which the node
// turns into 503 with Retry-After, and the device keeps showing what it
// has. It never regresses.

// covers reports whether this node's stored state of op's video is at or
// above op.Seen.
func (c *Core) covers(op Op) bool {
	if op.Seen.IsZero() {
		return true
	}
	r := c.rules
	cur, err := r.get(c.buf, r.key(op.Ref, crdt.KindCursor, op.Video))
	if err != nil {
		return false
	}
	if !cur.Cursor.Version.Less(op.Seen) || cur.Cursor.ClearedAt >= op.Seen.Seq {
		return true
	}
	prof, err := r.get(c.buf, r.key(op.Ref, crdt.KindProfile, ""))
	return err == nil && prof.Profile.ClearedAt >= op.Seen.Seq
}

// readSeen starts a session-consistent read whose version this node's copy
// does not cover: a read of every live owner. It reports false when the
// local copy covers op.Seen (the caller reads locally).
func (c *Core) readSeen(origin ring.NodeID, reqID uint64, op Op) bool {
	if op.Kind != OpCursor || c.covers(op) {
		return false
	}
	c.stats.SeenEscalations++
	live := 0
	for _, o := range c.table.OwnersOf(c.Partition(op.Ref)) {
		if o == c.cfg.Self || c.isAlive(o) {
			live++
		}
	}
	if live <= 1 {
		c.answer(origin, reqID, op, Result{}, errNotSeen(op), false)
		return true
	}
	op.ReadQuorum = live
	return c.startQuorumRead(origin, reqID, op)
}

func errNotSeen(op Op) error {
	return fmt.Errorf("%w: no reachable replica has version %v of %q that this device has seen yet; retry shortly", ErrUnavailable, op.Seen, op.Video)
}

type seenKey struct{}

// WithSeen asks a read of one video's cursor (Service.Cursor through a
// Driver) for an answer at or above version seen: the largest version of
// that cursor the device has seen.
func WithSeen(ctx context.Context, seen crdt.Version) context.Context {
	if seen.IsZero() {
		return ctx
	}
	return context.WithValue(ctx, seenKey{}, seen)
}

// SeenOf is the version WithSeen put in ctx.
func SeenOf(ctx context.Context) crdt.Version {
	v, _ := ctx.Value(seenKey{}).(crdt.Version)
	return v
}
