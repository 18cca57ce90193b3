package clustersim

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/playhead/playhead/client"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Push delivery to simulated devices (DESIGN.md §5, "Push").
//
// The model is the node's side of a push stream (node/hub.go and
// node/events.go) and the device's side (client/subscribe.go and
// client/filter.go), over the events the real Core releases:
//
//   - A subscribed device holds one stream, on one node. Opening it registers
//     the profile with that node's Core (Sim.SetInterest: the hub's first
//     subscriber, and the renewal from Hub.Refs), which leases interest from
//     the profile's owners.
//   - The node's Ready.Events (what the Core hands to gossip.Notifier: its
//     own changes and the MsgEvents of owners) go to every stream of the
//     event's profile on that node, at once and in order.
//   - A stream breaks when its node crashes. The device reconnects after a
//     backoff, to the node it talks to (or another one that is up), with
//     after=<resume point>: the node subscribes first, tells its Core the
//     stream resumes from there (Sim.ResumePush: the catch-up window widens
//     to it), then reads the profile's cursors (OpCursors through the
//     coordinator, as svc.Cursors does) and sends those with updated_hlc >
//     after before the live events that came meanwhile, skipping a live
//     cursor the replay already carried. A failed replay read fails the
//     stream; the device tries again later.
//   - The first stream has no after= (Subscribe, not SubscribeAfter): the
//     resume point starts at the node's HLC held back by
//     client.ResumeHoldBack, and never follows the cursors received.
//   - The device runs the SDK's client.EventFilter: a cursor event that is not
//     news is dropped; a cleared event makes the video (or all) news again.
//
// The run's history records, per device: the raw cursor versions received
// (push-delivery checker) and every version the device's app observed —
// a read answer, or a push the filter let through (observation
// monotonicity checker).

// pushSub is a device's subscription.
type pushSub struct {
	since  int64 // when the device subscribed (virtual ms)
	filter *client.EventFilter
	// The stream now open: its node (1-based index and the Node it was
	// opened on: a restart makes a new one), 0 while cut off.
	on     int
	onNode *Node
	// The node's stream state: the replay read in flight (0: none), live
	// events held until it is answered, what the replay sent per video.
	replayID uint64
	holding  bool // events are held: from subscribing until the replay is sent
	held     []gossip.Event
	seen     map[string]crdt.HLC
	// floor is the stream's after= (0 without): no cursor at or below it
	// is sent live (node/events.go, stream.floor).
	floor   crdt.HLC
	retryAt int64
	// got is the largest cursor version received per video (raw, before
	// the device's filter).
	got map[string]crdt.Version
	// Counters for the report.
	pushes, replays, reconnects int
}

// obsState is what a device's app last observed of one video.
type obsState struct {
	max  crdt.Version
	at   int64
	kind string // how it was observed: "read" or "push"
}

// regression is an observation of a smaller version than one the same
// device observed before; the checker decides at the end whether a delete
// explains it.
type regression struct {
	dev      *device
	video    string
	from, to crdt.Version
	fromAt   int64
	at       int64
	fromKind string
	kind     string
}

// observe records that device d's app saw version v of video (v zero: a
// read found no cursor).
func (r *runner) observe(d *device, video string, v crdt.Version, kind string) {
	if d.obs == nil {
		d.obs = map[string]*obsState{}
	}
	o := d.obs[video]
	if o == nil {
		o = &obsState{}
		d.obs[video] = o
	}
	if !v.IsZero() {
		d.saw(video, v)
	}
	if v.Less(o.max) {
		r.regressions = append(r.regressions, regression{dev: d, video: video, from: o.max, to: v, fromAt: o.at, at: r.s.Now(), fromKind: o.kind, kind: kind})
	}
	o.max, o.at, o.kind = v, r.s.Now(), kind
}

// onEvents is the Sim's OnEvents hook: node n's Notifier input, routed to
// the streams open on n.
func (r *runner) onEvents(n *Node, evs []gossip.Event) {
	byRef := r.streams[n.ID]
	if len(byRef) == 0 {
		return
	}
	for _, ev := range evs {
		for _, d := range byRef[ev.Ref] {
			if d.sub.onNode == n {
				r.streamEvent(d, ev, false)
			}
		}
	}
}

// streamEvent is the node's stream sending ev to d (node/events.go).
func (r *runner) streamEvent(d *device, ev gossip.Event, fromReplay bool) {
	st := d.sub
	if !fromReplay && st.holding {
		st.held = append(st.held, ev) // waits in the subscription's buffer
		return
	}
	if ev.Type == gossip.EventCursor && !fromReplay && (ev.Cursor.UpdatedHLC <= st.seen[ev.Cursor.Video] || ev.Cursor.UpdatedHLC <= st.floor) {
		return // the replay carried it, or the device holds it
	}
	r.deviceEvent(d, ev)
}

// deviceEvent is the device receiving ev (client/subscribe.go).
func (r *runner) deviceEvent(d *device, ev gossip.Event) {
	st := d.sub
	st.pushes++
	r.s.record("push", ring.NodeID(d.name), ring.NodeID(ev.Video), uint64(ev.Type), uint64(ev.Cursor.Version.Seq))
	ce := client.Event{Video: ev.Video, Entry: ev.Entry}
	switch ev.Type {
	case gossip.EventCursor:
		ce.Type = "cursor"
		c := ev.Cursor
		ce.Cursor = &client.Cursor{Video: c.Video, Session: c.Version.Session, Device: c.Device, Epoch: c.Version.Epoch,
			Seq: c.Version.Seq, UpdatedHLC: c.UpdatedHLC, PositionMs: c.PositionMs, DurationMs: c.DurationMs}
		if g := st.got[c.Video]; g.Less(c.Version) {
			st.got[c.Video] = c.Version
		}
		// The SDK drops a push below what the device was already shown of
		// the video, by a read or its own write, outside this stream too
		// (client/subscribe.go, olderThanSeen).
		if c.Version.Less(d.seen[c.Video]) {
			return
		}
	case gossip.EventTakeover:
		ce.Type = "takeover"
	case gossip.EventCleared:
		ce.Type = "cleared"
	default:
		return
	}
	if !st.filter.Accept(&ce) {
		return
	}
	switch {
	case ce.Cursor != nil:
		r.observe(d, ce.Cursor.Video, ce.Cursor.Version(), "push")
	case ce.Type == "cleared" && ce.Entry == "":
		// After a delete the SDK forgets what it saw (client/seen.go).
		if ce.Video == "" {
			clear(d.seen)
		} else {
			delete(d.seen, ce.Video)
		}
	}
}

// drivePush subscribes devices whose time has come, notices broken
// streams, reconnects them and takes replay answers.
func (r *runner) drivePush() {
	s := r.s
	for _, d := range r.devs {
		st := d.sub
		if st == nil {
			if d.subscribeAt == 0 || s.Now() < d.subscribeAt || !s.Node(d.node).Up {
				continue
			}
			st = &pushSub{since: s.Now(), got: map[string]crdt.Version{}}
			d.sub = st
			// Subscribe: the resume point starts at the node's HLC, held
			// back (client.ResumePointAt); no replay.
			st.filter = client.NewEventFilter(client.ResumePointAt(s.NodeHLC(d.node)))
			r.openStream(d, d.node, false)
			continue
		}
		if st.on != 0 && (st.onNode != s.Node(st.on) || !st.onNode.Up) {
			// The node crashed: the connection broke.
			r.closeStream(d)
			st.retryAt = s.Now() + 500 + d.rng.Int64N(2_000)
		}
		if st.replayID != 0 {
			c, ok := s.Result(st.replayID)
			if !ok {
				continue
			}
			st.replayID = 0
			if c.Err != nil {
				// The stream request failed (svc.Cursors): try again later.
				r.closeStream(d)
				st.retryAt = s.Now() + 500 + d.rng.Int64N(2_000)
				continue
			}
			after := st.filter.After()
			var replay []crdt.Cursor
			for _, cur := range c.Res.Cursors {
				if cur.UpdatedHLC > after {
					replay = append(replay, cur)
				}
			}
			slices.SortStableFunc(replay, func(a, b crdt.Cursor) int { return cmp.Compare(a.UpdatedHLC, b.UpdatedHLC) })
			for _, cur := range replay {
				st.replays++
				st.seen[cur.Video] = max(st.seen[cur.Video], cur.UpdatedHLC)
				r.streamEvent(d, gossip.Event{Ref: d.ref, Type: gossip.EventCursor, Cursor: cur, Video: cur.Video}, true)
			}
			held := st.held
			st.held, st.holding = nil, false
			for _, ev := range held {
				r.streamEvent(d, ev, false)
			}
			continue
		}
		if st.on == 0 && s.Now() >= st.retryAt {
			i := d.node
			if !s.Node(i).Up {
				var up []int
				for j, n := range s.Nodes() {
					if n.Up {
						up = append(up, j+1)
					}
				}
				if len(up) == 0 {
					continue
				}
				i = up[d.rng.IntN(len(up))]
			}
			st.reconnects++
			r.openStream(d, i, true)
		}
	}
}

// openStream opens d's stream on node i: subscribe (register interest),
// then, with after=, read the replay.
func (r *runner) openStream(d *device, i int, withAfter bool) {
	s, st := r.s, d.sub
	n := s.Node(i)
	st.on, st.onNode, st.seen, st.held, st.floor = i, n, map[string]crdt.HLC{}, nil, 0
	if withAfter {
		st.floor = st.filter.After()
	}
	// A stream that opens with a replay holds events from the moment it
	// subscribes (node/events.go): events the owners hand over while the
	// interest is registered must not reach the device before the replay,
	// or they would move its watermark past a change the replay carries.
	st.holding = withAfter
	if r.streams[n.ID] == nil {
		r.streams[n.ID] = map[gossip.Ref][]*device{}
	}
	first := len(r.streams[n.ID][d.ref]) == 0
	r.streams[n.ID][d.ref] = append(r.streams[n.ID][d.ref], d)
	if first {
		r.setInterest(i)
	}
	if withAfter {
		s.ResumePush(i, d.ref, st.filter.After())
		st.replayID = s.Submit(i, gossip.Op{Kind: gossip.OpCursors, Ref: d.ref, ReadQuorum: 2})
	}
}

// closeStream ends d's stream (the node's subscription closes).
func (r *runner) closeStream(d *device) {
	st := d.sub
	if st.on == 0 {
		return
	}
	id := st.onNode.ID
	list := slices.DeleteFunc(r.streams[id][d.ref], func(x *device) bool { return x == d })
	if len(list) == 0 {
		delete(r.streams[id], d.ref)
	} else {
		r.streams[id][d.ref] = list
	}
	if st.onNode == r.s.Node(st.on) && st.onNode.Up {
		r.setInterest(st.on)
	}
	st.on, st.onNode, st.replayID, st.held, st.holding = 0, nil, 0, nil, false
}

// setInterest gives node i the profiles its streams follow (Hub.Refs).
func (r *runner) setInterest(i int) {
	n := r.s.Node(i)
	var refs []gossip.Ref
	for ref, list := range r.streams[n.ID] {
		if slices.ContainsFunc(list, func(d *device) bool { return d.sub.onNode == n }) {
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b gossip.Ref) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Profile, b.Profile))
	})
	r.s.SetInterest(i, refs)
}

// pushQuiet reports whether every subscribed device has a stream open with
// no replay in flight.
func (r *runner) pushQuiet() bool {
	for _, d := range r.devs {
		if d.sub != nil && (d.sub.on == 0 || d.sub.replayID != 0) {
			return false
		}
	}
	return true
}

// finalCursor returns key k's converged cursor (read from its first live
// owner) and the HLC at or below which it is cleared.
func (r *runner) finalCursor(k writeKey) (crdt.Cursor, crdt.HLC, bool) {
	s := r.s
	p := ring.PartitionOf(k.ref.Account, k.ref.Profile, s.opts.Partitions)
	for _, o := range s.Table().OwnersOf(p) {
		n := s.node(o)
		if n == nil || !n.Up {
			continue
		}
		rec, ok := r.stored(n, k)
		profRec, _, _ := n.Store.Get(storageKeyProfile(p, k.ref))
		cleared := max(rec.Cursor.ClearedAt, profRec.Profile.ClearedAt)
		return rec.Cursor, cleared, ok
	}
	return crdt.Cursor{}, 0, false
}

// checkPushDelivery: once faults stop and the run is quiet, every
// subscribed device has received, for every video of its profile whose
// converged cursor was written after the device subscribed, a push of that
// cursor or of a later version.
//
// Faults do not excuse a missed push: a push lost on the way (a link's
// loss, a partition) or never sent (the coordinating owner had just
// restarted, with no interest leased yet) reaches the device's node by the
// catch-up of the next interest renewal (gossip/push.go), without the
// device reconnecting. RunOptions.LaxPush counts only cursors written after
// the first liveness phase, as the checker did before that catch-up.
func (r *runner) checkPushDelivery() {
	from := len(r.viol)
	byRef := map[gossip.Ref][]writeKey{}
	for _, k := range sortedWriteKeys(r.writes) {
		byRef[k.ref] = append(byRef[k.ref], k)
	}
	for _, d := range r.devs {
		if d.sub == nil {
			continue
		}
		r.rep.Pushes += d.sub.pushes
		r.rep.Reconnects += d.sub.reconnects
		for _, k := range byRef[d.ref] {
			c, cleared, ok := r.finalCursor(k)
			if !ok || c.Version.IsZero() || c.Version.Seq <= cleared {
				continue // no visible cursor: nothing to push
			}
			at, ok := r.submitAt[k][c.Version]
			if !ok || at < d.sub.since {
				continue // written before the device subscribed
			}
			if r.o.LaxPush && at < r.quietAt {
				continue // written while faults could lose its push
			}
			if got := d.sub.got[k.video]; got.Less(c.Version) {
				r.violate("push-delivery", "%s (subscribed at +%dms on n%d, %d reconnects) never received %s/%s at %v (submitted at +%dms, by %s); the largest it received: %v",
					d.name, d.sub.since-r.start, d.sub.on, d.sub.reconnects, k.ref.Profile, k.video, c.Version, at-r.start, c.Device, got)
			}
		}
	}
	r.mark("push-delivery", from)
}

// checkObservations: no device's app observes a cursor version go back —
// a read answer or a push its filter let through carries no smaller
// version than one it observed before for that video — unless a delete of
// the video or of the profile, asked before the later observation, cleared
// the larger version.
//
// A regression that involves a read answer (a read below an earlier read
// or push, or a push below an earlier read) fails the check only with
// RunOptions.StrictReads: with read_quorum 1 the owner that coordinates a
// read may not hold what the device was pushed (the coordinator pushes at
// its own durable flush, before the quorum) or acknowledged (an owner back
// from a crash serves reads before hints and anti-entropy reach it); the
// SDK's Resume passes the answer on as it is, and its push filter does not
// know what Resume returned, so an older push repaired onto a lagging
// replica gets through after a newer read. Without StrictReads these are
// counted in the report's check line; push-after-push regressions always
// fail.
func (r *runner) checkObservations() {
	from := len(r.viol)
	reads := 0
	for _, g := range r.regressions {
		k := writeKey{g.dev.ref, g.video}
		_, cleared, _ := r.finalCursor(k)
		deleted := false
		for _, t := range append(slices.Clone(r.delAsked[k]), r.profAsked[k.ref]...) {
			if t <= g.at {
				deleted = true
			}
		}
		if deleted && g.from.Seq <= cleared {
			continue
		}
		if (g.kind == "read" || g.fromKind == "read") && r.o.LaxReads {
			reads++
			continue
		}
		r.violate("device-monotonic", "%s observed %s/%s at %v by a %s (at +%dms), then %v by a %s (at +%dms; deletes asked: %v, cleared at %d)",
			g.dev.name, k.ref.Profile, g.video, g.from, g.fromKind, g.fromAt-r.start, g.to, g.kind, g.at-r.start, deleted, cleared)
	}
	r.mark("device-monotonic", from)
	if reads > 0 {
		r.rep.Checks = append(r.rep.Checks, fmt.Sprintf("device-monotonic (reads, not enforced with LaxReads): %d observations involving a read went back", reads))
	}
}

func storageKeyProfile(p uint16, ref gossip.Ref) storage.Key {
	return storage.Key{Partition: p, Account: ref.Account, Profile: ref.Profile, Kind: crdt.KindProfile}
}
