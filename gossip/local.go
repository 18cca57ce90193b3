package gossip

import (
	"context"
	"errors"
	"fmt"
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
// runs the request rules (rules.go: validate and stamp device updates,
// merge them and every delete into the stored records) under a profile's
// stripe lock, writes what they produced durably and delivers their push
// events. It implements Service. The cluster's Core runs the same rules.
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
	rules    rules // the request rules (rules.go); rules.hlc is the node's HLC
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
		rules:    newRules(opts),
		notifier: notifier,
		opts:     opts,
	}, nil
}

type nopNotifier struct{}

func (nopNotifier) Notify([]Event) {}

// Now implements Service.
func (l *Local) Now() crdt.HLC { return l.rules.hlc.Now(l.clock.NowMs()) }

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
	s := &l.stripes[stripeHash(ref)%lockStripes]
	s.mu.Lock()
	return s
}

// stripeHash is FNV-1a-32 of account ‖ 0 ‖ profile, computed over the
// strings in place (hash/fnv's Hash32 and the []byte conversions cost
// allocations on every request).
func stripeHash(ref Ref) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(ref.Account); i++ {
		h = (h ^ uint32(ref.Account[i])) * prime
	}
	h *= prime // the 0 separator: h ^ 0 == h
	for i := 0; i < len(ref.Profile); i++ {
		h = (h ^ uint32(ref.Profile[i])) * prime
	}
	return h
}

// commit finishes a write made under s's lock: it applies the change's
// records to the store, releases the lock once they are visible, waits until they
// are durable, and then delivers events in s's apply order. On an error
// nothing is delivered (the events' turn passes).
func (l *Local) commit(s *stripe, ch change) error {
	var wait func() error
	var err error
	events := ch.events
	if len(ch.puts) > 0 {
		wait, err = storage.WriteNoWait(l.store, ch.puts, nil)
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

// Put implements Service.
func (l *Local) Put(ctx context.Context, ref Ref, ups []crdt.Update) ([]WriteResult, error) {
	nowMs := l.clock.NowMs()
	if err := l.rules.checkPut(ups, nowMs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := l.lock(ref)
	results, ch, err := l.rules.put(l.store, ref, ups, nowMs)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := l.commit(s, ch); err != nil {
		return nil, err
	}
	return results, nil
}

// Cursor implements Service.
func (l *Local) Cursor(ctx context.Context, ref Ref, video string) (crdt.Cursor, bool, error) {
	return l.rules.cursor(l.store, ref, video, l.clock.NowMs())
}

// Cursors implements Service.
func (l *Local) Cursors(ctx context.Context, ref Ref) ([]crdt.Cursor, error) {
	return l.rules.cursors(l.store, ref, l.clock.NowMs())
}

// History implements Service.
func (l *Local) History(ctx context.Context, ref Ref) ([]HistoryItem, error) {
	return l.rules.history(l.store, ref, l.clock.NowMs())
}

// DeleteEntry implements Service.
func (l *Local) DeleteEntry(ctx context.Context, ref Ref, id string) error {
	s := l.lock(ref)
	ch, err := l.rules.deleteEntry(l.store, ref, id, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return l.commit(s, ch)
}

// DeleteVideo implements Service.
func (l *Local) DeleteVideo(ctx context.Context, ref Ref, video string) error {
	s := l.lock(ref)
	ch, err := l.rules.deleteVideo(l.store, ref, video, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return l.commit(s, ch)
}

// DeleteAll implements Service.
func (l *Local) DeleteAll(ctx context.Context, ref Ref) error {
	s := l.lock(ref)
	ch, err := l.rules.deleteAll(l.store, ref, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return l.commit(s, ch)
}

// Profile implements Service.
func (l *Local) Profile(ctx context.Context, ref Ref) (crdt.Profile, error) {
	return l.rules.profile(l.store, ref)
}

// SetHistoryPaused implements Service.
func (l *Local) SetHistoryPaused(ctx context.Context, ref Ref, paused bool) (crdt.Profile, error) {
	s := l.lock(ref)
	prof, ch, err := l.rules.setPaused(l.store, ref, paused, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return crdt.Profile{}, err
	}
	if err := l.commit(s, ch); err != nil {
		return crdt.Profile{}, err
	}
	return prof, nil
}

// Hide implements Service.
func (l *Local) Hide(ctx context.Context, ref Ref, video string) error {
	s := l.lock(ref)
	ch, err := l.rules.hide(l.store, ref, video, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return l.commit(s, ch)
}

// Mark implements Service.
func (l *Local) Mark(ctx context.Context, ref Ref, m Mark) (WriteResult, error) {
	s := l.lock(ref)
	res, ch, err := l.rules.mark(l.store, ref, m, l.clock.NowMs())
	if err != nil {
		s.mu.Unlock()
		return WriteResult{}, err
	}
	if err := l.commit(s, ch); err != nil {
		return WriteResult{}, err
	}
	return res, nil
}

// Row implements Service.
func (l *Local) Row(ctx context.Context, ref Ref) (Row, error) {
	return l.rules.row(l.store, ref, l.clock.NowMs())
}

// ExportPage implements Service.
func (l *Local) ExportPage(ctx context.Context, ref Ref, kind crdt.Kind, after string, limit int) (ExportPage, error) {
	return l.rules.exportPage(l.store, ref, kind, after, limit, l.clock.NowMs())
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
