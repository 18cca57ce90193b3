package gossip

import (
	"errors"
	"fmt"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// The viewer's controls (docs/API.md): hide a title from "continue
// watching", mark a title watched or unwatched, and the reads they need.
// Like every request rule, they read through a view, merge with crdt and
// return what to store and push; both coordinators run them.

// MarkSession is the session id of a cursor written by "mark watched" or
// "mark unwatched": a user action that takes the video over from whatever
// session was playing it, as a new session would. Devices' own sessions
// never need this id; a device that uses it anyway only shares its tie-break.
const MarkSession = "playhead:mark"

// ErrNeedDuration: a mark of a video that has no cursor yet needs the
// video's duration (HTTP 400).
var ErrNeedDuration = errors.New("gossip: duration_ms is required when the video has no resume position yet")

// HiddenVideo is one hide register of a profile: the video is off
// "continue watching" while its cursor's Seq is at or below At.
type HiddenVideo struct {
	_msgpack struct{} `msgpack:",as_array"`
	Video    string
	At       crdt.HLC
}

// Row is what "continue watching" is built from: every visible cursor of
// the profile and its hide registers.
type Row struct {
	Cursors []crdt.Cursor
	Hidden  []HiddenVideo
}

// Mark is a "mark watched / unwatched" request.
type Mark struct {
	Video   string
	Watched bool
	// DurationMs is the video's duration; 0 keeps the cursor's (then the
	// video must have a cursor).
	DurationMs int64
	// Device is recorded as the cursor's device (may be empty).
	Device string
}

// hide stamps the video's hide register at or above its cursor's write, so
// the title and the next-episode row it opens leave "continue watching" on
// every device. Hiding a video with no cursor stores the register all the
// same (a cursor that arrives later from a lagging replica, written before
// the hide, stays hidden); hiding twice only moves the register forward.
func (r rules) hide(v view, ref Ref, video string, nowMs int64) (change, error) {
	cur, err := r.get(v, r.key(ref, crdt.KindCursor, video))
	if err != nil {
		return change{}, err
	}
	hk := r.key(ref, crdt.KindHide, video)
	rec, err := r.get(v, hk)
	if err != nil {
		return change{}, err
	}
	// As deletes do: the hide covers the write stored here even when a
	// device clock ran ahead (within max_clock_skew).
	at := max(r.hlc.Now(nowMs), cur.Cursor.Version.Seq)
	rec.Hide = crdt.MergeHide(rec.Hide, crdt.Hide{At: at})
	return change{
		puts:   []storage.Put{{Key: hk, Record: rec}},
		events: []Event{{Ref: ref, Type: EventHidden, Video: video}},
	}, nil
}

// mark writes the video's cursor as a user action: watched makes it
// completed at its end (resume at 0, off the row, next episode shown),
// unwatched resets it to the start with completion cleared. The write takes
// the video over like a new session (MarkSession), above every version
// stored for the video, so the superseded session's later reports are
// stale. History is not written: no viewing happened.
func (r rules) mark(v view, ref Ref, m Mark, nowMs int64) (WriteResult, change, error) {
	profRec, err := r.get(v, r.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return WriteResult{}, change{}, err
	}
	prof, pol := profRec.Profile, r.opts.Policy
	ck := r.key(ref, crdt.KindCursor, m.Video)
	rec, err := r.get(v, ck)
	if err != nil {
		return WriteResult{}, change{}, err
	}
	old := rec.Cursor
	oldLive := old.Live(prof, pol, nowMs)
	dur := m.DurationMs
	if dur == 0 {
		if !oldLive {
			return WriteResult{}, change{}, ErrNeedDuration
		}
		dur = old.DurationMs
	}
	if dur <= 0 {
		return WriteResult{}, change{}, fmt.Errorf("%w: duration_ms must be > 0", crdt.ErrBadPosition)
	}
	// Above every version and deletion stored for the video (a device's
	// clock may have run ahead), and past everything this node issued.
	r.hlc.Observe(max(old.Version.Epoch, old.Version.Seq, old.ClearedAt, prof.ClearedAt))
	now := r.hlc.Now(nowMs)
	delta := crdt.Cursor{
		Video:      m.Video,
		DurationMs: dur,
		State:      crdt.StateStopped,
		Version:    crdt.Version{Epoch: now, Seq: now, Session: MarkSession},
		Device:     m.Device,
		UpdatedHLC: now,
	}
	if m.Watched {
		delta.PositionMs, delta.State = dur, crdt.StateCompleted
	}
	rec.Cursor = crdt.MergeCursor(old, delta)
	cur := rec.Cursor.Shown(prof)
	res := WriteResult{Applied: true, Cursor: cur, Found: cur.Live(prof, pol, nowMs)}
	ch := change{
		puts:   []storage.Put{{Key: ck, Record: rec}},
		events: []Event{{Ref: ref, Type: EventCursor, Cursor: cur, Video: m.Video}},
	}
	if oldLive && crdt.Takeover(old, cur) {
		ch.events = append(ch.events, Event{Ref: ref, Type: EventTakeover, Cursor: cur, Superseded: old.Shown(prof), Video: m.Video})
	}
	return res, ch, nil
}

// row reads every visible cursor of the profile and its hide registers.
func (r rules) row(v view, ref Ref, nowMs int64) (Row, error) {
	cursors, err := r.cursors(v, ref, nowMs)
	if err != nil {
		return Row{}, err
	}
	p := ring.PartitionOf(ref.Account, ref.Profile, r.opts.Partitions)
	var hidden []HiddenVideo
	err = v.ScanProfile(p, ref.Account, ref.Profile, crdt.KindHide, func(k storage.Key, rec crdt.Record) error {
		if rec.Hide.At != 0 {
			hidden = append(hidden, HiddenVideo{Video: k.ID, At: rec.Hide.At})
		}
		return nil
	})
	if err != nil {
		return Row{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return Row{Cursors: cursors, Hidden: hidden}, nil
}

// ExportPage is one page of a profile's export (Service.ExportPage): the
// visible records of one kind whose key id is above the page's After, in
// key order, at most the page's limit.
type ExportPage struct {
	// Cursors, for KindCursor: visible cursors, as readers see them.
	Cursors []crdt.Cursor
	// Hidden[i], for KindCursor: Cursors[i] is off "continue watching".
	Hidden []bool
	// Entries, for KindEntry: visible history entries.
	Entries []HistoryItem
	// Next is the key id to ask the next page after; empty when this page
	// reached the end of the kind.
	Next string
}

// errPageFull stops a page's scan.
var errPageFull = errors.New("gossip: export page full")

// MaxExportPage is the largest page ExportPage returns.
const MaxExportPage = 1000

// exportPage reads one page of the profile's visible records of kind
// (KindCursor or KindEntry) after key id after. It holds at most limit
// records; the scan starts at the profile's first record of the kind and
// skips to after, so a whole export costs O(n²/limit) record reads in
// exchange for memory bounded by the page.
func (r rules) exportPage(v view, ref Ref, kind crdt.Kind, after string, limit int, nowMs int64) (ExportPage, error) {
	if limit <= 0 || limit > MaxExportPage {
		limit = MaxExportPage
	}
	if kind != crdt.KindCursor && kind != crdt.KindEntry {
		return ExportPage{}, fmt.Errorf("%w: export of %v records", ErrNotFound, kind)
	}
	prof, err := r.profile(v, ref)
	if err != nil {
		return ExportPage{}, err
	}
	pol := r.opts.Policy
	var page ExportPage
	n := 0
	p := ring.PartitionOf(ref.Account, ref.Profile, r.opts.Partitions)
	err = v.ScanProfile(p, ref.Account, ref.Profile, kind, func(k storage.Key, rec crdt.Record) error {
		if k.ID <= after && after != "" {
			return nil
		}
		if n == limit {
			page.Next = after
			return errPageFull
		}
		n++
		after = k.ID
		switch kind {
		case crdt.KindCursor:
			c := rec.Cursor
			c.Video = k.ID
			if !c.Live(prof, pol, nowMs) {
				return nil
			}
			h, err := r.get(v, r.key(ref, crdt.KindHide, k.ID))
			if err != nil {
				return err
			}
			page.Cursors = append(page.Cursors, c.Shown(prof))
			page.Hidden = append(page.Hidden, h.Hide.Hides(c))
		case crdt.KindEntry:
			cur, err := r.get(v, r.key(ref, crdt.KindCursor, rec.Entry.Video))
			if err != nil {
				return err
			}
			vc := cur.Cursor.ClearedAt
			if rec.Entry.Visible(prof, vc, pol, nowMs) {
				page.Entries = append(page.Entries, HistoryItem{ID: k.ID, Entry: rec.Entry.Shown(prof, vc)})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		if errors.Is(err, ErrUnavailable) {
			return ExportPage{}, err
		}
		return ExportPage{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return page, nil
}
