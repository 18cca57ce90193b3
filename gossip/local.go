package gossip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// LocalOptions configures a Local coordinator.
type LocalOptions struct {
	// Partitions is the number of partitions profiles hash into. The default
	// value is DefaultPartitions.
	Partitions int
	// MaxClockSkew is how far ahead of this node's clock a device's epoch or
	// seq may be; further is refused, so a device with a broken clock cannot
	// win forever. The default value is 60 seconds.
	MaxClockSkew time.Duration
	// Policy holds the resume thresholds and retention. Zero fields take
	// their defaults.
	Policy crdt.Policy
}

// DefaultMaxClockSkew is the default of LocalOptions.MaxClockSkew.
const DefaultMaxClockSkew = 60 * time.Second

// EnsureDefaults fills zero fields with their defaults.
func (o *LocalOptions) EnsureDefaults() {
	if o.Partitions == 0 {
		o.Partitions = ring.DefaultPartitions
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	o.Policy.EnsureDefaults()
}

// Validate reports options that cannot work.
func (o LocalOptions) Validate() error {
	if o.Partitions < 1 || o.Partitions > 1<<16 {
		return fmt.Errorf("gossip: partitions must be in [1, 65536], got %d", o.Partitions)
	}
	if o.MaxClockSkew < 0 {
		return errors.New("gossip: max clock skew must not be negative")
	}
	return o.Policy.Validate()
}

// lockStripes is the number of profile lock stripes.
const lockStripes = 1024

// Local is the coordinator of a single node that owns every partition: it
// validates and stamps device updates, merges them (crdt) into the stored
// records, writes them durably and emits push events. It implements Service.
//
// Locking: one stripe per profile hash serializes every read-merge-apply of
// a profile (stamping reads the session's epoch, so it must be atomic with
// the write). The stripe is held until the write is visible in the store,
// not until it is durable: with a store that can apply before syncing
// (storage.AsyncWriter, Pebble), the next writer of the profile merges onto
// the applied state while the first waits for the WAL sync, so writers of a
// hot profile share group commits instead of paying one sync each. A store
// syncs in apply order, so a write's acknowledgement still implies that
// every write it merged onto is durable. Because updated_hlc is stamped and
// applied under the stripe, each profile's updated_hlc order is its
// visibility order (the changes feed relies on it).
//
// Events are delivered after the write is durable, in apply order per
// stripe: the stripe hands out tickets under its lock and delivery follows
// them (a write whose sync failed delivers nothing but passes its turn on).
// Lock order: a stripe is never held while taking another; a stripe's
// delivery lock is taken without its lock held.
type Local struct {
	store    storage.Store
	clock    Clock
	hlc      *crdt.Clock
	notifier Notifier
	opts     LocalOptions

	stripes [lockStripes]stripe

	sweepMu   sync.Mutex // guards sweepNext; held by Sweep only
	sweepNext int        // next partition the sweep visits
}

var _ Service = (*Local)(nil)

// NewLocal returns a coordinator over store. notifier may be nil.
func NewLocal(store storage.Store, clock Clock, notifier Notifier, opts LocalOptions) (*Local, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if notifier == nil {
		notifier = nopNotifier{}
	}
	return &Local{
		store:    store,
		clock:    clock,
		hlc:      crdt.NewClock(opts.MaxClockSkew),
		notifier: notifier,
		opts:     opts,
	}, nil
}

type nopNotifier struct{}

func (nopNotifier) Notify([]Event) {}

// Now implements Service.
func (l *Local) Now() crdt.HLC { return l.hlc.Now(l.clock.NowMs()) }

// Policy implements Service.
func (l *Local) Policy() crdt.Policy { return l.opts.Policy }

// Partition returns the partition of ref.
func (l *Local) Partition(ref Ref) uint16 {
	return ring.PartitionOf(ref.Account, ref.Profile, l.opts.Partitions)
}

// stripe serializes the writes of the profiles that hash to it, and
// delivers their events in the order the writes were applied.
type stripe struct {
	mu   sync.Mutex // held across a profile's read-merge-apply
	next uint64     // next ticket; guarded by mu

	deliverMu sync.Mutex
	turn      uint64             // ticket whose events go next; guarded by deliverMu
	ready     map[uint64][]Event // events of later tickets, durable; guarded by deliverMu
}

// lock locks and returns the stripe of ref.
func (l *Local) lock(ref Ref) *stripe {
	h := fnv.New32a()
	h.Write([]byte(ref.Account))
	h.Write([]byte{0})
	h.Write([]byte(ref.Profile))
	s := &l.stripes[h.Sum32()%lockStripes]
	s.mu.Lock()
	return s
}

// commit finishes a write made under s's lock: it applies puts and deletes
// to the store, releases the lock once they are visible, waits until they
// are durable, and then delivers events in s's apply order. On an error
// nothing is delivered (the events' turn passes).
func (l *Local) commit(s *stripe, puts []storage.Put, deletes []storage.Key, events []Event) error {
	var wait func() error
	var err error
	if len(puts)+len(deletes) > 0 {
		wait, err = storage.WriteNoWait(l.store, puts, deletes)
	}
	ticket := s.next
	s.next++
	s.mu.Unlock()
	if err == nil && wait != nil {
		err = wait()
	}
	if err != nil {
		events = nil
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	if ticket != s.turn {
		if s.ready == nil {
			s.ready = map[uint64][]Event{}
		}
		s.ready[ticket] = events
		return err
	}
	for {
		if len(events) > 0 {
			l.notifier.Notify(events)
		}
		s.turn++
		var ok bool
		if events, ok = s.ready[s.turn]; !ok {
			return err
		}
		delete(s.ready, s.turn)
	}
}

func (l *Local) key(ref Ref, kind crdt.Kind, id string) storage.Key {
	return storage.Key{Partition: l.Partition(ref), Account: ref.Account, Profile: ref.Profile, Kind: kind, ID: id}
}

// get reads one record; an absent record is the zero state of its kind.
func (l *Local) get(k storage.Key) (crdt.Record, error) {
	rec, ok, err := l.store.Get(k)
	if err != nil {
		return crdt.Record{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		rec = crdt.Record{Kind: k.Kind}
		if k.Kind == crdt.KindCursor {
			rec.Cursor.Video = k.ID
		}
	}
	return rec, nil
}

// Put implements Service.
func (l *Local) Put(ctx context.Context, ref Ref, ups []crdt.Update) ([]WriteResult, error) {
	nowMs := l.clock.NowMs()
	for i, u := range ups {
		if err := u.Validate(); err != nil {
			return nil, fmt.Errorf("update %d (video %q): %w", i, u.Video, err)
		}
		for _, h := range [2]crdt.HLC{u.Epoch, u.Seq} {
			if err := l.hlc.Check(h, nowMs); err != nil {
				return nil, fmt.Errorf("update %d (video %q): %w", i, u.Video, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := l.lock(ref)
	results, puts, events, err := l.putLocked(ref, ups, nowMs)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := l.commit(s, puts, nil, events); err != nil {
		return nil, err
	}
	return results, nil
}

// putLocked is Put's read-merge under the profile's stripe: the results, the
// records to write and the events to deliver once they are durable.
func (l *Local) putLocked(ref Ref, ups []crdt.Update, nowMs int64) ([]WriteResult, []storage.Put, []Event, error) {
	profRec, err := l.get(l.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return nil, nil, nil, err
	}
	prof := profRec.Profile
	pol := l.opts.Policy

	// Working state of the records this batch touches: stored state merged
	// with the batch so far, and what was stored before it. Each update
	// touches two records (its cursor and history entry), so works never
	// grows past its capacity and pointers into it stay valid; small
	// batches find their records by a linear scan, larger ones by a map.
	type work struct {
		key         storage.Key
		stored, rec crdt.Record
	}
	works := make([]work, 0, 2*len(ups))
	var index map[storage.Key]int
	if len(ups) > 4 {
		index = make(map[storage.Key]int, 2*len(ups))
	}
	load := func(k storage.Key) (*work, error) {
		if index != nil {
			if i, ok := index[k]; ok {
				return &works[i], nil
			}
		} else {
			for i := range works {
				if works[i].key == k {
					return &works[i], nil
				}
			}
		}
		rec, err := l.get(k)
		if err != nil {
			return nil, err
		}
		works = append(works, work{key: k, stored: rec, rec: rec})
		if index != nil {
			index[k] = len(works) - 1
		}
		return &works[len(works)-1], nil
	}

	results := make([]WriteResult, len(ups))
	var events []Event
	for i, u := range ups {
		cw, err := load(l.key(ref, crdt.KindCursor, u.Video))
		if err != nil {
			return nil, nil, nil, err
		}
		ew, err := load(l.key(ref, crdt.KindEntry, crdt.EntryID(u.Video, u.Session)))
		if err != nil {
			return nil, nil, nil, err
		}
		// The HLC receive rule: the stamp is above the device's timestamps
		// and everything this node issued before.
		var now crdt.HLC
		if remote := max(u.Epoch, u.Seq); remote != 0 {
			if now, err = l.hlc.Update(remote, nowMs); err != nil {
				return nil, nil, nil, err // checked above; only a racing clock could get here
			}
		} else {
			now = l.hlc.Now(nowMs)
		}
		if err := u.CheckSession(ew.rec.Entry.Session); err != nil {
			return nil, nil, nil, fmt.Errorf("update %d (video %q): %w", i, u.Video, err)
		}
		v := crdt.Stamp(u, ew.rec.Entry.Session, now)
		delta := u.CursorDelta(v, now)

		old := cw.rec.Cursor
		cw.rec.Cursor = crdt.MergeCursor(old, delta)
		ew.rec.Entry = crdt.MergeEntry(ew.rec.Entry, u.EntryDelta(v, now, !prof.HistoryPaused))

		cur := cw.rec.Cursor.Shown(prof)
		live := cur.Live(prof, pol, nowMs)
		applied := crdt.Advances(old, delta) && live
		results[i] = WriteResult{Applied: applied, Cursor: cur, Found: live}
		if applied {
			events = append(events, Event{Ref: ref, Type: EventCursor, Cursor: cur, Video: u.Video})
			if old.Live(prof, pol, nowMs) && crdt.Takeover(old, cur) {
				events = append(events, Event{Ref: ref, Type: EventTakeover, Cursor: cur, Superseded: old, Video: u.Video})
			}
		}
	}

	puts := make([]storage.Put, 0, len(works))
	for i := range works {
		if w := &works[i]; w.rec != w.stored {
			puts = append(puts, storage.Put{Key: w.key, Record: w.rec})
		}
	}
	return results, puts, events, nil
}

// Cursor implements Service.
func (l *Local) Cursor(ctx context.Context, ref Ref, video string) (crdt.Cursor, bool, error) {
	prof, err := l.get(l.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return crdt.Cursor{}, false, err
	}
	rec, err := l.get(l.key(ref, crdt.KindCursor, video))
	if err != nil {
		return crdt.Cursor{}, false, err
	}
	if !rec.Cursor.Live(prof.Profile, l.opts.Policy, l.clock.NowMs()) {
		return crdt.Cursor{}, false, nil
	}
	return rec.Cursor.Shown(prof.Profile), true, nil
}

// scan reads the profile record and every cursor (and entry, if entries is
// set) of a profile.
func (l *Local) scan(ref Ref, entries bool) (prof crdt.Profile, cursors []crdt.Cursor, items []HistoryItem, err error) {
	p := l.Partition(ref)
	err = l.store.ScanProfile(p, ref.Account, ref.Profile, 0, func(k storage.Key, r crdt.Record) error {
		switch r.Kind {
		case crdt.KindProfile:
			prof = r.Profile
		case crdt.KindCursor:
			c := r.Cursor
			c.Video = k.ID
			cursors = append(cursors, c)
		case crdt.KindEntry:
			if entries {
				items = append(items, HistoryItem{ID: k.ID, Entry: r.Entry})
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return prof, cursors, items, err
}

// Cursors implements Service.
func (l *Local) Cursors(ctx context.Context, ref Ref) ([]crdt.Cursor, error) {
	prof, all, _, err := l.scan(ref, false)
	if err != nil {
		return nil, err
	}
	nowMs := l.clock.NowMs()
	out := all[:0]
	for _, c := range all {
		if c.Live(prof, l.opts.Policy, nowMs) {
			out = append(out, c.Shown(prof))
		}
	}
	return out, nil
}

// History implements Service.
func (l *Local) History(ctx context.Context, ref Ref) ([]HistoryItem, error) {
	prof, cursors, items, err := l.scan(ref, true)
	if err != nil {
		return nil, err
	}
	videoCleared := make(map[string]crdt.HLC, len(cursors))
	for _, c := range cursors {
		if c.ClearedAt != 0 {
			videoCleared[c.Video] = c.ClearedAt
		}
	}
	nowMs := l.clock.NowMs()
	out := items[:0]
	for _, it := range items {
		if vc := videoCleared[it.Entry.Video]; it.Entry.Visible(prof, vc, l.opts.Policy, nowMs) {
			it.Entry = it.Entry.Shown(prof, vc)
			out = append(out, it)
		}
	}
	return out, nil
}

// DeleteEntry implements Service.
func (l *Local) DeleteEntry(ctx context.Context, ref Ref, id string) error {
	s := l.lock(ref)
	put, err := l.deleteEntryLocked(ref, id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return l.commit(s, []storage.Put{put}, nil, []Event{{Ref: ref, Type: EventCleared, Video: put.Record.Entry.Video, Entry: id}})
}

func (l *Local) deleteEntryLocked(ref Ref, id string) (storage.Put, error) {
	prof, err := l.get(l.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return storage.Put{}, err
	}
	ek := l.key(ref, crdt.KindEntry, id)
	rec, err := l.get(ek)
	if err != nil {
		return storage.Put{}, err
	}
	e := rec.Entry
	if e.Rec.IsZero() {
		return storage.Put{}, ErrNotFound
	}
	cur, err := l.get(l.key(ref, crdt.KindCursor, e.Video))
	if err != nil {
		return storage.Put{}, err
	}
	if !e.Visible(prof.Profile, cur.Cursor.ClearedAt, l.opts.Policy, l.clock.NowMs()) {
		return storage.Put{}, ErrNotFound
	}
	rec.Entry = crdt.MergeEntry(e, e.Tombstone())
	return storage.Put{Key: ek, Record: rec}, nil
}

// DeleteVideo implements Service.
func (l *Local) DeleteVideo(ctx context.Context, ref Ref, video string) error {
	s := l.lock(ref)
	ck := l.key(ref, crdt.KindCursor, video)
	rec, err := l.get(ck)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// The deletion covers at least every write stored here: a write whose
	// device clock ran ahead (within max_clock_skew) must not outlive a
	// delete asked for after it (found by the simulator).
	at := max(l.Now(), rec.Cursor.Version.Seq)
	rec.Cursor = crdt.MergeCursor(rec.Cursor, crdt.Cursor{Video: video, ClearedAt: at})
	return l.commit(s, []storage.Put{{Key: ck, Record: rec}}, nil, []Event{{Ref: ref, Type: EventCleared, Video: video}})
}

// DeleteAll implements Service.
func (l *Local) DeleteAll(ctx context.Context, ref Ref) error {
	s := l.lock(ref)
	pk := l.key(ref, crdt.KindProfile, "")
	rec, err := l.get(pk)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// As for one video: the deletion covers every write stored here, also
	// one stamped by a device clock running ahead.
	at := l.Now()
	err = l.store.ScanProfile(pk.Partition, ref.Account, ref.Profile, crdt.KindCursor, func(_ storage.Key, r crdt.Record) error {
		at = max(at, r.Cursor.Version.Seq)
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rec.Profile = crdt.MergeProfile(rec.Profile, crdt.Profile{ClearedAt: at})
	return l.commit(s, []storage.Put{{Key: pk, Record: rec}}, nil, []Event{{Ref: ref, Type: EventCleared}})
}

// Profile implements Service.
func (l *Local) Profile(ctx context.Context, ref Ref) (crdt.Profile, error) {
	rec, err := l.get(l.key(ref, crdt.KindProfile, ""))
	return rec.Profile, err
}

// SetHistoryPaused implements Service.
func (l *Local) SetHistoryPaused(ctx context.Context, ref Ref, paused bool) (crdt.Profile, error) {
	s := l.lock(ref)
	pk := l.key(ref, crdt.KindProfile, "")
	rec, err := l.get(pk)
	if err != nil {
		s.mu.Unlock()
		return crdt.Profile{}, err
	}
	rec.Profile = crdt.MergeProfile(rec.Profile, crdt.Profile{HistoryPaused: paused, PausedAt: l.Now()})
	if err := l.commit(s, []storage.Put{{Key: pk, Record: rec}}, nil, nil); err != nil {
		return crdt.Profile{}, err
	}
	return rec.Profile, nil
}

// Sweep visits up to budget partitions, starting where the previous call
// stopped, and purges from storage the records that expiry and deletion have
// made invisible for good (crdt.Record.Purgeable), and scrubs the content of
// deleted writes (crdt.Scrub). It returns the number of records purged or
// scrubbed. The node calls it periodically from one goroutine.
func (l *Local) Sweep(nowMs int64, budget int) (int, error) {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	done := 0
	for i := 0; i < budget; i++ {
		p := uint16(l.sweepNext)
		l.sweepNext = (l.sweepNext + 1) % l.opts.Partitions
		n, err := l.sweepPartition(p, nowMs)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// sweepPartition finds candidates without locks, then re-checks and rewrites
// each profile's candidates under its lock, so a write racing the sweep is
// never lost.
func (l *Local) sweepPartition(p uint16, nowMs int64) (int, error) {
	var refs []Ref
	seen := map[Ref]bool{}
	var prof crdt.Profile
	var cur Ref
	videoCleared := map[string]crdt.HLC{}
	err := l.store.ScanPartition(p, func(k storage.Key, r crdt.Record) error {
		ref := Ref{k.Account, k.Profile}
		if ref != cur {
			cur, prof = ref, crdt.Profile{}
			clear(videoCleared)
		}
		switch r.Kind {
		case crdt.KindProfile:
			prof = r.Profile
			return nil
		case crdt.KindCursor:
			videoCleared[k.ID] = r.Cursor.ClearedAt
		}
		if _, changed := l.sweepRecord(r, prof, videoCleared, nowMs); changed && !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, ref := range refs {
		n, err := l.sweepProfile(ref, nowMs)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sweepRecord decides what the sweep does with one record: drop it (ok
// false), or keep a possibly scrubbed copy.
func (l *Local) sweepRecord(r crdt.Record, prof crdt.Profile, videoCleared map[string]crdt.HLC, nowMs int64) (out crdt.Record, changed bool) {
	if r.Purgeable(prof, l.opts.Policy, nowMs) {
		return crdt.Record{}, true
	}
	vc := crdt.HLC(0)
	if r.Kind == crdt.KindEntry {
		vc = videoCleared[r.Entry.Video]
	}
	s := crdt.Scrub(r, prof, vc)
	return s, s != r
}

func (l *Local) sweepProfile(ref Ref, nowMs int64) (int, error) {
	s := l.lock(ref)
	defer s.mu.Unlock()
	var puts []storage.Put
	var dels []storage.Key
	var prof crdt.Profile
	videoCleared := map[string]crdt.HLC{}
	type kr struct {
		k storage.Key
		r crdt.Record
	}
	var recs []kr
	err := l.store.ScanProfile(l.Partition(ref), ref.Account, ref.Profile, 0, func(k storage.Key, r crdt.Record) error {
		switch r.Kind {
		case crdt.KindProfile:
			prof = r.Profile
		case crdt.KindCursor:
			videoCleared[k.ID] = r.Cursor.ClearedAt
		}
		recs = append(recs, kr{k, r})
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].r.Kind < recs[j].r.Kind })
	for _, x := range recs {
		if x.r.Kind == crdt.KindProfile {
			continue
		}
		out, changed := l.sweepRecord(x.r, prof, videoCleared, nowMs)
		switch {
		case !changed:
		case out.Kind == 0:
			dels = append(dels, x.k)
		default:
			puts = append(puts, storage.Put{Key: x.k, Record: out})
		}
	}
	if len(puts)+len(dels) == 0 {
		return 0, nil
	}
	if err := l.store.Write(puts, dels); err != nil {
		return 0, err
	}
	return len(puts) + len(dels), nil
}
