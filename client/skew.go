package client

import (
	"errors"
	"net/http"
	"strings"

	"github.com/playhead/playhead/crdt"
)

// This file holds the recovery from a clock-skew refusal.
//
// A node refuses (400) a write whose epoch or seq lies more than
// max_clock_skew ahead of its own clock (DESIGN.md §3). When that happens
// the device's HLC has been pushed ahead by its wrong wall clock, and since
// a crdt.Clock never goes back, every later stamp would be refused too. So
// on such a refusal the Client:
//
//  1. replaces its HLC by a new one that starts at the largest HLC the
//     nodes have shown it (Playhead-HLC headers and the versions of the
//     cursors they returned): new stamps come from the corrected device
//     clock (NowMs, which the refusal's Playhead-HLC has just set), and
//     still lie above every version the device has seen;
//  2. gives the queued updates stamped ahead of the node's clock as the
//     device knows it (max of that largest HLC and NowMs, plus
//     ClockSyncThreshold) — the ones the old clock stamped from the future
//     — fresh versions from the new clock, in their version order (so
//     their true order is kept); an update whose epoch was stamped from the
//     future opens a new epoch (epoch = seq), one whose epoch is older keeps
//     it. Queued updates stamped in step keep their versions (and the new
//     clock starts above them);
//  3. sends the refused update once more, re-stamped the same way — or not
//     at all if re-stamping does not change it (the same version would be
//     refused again). If the node refuses it again, it is dropped: a stamped
//     update is never retried in a loop (one reset per Report, and per
//     Flush).
//
// The sessions stay as they are; none needs restarting. The node refuses a
// new epoch (crdt.ErrEpochBehind, Update.CheckSession) only when it lies
// below the session's last stored seq; the refused writes were never
// stored, and the new clock starts above every version the nodes returned
// to this device, so every epoch it opens is above the seqs this device
// knows of. (The one case left — a write stored with a stamp ahead but
// within max_clock_skew whose answer was lost, of a session whose queued
// update is then re-stamped with a new epoch — gets a 400 and is dropped,
// as any refused write is; the session's position stored on the node
// stays.)
//
// Trackers made with Client.NewTracker stamp from the new clock; one whose
// epoch came from the old clock opens a new epoch with its next update
// (see Tracker).

// ClockSkew reports whether the node refused the write because its epoch or
// seq lay too far ahead of the node's clock (more than max_clock_skew): the
// device clock ran ahead. The node says so with a 400 bad_request whose
// message carries crdt.ErrClockSkew's text.
func (e *APIError) ClockSkew() bool {
	// The node names max_clock_skew in the message (docs/API.md); nodes
	// before it said crdt.ErrClockSkew's text.
	return e.Status == http.StatusBadRequest &&
		(strings.Contains(e.Message, "max_clock_skew") || strings.Contains(e.Message, crdt.ErrClockSkew.Error()))
}

// isClockSkew reports whether err is a node's clock-skew refusal.
func isClockSkew(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.ClockSkew()
}

// restamped is a queued update that a clock reset gave a new version.
type restamped struct {
	profile  string
	old, new crdt.Update
}

// clockReset is the outcome of recoverClockSkew: the new clock, the point
// it restarted from, and the queued updates it re-stamped.
type clockReset struct {
	clock *crdt.Clock
	// from: updates stamped above it came from the old, too-far-ahead clock.
	from crdt.HLC
	// nowMs is the corrected device time the new stamps are taken at.
	nowMs int64
	moved []restamped
}

// restamp returns u with a fresh version from the new clock, and true,
// when u was stamped above from; else u unchanged and false.
func (r *clockReset) restamp(u crdt.Update) (crdt.Update, bool) {
	return restampUpdate(u, r.from, func() crdt.HLC { return r.clock.Now(r.nowMs) })
}

// restampUpdate gives u a fresh seq from next when its epoch or seq lies
// above from; an epoch above from is replaced by that seq (a new epoch),
// an older one is kept (next is above from, so seq stays >= epoch).
func restampUpdate(u crdt.Update, from crdt.HLC, next func() crdt.HLC) (crdt.Update, bool) {
	if max(u.Epoch, u.Seq) <= from {
		return u, false
	}
	u.Seq = next()
	if u.Epoch > from { // 0 (the node stamps it) stays 0
		u.Epoch = u.Seq
	}
	return u, true
}

// recoverClockSkew handles a clock-skew refusal (see the top of this file):
// it replaces the HLC and re-stamps the queue. The refused update is the
// caller's to re-stamp, with the returned reset.
func (c *Client) recoverClockSkew(cause error) *clockReset {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.clock.Load()
	r := &clockReset{clock: &crdt.Clock{}, nowMs: c.cfg.Clock.NowMs() + c.offsetMs}
	// Stamps up to the node's clock as this device knows it (its
	// Playhead-HLC, or NowMs, which follows it), with ClockSyncThreshold of
	// slack, are in step with the node; above that, the old clock ran ahead.
	r.from = crdt.NewHLC(max(c.seenHLC.Physical(), r.nowMs)+c.cfg.ClockSyncThreshold.Milliseconds(), 0)
	// The new clock starts above everything the nodes have shown and every
	// queued stamp that is kept, so that it never issues a version that a
	// kept one already has.
	r.clock.Observe(c.seenHLC)
	items := c.queue.Items()
	for _, p := range items {
		if h := max(p.Update.Epoch, p.Update.Seq); h <= r.from {
			r.clock.Observe(h)
		}
	}
	var repl []Pending
	for _, p := range items { // in version order: the new versions keep it
		if nu, ok := r.restamp(p.Update); ok {
			r.moved = append(r.moved, restamped{profile: p.Profile, old: p.Update, new: nu})
			repl = append(repl, Pending{Profile: p.Profile, Update: nu})
		}
	}
	if err := c.queue.replace(repl); err != nil {
		c.log.Warn("playhead: offline queue", "err", err)
	}
	c.clock.Store(r.clock)
	c.log.Warn("playhead: the node refused a write: device clock too far ahead; HLC restarted from the node's clock",
		"old_hlc", old.Last(), "new_hlc", r.clock.Last(), "restamped", len(r.moved), "err", cause)
	return r
}

// follow points the watch at u's re-stamped version, if the reset gave it
// one.
func (w *watch) follow(r *clockReset) {
	if w == nil {
		return
	}
	for _, m := range r.moved {
		if w.matches(m.profile, m.old) {
			w.u = m.new
		}
	}
}
