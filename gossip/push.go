package gossip

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"slices"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/internal/bufstore"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Push catch-up: interest renewal as anti-entropy for pushes.
//
// A change is pushed once, by the owner that coordinates it, to the nodes
// whose interest it holds in memory. A push lost on the way (a link's loss,
// a partition) or never sent (the owner restarted and had no interest yet)
// would otherwise never be re-sent, and a device whose stream stays open
// never replays (found by the simulator's push-delivery check). So every
// renewal of interest in a profile carries a mark of what this
// node was pushed of it: Since (the node's clock when its subscribers
// started following the profile, less a lease for clock skew) and Sum, a
// commutative hash of (video, newest UpdatedHLC received) over the videos
// whose cursor events it received above Since; a cleared event for a video
// (or the whole profile) drops what was noted of it. The partition's
// coordinator — each owner gets the renewal, the one that believes itself
// the first live owner answers — computes the same sum over its live
// cursors with UpdatedHLC above Since and, if the sums differ, sends those
// cursors (the newest maxCatchUp) as ordinary cursor events, at its next
// Flush, so from its durable state only. When they are all of them the
// message also carries the profile and the owner's mark, and the receiver
// resets what it noted to them, so a cursor it noted that has since been
// cleared or expired stops making the sums differ. Devices drop versions
// they already have, so a catch-up that crosses a live push costs a
// duplicate, nothing more.
//
// A mark notes what the node was pushed, not what each of its streams got:
// a stream that opens resuming from an earlier point (a device back from a
// break) resets the mark to that point (ResumePush), so that what the node
// received while the device was away, and the stream's replay lacked, is
// sent again.
//
// A catch-up carries cursors, not clears: a cleared event has no version,
// so a device cannot tell a re-sent one from a new one, and its filter
// would forget what it saw of the video each time (letting an older cursor
// of a lagging owner through). A device that missed a clear sees it on its
// next read or reconnect.

// maxCatchUp bounds the cursor events of one catch-up (the newest are
// sent; a profile rarely has more changed since a subscription started —
// a stream that resumes widens the window to its device's resume point,
// so it holds more than the first lease's worth).
const maxCatchUp = 256

// pushMark is what this node's subscribers were pushed of one profile.
type pushMark struct {
	since crdt.HLC
	seen  map[string]crdt.HLC // video → newest UpdatedHLC received
}

func (m *pushMark) interestMark() InterestMark {
	var sum uint64
	for v, h := range m.seen {
		sum += pushHash(v, h)
	}
	return InterestMark{Since: m.since, Sum: sum}
}

// pushHash is one video's term of an InterestMark's Sum. FORMAT: see bucketOf.
func pushHash(video string, h crdt.HLC) uint64 {
	f := fnv.New64a()
	f.Write([]byte(video))
	var b [9]byte
	b[0] = 0xff
	binary.BigEndian.PutUint64(b[1:], uint64(h))
	f.Write(b[:])
	return bufstore.Mix64(f.Sum64())
}

// catchUp is a mark an interested node sent this coordinator, to answer at
// the next Flush.
type catchUp struct {
	to   ring.NodeID
	ref  Ref
	mark InterestMark
}

// markOf returns the mark of a profile this node follows, starting one.
func (c *Core) markOf(r Ref) *pushMark {
	m := c.marks[r]
	if m == nil {
		m = &pushMark{since: crdt.NewHLC(max(0, c.nowMs-c.cfg.InterestLease.Milliseconds()), 0), seen: map[string]crdt.HLC{}}
		c.marks[r] = m
	}
	return m
}

// ResumePush is told that a push stream of ref opened on this node resuming
// from since: its device holds, or does not need, every change of ref
// stamped at or below since, and nothing else is known of what it holds
// (DESIGN.md §7, push guarantee). What this node noted as pushed of ref says
// nothing of what the new stream got — the node may have received a change
// while the device was away, and the stream's replay, read from two owners,
// may lack it — so the mark widens to since and forgets what it noted, and
// a renewal goes to the owners at once: the coordinator's catch-up then
// re-sends every live cursor above since that it holds (the streams drop
// what they already sent, the device what it holds), and later renewals
// keep comparing until the node holds what the coordinator holds. A ref
// nobody follows here is ignored (the stream's first subscriber adds it).
func (c *Core) ResumePush(ref Ref, since crdt.HLC) {
	if _, ok := c.wanted[ref]; !ok {
		return
	}
	m := c.markOf(ref)
	m.since = min(m.since, since)
	clear(m.seen)
	c.sendInterest([]Ref{ref})
}

// deliverEvents hands events to this node's subscribers (Ready.Events)
// and notes them in the marks of the profiles it follows.
func (c *Core) deliverEvents(evs ...Event) {
	c.ready.Events = append(c.ready.Events, evs...)
	for i := range evs {
		ev := &evs[i]
		m := c.marks[ev.Ref]
		if m == nil {
			continue
		}
		switch ev.Type {
		case EventCursor, EventTakeover:
			if h := ev.Cursor.UpdatedHLC; h > m.since && h > m.seen[ev.Video] {
				m.seen[ev.Video] = h
			}
		case EventCleared:
			switch {
			case ev.Entry != "": // one entry: the cursor stays
			case ev.Video == "":
				clear(m.seen)
			default:
				delete(m.seen, ev.Video)
			}
		}
	}
}

// onEvents takes pushed events; a complete catch-up first resets what was
// noted of its profile (keeping newer versions than it carries).
func (c *Core) onEvents(m Msg) {
	if len(m.Refs) == 1 && len(m.Marks) == 1 {
		if mk := c.marks[m.Refs[0]]; mk != nil && mk.since == m.Marks[0].Since {
			old := mk.seen
			mk.seen = map[string]crdt.HLC{}
			c.deliverEvents(m.Events...)
			for v, h := range old {
				if got, ok := mk.seen[v]; ok && h > got {
					mk.seen[v] = h
				}
			}
			return
		}
	}
	c.deliverEvents(m.Events...)
}

// queueCatchUps takes the marks of a renewal: the partitions this node
// coordinates (and has finished pulling) are answered at the next Flush.
func (c *Core) queueCatchUps(from ring.NodeID, m Msg) {
	if len(m.Marks) != len(m.Refs) || !c.haveTable {
		return
	}
	for i, r := range m.Refs {
		p := c.Partition(r)
		if co, ok := c.coordinatorOf(p); !ok || co != c.cfg.Self {
			continue
		}
		if _, pulling := c.handoff[p]; pulling {
			continue
		}
		cu := catchUp{to: from, ref: r, mark: m.Marks[i]}
		if _, dup := c.queued[cu]; !dup {
			c.queued[cu] = struct{}{}
			c.catchUps = append(c.catchUps, cu)
		}
	}
}

// runCatchUps answers the queued marks from the durable state (called by
// Flush once the overlay is written).
func (c *Core) runCatchUps() {
	cus := c.catchUps
	c.catchUps = nil
	clear(c.queued)
	for _, cu := range cus {
		evs, sum, err := c.liveSince(cu.ref, cu.mark.Since)
		if err != nil {
			// Skipped: the follower's next renewal asks again.
			c.stats.StoreErrors++
			continue
		}
		if sum == cu.mark.Sum {
			continue
		}
		m := Msg{Type: MsgEvents}
		if len(evs) > maxCatchUp {
			evs = evs[len(evs)-maxCatchUp:]
		} else {
			m.Refs, m.Marks = []Ref{cu.ref}, []InterestMark{{Since: cu.mark.Since, Sum: sum}}
		}
		m.Events = evs
		c.stats.CatchUps++
		if cu.to == c.cfg.Self {
			c.onEvents(m) // this node's own subscribers
			continue
		}
		c.stats.EventsSent += uint64(len(evs))
		c.send(cu.to, m)
	}
}

// liveSince returns the live cursors of ref updated above since, as push
// events oldest first, and the Sum of their mark.
func (c *Core) liveSince(ref Ref, since crdt.HLC) ([]Event, uint64, error) {
	p := c.Partition(ref)
	prof, _, err := c.buf.Get(storage.Key{Partition: p, Account: ref.Account, Profile: ref.Profile, Kind: crdt.KindProfile})
	if err != nil {
		return nil, 0, err
	}
	pol := c.Policy()
	var evs []Event
	var sum uint64
	err = c.buf.ScanProfile(p, ref.Account, ref.Profile, crdt.KindCursor, func(k storage.Key, r crdt.Record) error {
		cur := r.Cursor
		cur.Video = k.ID
		if cur.UpdatedHLC <= since || !cur.Live(prof.Profile, pol, c.nowMs) {
			return nil
		}
		sum += pushHash(cur.Video, cur.UpdatedHLC)
		evs = append(evs, Event{Ref: ref, Type: EventCursor, Cursor: cur.Shown(prof.Profile), Video: cur.Video})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.Cursor.UpdatedHLC, b.Cursor.UpdatedHLC) })
	return evs, sum, nil
}
