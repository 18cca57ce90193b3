package gossip

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/internal/bufstore"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// CoreConfig configures a Core. Zero fields take the defaults below.
type CoreConfig struct {
	// Self is this node's id. Required.
	Self ring.NodeID
	// Local holds the rules shared with the single-node coordinator:
	// partitions, clock skew bound, policy.
	Local LocalOptions
	// WriteQuorum is how many owners must have a write durable before it
	// is acknowledged. The default value is 2 (capped at the owners of the
	// partition, so a one-node cluster acknowledges alone).
	WriteQuorum int
	// RequestTimeout bounds a request: a forwarded one without an answer,
	// a write without its quorum, is answered ErrUnavailable. The default
	// value is 2 seconds.
	RequestTimeout time.Duration
	// AEInterval is how often each owned partition's digests are compared
	// with another owner's, AEPartitions partitions per round. The defaults
	// are 1 second and 128 (a 1024-partition ring is covered every 8 s).
	AEInterval   time.Duration
	AEPartitions int
	// HintInterval is how often hints are replayed to owners that missed
	// writes. The default value is 1 second.
	HintInterval time.Duration
	// MaxHints bounds the records this node keeps hinted (all owners
	// together); past it, the owners that missed a write are repaired by
	// anti-entropy alone. Hints are durable (hints.go): each costs one
	// stored record until its owners acknowledge it. A negative value
	// disables hints. The default value is 100 000.
	MaxHints int
	// ReadQuorum is how many owners a read consults when the request does
	// not say (Op.ReadQuorum): 1 reads one owner's copy; more merge the
	// copies and repair the owners that differ (quorumread.go). Capped at
	// the partition's owners. The default value is 1.
	ReadQuorum int
	// InterestLease is how long a push interest lasts unless renewed. The
	// default value is 10 seconds.
	InterestLease time.Duration
}

// Defaults of CoreConfig.
// DigestBuckets is the number of anti-entropy buckets per partition.
const DigestBuckets = bufstore.Buckets

const (
	DefaultWriteQuorum    = 2
	DefaultRequestTimeout = 2 * time.Second
	DefaultAEInterval     = time.Second
	DefaultAEPartitions   = 128
	DefaultHintInterval   = time.Second
	DefaultMaxHints       = 100_000
	DefaultInterestLease  = 10 * time.Second
)

// EnsureDefaults fills zero fields with their defaults.
func (c *CoreConfig) EnsureDefaults() {
	c.Local.EnsureDefaults()
	if c.WriteQuorum == 0 {
		c.WriteQuorum = DefaultWriteQuorum
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.AEInterval == 0 {
		c.AEInterval = DefaultAEInterval
	}
	if c.AEPartitions == 0 {
		c.AEPartitions = DefaultAEPartitions
	}
	if c.HintInterval == 0 {
		c.HintInterval = DefaultHintInterval
	}
	if c.MaxHints == 0 {
		c.MaxHints = DefaultMaxHints
	}
	if c.InterestLease == 0 {
		c.InterestLease = DefaultInterestLease
	}
}

// Validate reports settings that cannot work, naming the field and what is
// allowed. Call it after EnsureDefaults (NewCore does both).
func (c CoreConfig) Validate() error {
	switch {
	case c.Self == "":
		return errors.New("gossip: CoreConfig.Self (the node id) is required")
	case c.WriteQuorum < 1:
		return fmt.Errorf("gossip: write quorum must be at least 1, got %d", c.WriteQuorum)
	case c.ReadQuorum < 0:
		return fmt.Errorf("gossip: read quorum must be 0 (one owner) or more, got %d", c.ReadQuorum)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("gossip: request timeout must be positive, got %v", c.RequestTimeout)
	case c.AEInterval <= 0:
		return fmt.Errorf("gossip: anti-entropy interval must be positive, got %v", c.AEInterval)
	case c.AEPartitions < 1:
		return fmt.Errorf("gossip: anti-entropy partitions per round must be at least 1, got %d", c.AEPartitions)
	case c.HintInterval <= 0:
		return fmt.Errorf("gossip: hint interval must be positive, got %v", c.HintInterval)
	case c.InterestLease <= 0:
		return fmt.Errorf("gossip: interest lease must be positive, got %v", c.InterestLease)
	}
	return c.Local.Validate()
}

// Envelope is a message for a peer.
type Envelope struct {
	To  ring.NodeID
	Msg Msg
}

// Completion is the answer to a request submitted to this Core.
type Completion struct {
	ID  uint64
	Res Result
	Err error
}

// Ready is what a Core asks its driver to do after Flush: send messages,
// answer requests, hand events to the local subscribers.
type Ready struct {
	Messages    []Envelope
	Completions []Completion
	Events      []Event
}

// Core is the sans-I/O replication and coordination logic of one node
// (DESIGN.md §5). It starts no goroutines and reads no clock: requests,
// peer messages, membership and ring changes and ticks come in as method
// calls with the time; what to send, answer and push comes out of Ready.
// Storage is the storage.Store interface, called synchronously.
//
// The driver's loop is: feed inputs (Submit, Step, Tick, SetTable,
// SetAlive, SetInterest), then Flush — one durable write of everything
// merged since the last Flush, the cluster's group commit — then Ready,
// and carry out what it returns. Answers and acknowledgements wait for the
// Flush that makes their records durable.
//
// The rules of a request are the single-node coordinator's (rules.go, the
// one write path): the Core runs them over a buffering view of its store
// and replicates the records they wrote.
//
// A Core is not safe for concurrent use.
type Core struct {
	cfg   CoreConfig
	store storage.Store
	buf   *bufstore.Store
	rules rules // the request rules; rules.hlc is the node's HLC (Clock)
	nowMs int64

	table     ring.Table
	haveTable bool
	alive     map[ring.NodeID]bool // peers believed down; absent: alive

	// Requests submitted here and forwarded, by id.
	forwarded map[uint64]*forwarded
	// Lower bounds of the deadlines in forwarded and writes (Tick).
	forwardedDue, writesDue dueBound
	// Forwarded requests taken from peers, to drop their copies.
	dedup forwardDedup
	// Writes this node coordinates, waiting for acks, by write id.
	writes  map[uint64]*coordWrite
	nextWID uint64

	// Outputs held until the next Flush makes their records durable, and
	// outputs ready now.
	heldMsgs   []Envelope
	heldDone   []Completion
	heldEvents []Event
	ready      Ready
	flushedAt  []uint64 // writes whose local copy the next Flush makes durable

	// Hinted handoff (hints.go).
	hints        map[storage.Key]*hint
	hintDirty    map[storage.Key]struct{} // hints changed since the last Flush
	durableHints bool
	hintSeq      uint64
	hintsSent    map[uint64]hintBatch
	lastHints    int64

	// Push interest held by this owner: ref → node → lease end (ms).
	interest map[Ref]map[ring.NodeID]int64
	// Refs this node's subscribers want (a set: ref → its index in
	// wantedList, which renewal walks), and the renewal's progress: the
	// next index, when it last ran, and the refs·ms it owes (renewal sends
	// len(wantedList) refs per InterestLease/3, spread over the ticks).
	wanted       map[Ref]int
	wantedList   []Ref
	renewNext    int
	lastInterest int64
	renewCredit  int64
	renewing     bool  // renewInterest has run: lastInterest is set
	lastExpire   int64 // when interest held here was last expired
	// What this node was pushed of each wanted profile, and the marks of
	// interested nodes this coordinator answers at the next Flush
	// (push.go).
	marks    map[Ref]*pushMark
	catchUps []catchUp
	queued   map[catchUp]struct{} // the set of catchUps, to drop duplicates in O(1)

	// Anti-entropy: next partition to compare, last round.
	aeNext  int
	aePeer  int
	lastAE  int64
	handoff map[uint16][]ring.NodeID // partitions gained, not yet pulled: old owners
	pulled  map[uint16]int64         // when the last pull was sent

	rr readRepair // quorum reads (quorumread.go)

	stats CoreStats

	// lost is the error of a store write that failed since the last
	// Flush (a scan flushes the overlay first): the records it carried are
	// gone, so that Flush fails what the cycle held, even when it has
	// nothing left to write.
	lost error

	lagPuts    []storage.Put // plant_early_ack only
	lagDeletes []storage.Key
}

// CoreStats counts what a Core did, for metrics and tests.
type CoreStats struct {
	Flushes, FlushedRecords      uint64
	Forwarded, Coordinated       uint64
	QuorumFailures               uint64
	HintsStored, HintsReplayed   uint64
	HintsLoaded, HintsDropped    uint64
	AERounds, AEBucketsRepaired  uint64
	AERecordsSent, HandoffsDone  uint64
	EventsSent, RecordsMerged    uint64
	DroppedMessages, BadMessages uint64
	DuplicateForwards            uint64
	CatchUps                     uint64 // push catch-ups sent (push.go)
	StoreErrors                  uint64 // store reads or writes that failed
	SeenEscalations              uint64 // reads whose local copy was below the device's Seen (seen.go)
}

type forwarded struct {
	op       Op
	deadline int64
}

type coordWrite struct {
	origin   ring.NodeID
	reqID    uint64
	op       Op
	res      Result
	owners   []ring.NodeID
	acked    map[ring.NodeID]bool
	need     int
	deadline int64
	answered bool
	records  []storage.Put
}

// NewCore returns a Core over store, rebuilding its digests from it.
func NewCore(cfg CoreConfig, store storage.Store, nowMs int64) (*Core, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Core{
		cfg:       cfg,
		store:     store,
		buf:       bufstore.New(store),
		nowMs:     nowMs,
		alive:     map[ring.NodeID]bool{},
		forwarded: map[uint64]*forwarded{},
		writes:    map[uint64]*coordWrite{},
		hints:     map[storage.Key]*hint{},
		hintDirty: map[storage.Key]struct{}{},
		hintsSent: map[uint64]hintBatch{},
		interest:  map[Ref]map[ring.NodeID]int64{},
		wanted:    map[Ref]int{},
		queued:    map[catchUp]struct{}{},
		marks:     map[Ref]*pushMark{},
		handoff:   map[uint16][]ring.NodeID{},
		pulled:    map[uint16]int64{},
	}
	// Ids of writes, hint batches and quorum reads start from the clock, so
	// that an answer still in flight from before a restart can never be
	// taken for the answer to a new request (found by the simulator: a
	// restarted coordinator counted a stale ack and acknowledged a delete
	// that no owner had).
	c.nextWID = uint64(nowMs) << 16
	c.hintSeq = uint64(nowMs) << 8
	c.rr.next = uint64(nowMs) << 16
	c.buf.FlushHook = c.persist
	c.rules = newRules(cfg.Local)
	c.buf.Observe = c.rules.hlc.Observe
	if err := c.buf.RebuildDigests(cfg.Local.Partitions); err != nil {
		return nil, fmt.Errorf("gossip: building digests: %w", err)
	}
	if err := c.loadHints(); err != nil {
		return nil, fmt.Errorf("gossip: loading hints: %w", err)
	}
	return c, nil
}

// Stats returns the Core's counters.
func (c *Core) Stats() CoreStats { return c.stats }

// Table returns the ring the Core routes by.
func (c *Core) Table() (ring.Table, bool) { return c.table, c.haveTable }

// Partition returns the partition of ref.
func (c *Core) Partition(ref Ref) uint16 {
	return ring.PartitionOf(ref.Account, ref.Profile, c.cfg.Local.Partitions)
}

// Now returns a fresh HLC of this node.
func (c *Core) Now() crdt.HLC { return c.rules.hlc.Now(c.nowMs) }

// Clock returns the node's hybrid logical clock. It is the one part of a
// Core that other goroutines may use while the Core runs (crdt.Clock is
// safe for concurrent use): the driver stamps response headers and checks
// and observes device timestamps with it from request goroutines. Every
// other method must be called from the Core's goroutine.
func (c *Core) Clock() *crdt.Clock { return c.rules.hlc }

// Policy returns the resume and retention policy.
func (c *Core) Policy() crdt.Policy { return c.rules.opts.Policy }

// Handoffs returns how many partitions this node still has to pull.
func (c *Core) Handoffs() int { return len(c.handoff) }

// SetAlive records membership's view of a peer.
func (c *Core) SetAlive(id ring.NodeID, alive bool) {
	if alive {
		delete(c.alive, id)
	} else {
		c.alive[id] = false
	}
}

func (c *Core) isAlive(id ring.NodeID) bool {
	if id == c.cfg.Self {
		return true
	}
	_, down := c.alive[id]
	return !down
}

// SetTable installs a new ring. Partitions this node gains are pulled from
// their previous owners before it serves reads for them (handoff).
func (c *Core) SetTable(t ring.Table) {
	if c.haveTable && t.Version <= c.table.Version && t.Partitions() == c.table.Partitions() {
		return
	}
	if t.Partitions() != c.cfg.Local.Partitions || t.Version == 0 || len(t.OwnersOf(0)) == 0 {
		return // a ring of another size, or an empty one, cannot route requests
	}
	if c.haveTable {
		for p := 0; p < t.Partitions(); p++ {
			pp := uint16(p)
			if t.Owns(c.cfg.Self, pp) && !c.table.Owns(c.cfg.Self, pp) {
				var old []ring.NodeID
				for _, o := range c.table.OwnersOf(pp) {
					if o != c.cfg.Self {
						old = append(old, o)
					}
				}
				if len(old) > 0 {
					c.handoff[pp] = old
					delete(c.pulled, pp)
				}
			}
		}
	}
	if !c.haveTable {
		// Refs added before the ring was known were never sent: the next
		// tick renews them all.
		c.renewCredit = int64(len(c.wantedList)) * max(1, c.cfg.InterestLease.Milliseconds()/3)
	}
	c.table, c.haveTable = t.Clone(), true
	c.pullHandoffs()
}

// Submit takes a request of this node's API. Its answer comes out of Ready
// as a Completion with the same id (ids are the caller's, unique among its
// requests in flight).
//
// Submit is also where the node a device talks to admits the request, as
// the production driver once did on the request's goroutine: a write whose
// timestamps lie beyond max_clock_skew of this node's clock (the time of
// the last Tick) is refused here (crdt.ErrClockSkew in an UpdateError),
// before it is routed; the timestamps of an admitted write move this node's
// HLC (Clock) forward. The HLCs of the cursors a request answers are
// observed when it completes (complete).
func (c *Core) Submit(id uint64, op Op) {
	if err := c.admit(op); err != nil {
		c.complete(id, Result{}, err, false)
		return
	}
	if !c.haveTable {
		c.complete(id, Result{}, fmt.Errorf("%w: the ring is not known yet", ErrUnavailable), false)
		return
	}
	p := c.Partition(op.Ref)
	if op.Local {
		// An operator's inspection read of this replica.
		if !op.Kind.isRead() || !c.table.Owns(c.cfg.Self, p) {
			c.complete(id, Result{}, fmt.Errorf("%w: this node holds no replica of partition %d", ErrNotFound, p), false)
			return
		}
		c.execute(c.cfg.Self, id, op)
		return
	}
	coord, ok := c.coordinatorOf(p)
	if !ok {
		c.complete(id, Result{}, fmt.Errorf("%w: no owner of partition %d is reachable", ErrUnavailable, p), false)
		return
	}
	if coord == c.cfg.Self {
		c.route(c.cfg.Self, id, op)
		return
	}
	c.forwarded[id] = &forwarded{op: op, deadline: c.nowMs + c.cfg.RequestTimeout.Milliseconds()}
	c.forwardedDue.add(c.forwarded[id].deadline)
	c.stats.Forwarded++
	c.send(coord, Msg{Type: MsgForward, ReqID: id, Origin: c.cfg.Self, Op: &op})
}

// admit is the origin's check of a request of its own API: precheck, and
// for a write the clock-skew bound against this node's clock. The device's
// timestamps of an admitted write are observed.
func (c *Core) admit(op Op) error {
	if op.Kind != OpPut {
		return c.precheck(op)
	}
	if err := c.rules.checkPut(op.Ups, c.nowMs); err != nil {
		return err
	}
	for _, u := range op.Ups {
		c.rules.hlc.Observe(max(u.Epoch, u.Seq))
	}
	return nil
}

// precheck refuses, before any routing, what no node would take.
func (c *Core) precheck(op Op) error {
	for i, u := range op.Ups {
		if err := u.Validate(); err != nil {
			return &UpdateError{Index: i, Video: u.Video, Err: err}
		}
	}
	return nil
}

// coordinatorOf is the first owner of p believed alive.
func (c *Core) coordinatorOf(p uint16) (ring.NodeID, bool) {
	for _, o := range c.table.OwnersOf(p) {
		if c.isAlive(o) {
			return o, true
		}
	}
	return "", false
}

// route runs a request that reached its coordinator: here, or at an old
// owner while this node still pulls the partition.
func (c *Core) route(origin ring.NodeID, reqID uint64, op Op) {
	p := c.Partition(op.Ref)
	if old := c.handoff[p]; old != nil {
		for _, o := range old {
			if c.isAlive(o) {
				if origin == c.cfg.Self {
					// The old owner answers here: wait for it as for any
					// forwarded request (and time out without it).
					c.forwarded[reqID] = &forwarded{op: op, deadline: c.nowMs + c.cfg.RequestTimeout.Milliseconds()}
					c.forwardedDue.add(c.forwarded[reqID].deadline)
					c.stats.Forwarded++
				}
				c.send(o, Msg{Type: MsgForward, ReqID: reqID, Origin: origin, Exec: true, Op: &op})
				return
			}
		}
	}
	c.execute(origin, reqID, op)
}

// execute runs op on this node's state and replicates what it wrote to the
// partition's owners; the answer goes to origin once WriteQuorum owners
// have it durable.
func (c *Core) execute(origin ring.NodeID, reqID uint64, op Op) {
	if len(c.table.OwnersOf(c.Partition(op.Ref))) == 0 {
		// No ring, or none for this partition: a write here could be
		// acknowledged with no owner holding it. Never.
		c.answer(origin, reqID, op, Result{}, fmt.Errorf("%w: partition %d has no owners in this node's ring", ErrUnavailable, c.Partition(op.Ref)), false)
		return
	}
	if c.readSeen(origin, reqID, op) || c.startQuorumRead(origin, reqID, op) {
		return
	}
	c.stats.Coordinated++
	res, ch, err := c.run(op)
	if err != nil {
		c.answer(origin, reqID, op, Result{}, err, true)
		return
	}
	if len(ch.puts) > 0 {
		c.buf.Write(ch.puts, nil) // the overlay: cannot fail
	}
	c.heldEvents = append(c.heldEvents, ch.events...)
	if len(ch.puts) == 0 {
		c.answer(origin, reqID, op, res, nil, true)
		return
	}
	// Replicate the records as stored (the overlay's normal form).
	puts := make([]storage.Put, 0, len(ch.puts))
	for _, p := range ch.puts {
		if rec, ok, _ := c.buf.Get(p.Key); ok { // in the overlay: cannot fail
			puts = append(puts, storage.Put{Key: p.Key, Record: rec})
		}
	}
	slices.SortFunc(puts, func(a, b storage.Put) int { return compareKeys(a.Key, b.Key) })
	p := c.Partition(op.Ref)
	owners := c.table.OwnersOf(p)
	need := min(c.cfg.WriteQuorum, len(owners))
	c.nextWID++
	w := &coordWrite{origin: origin, reqID: reqID, op: op, res: res, owners: owners,
		acked: map[ring.NodeID]bool{}, need: need, records: puts,
		deadline: c.nowMs + c.cfg.RequestTimeout.Milliseconds()}
	c.writes[c.nextWID] = w
	c.writesDue.add(w.deadline)
	if plantEarlyAck {
		w.answered = true
		c.answer(origin, reqID, op, res, nil, false)
	}
	if slices.Contains(owners, c.cfg.Self) {
		c.flushedAt = append(c.flushedAt, c.nextWID)
	}
	kvs := encodeRecords(puts)
	for _, o := range owners {
		if o != c.cfg.Self {
			c.send(o, Msg{Type: MsgReplicate, ReqID: c.nextWID, Records: kvs})
		}
	}
}

// run applies op's rules to this node's state: the answer, and the change
// to store, replicate and push.
func (c *Core) run(op Op) (Result, change, error) {
	v, r, now := c.buf, c.rules, c.nowMs
	var res Result
	var ch change
	var err error
	switch op.Kind {
	case OpPut:
		if err = r.checkPut(op.Ups, now); err == nil {
			res.Writes, ch, err = r.put(v, op.Ref, op.Ups, now)
		}
	case OpCursor:
		res.Cursor, res.Found, err = r.cursor(v, op.Ref, op.Video, now)
	case OpCursors:
		res.Cursors, err = r.cursors(v, op.Ref, now)
	case OpHistory:
		res.History, err = r.history(v, op.Ref, now)
	case OpProfile:
		res.Profile, err = r.profile(v, op.Ref)
	case OpDeleteEntry:
		ch, err = r.deleteEntry(v, op.Ref, op.Entry, now)
	case OpDeleteVideo:
		ch, err = r.deleteVideo(v, op.Ref, op.Video, now)
	case OpDeleteAll:
		ch, err = r.deleteAll(v, op.Ref, now)
	case OpSetPaused:
		res.Profile, ch, err = r.setPaused(v, op.Ref, op.Paused, now)
	case OpHide:
		ch, err = r.hide(v, op.Ref, op.Video, now)
	case OpMark:
		if op.Mark == nil {
			err = fmt.Errorf("%w: mark request without a mark", ErrUnavailable)
			break
		}
		var w WriteResult
		w, ch, err = r.mark(v, op.Ref, *op.Mark, now)
		res.Writes = []WriteResult{w}
	case OpExport:
		if op.Export == nil {
			err = fmt.Errorf("%w: export request without a page", ErrUnavailable)
			break
		}
		var page ExportPage
		page, err = r.exportPage(v, op.Ref, op.Export.Kind, op.Export.After, op.Export.Limit, now)
		res.Page = &page
	case OpRow:
		var row Row
		row, err = r.row(v, op.Ref, now)
		res.Cursors, res.Hidden = row.Cursors, row.Hidden
	default:
		err = fmt.Errorf("%w: unknown request kind %d", ErrUnavailable, op.Kind)
	}
	if err != nil {
		return Result{}, change{}, err
	}
	return res, ch, nil
}

// answer sends a request's outcome to its origin, held until the next
// Flush when held is set (so nothing is answered before it is durable).
func (c *Core) answer(origin ring.NodeID, reqID uint64, op Op, res Result, err error, held bool) {
	res.HLC = c.rules.hlc.Last()
	if origin == c.cfg.Self {
		c.complete(reqID, res, err, held)
		return
	}
	m := Msg{Type: MsgResult, ReqID: reqID}
	if err != nil {
		m.ErrCode, m.ErrText = errToCode(err)
	} else {
		r := res
		for _, cur := range r.Cursors {
			r.Videos = append(r.Videos, cur.Video)
		}
		if r.Page != nil {
			for _, cur := range r.Page.Cursors {
				r.Videos = append(r.Videos, cur.Video)
			}
		}
		m.Result = &r
	}
	if held {
		c.heldMsgs = append(c.heldMsgs, Envelope{To: origin, Msg: m})
	} else {
		c.send(origin, m)
	}
}

func (c *Core) complete(id uint64, res Result, err error, held bool) {
	if err == nil {
		// The node's HLC follows what it answers (a device's next write
		// is stamped above what it was shown).
		for _, w := range res.Writes {
			c.rules.hlc.Observe(w.Cursor.UpdatedHLC)
		}
		for _, cur := range res.Cursors {
			c.rules.hlc.Observe(cur.UpdatedHLC)
		}
	}
	d := Completion{ID: id, Res: res, Err: err}
	if held {
		c.heldDone = append(c.heldDone, d)
	} else {
		c.ready.Completions = append(c.ready.Completions, d)
	}
}

func (c *Core) send(to ring.NodeID, m Msg) {
	c.ready.Messages = append(c.ready.Messages, Envelope{To: to, Msg: m})
}

// Step takes a message from a peer.
func (c *Core) Step(from ring.NodeID, m Msg) {
	switch m.Type {
	case MsgForward:
		if m.Op == nil {
			c.stats.BadMessages++
			return
		}
		if c.dedup.seen(m.Origin, m.ReqID, c.nowMs, c.dedupWindow()) {
			c.stats.DuplicateForwards++
			return // a copy of a request already taken (dedup.go)
		}
		op := *m.Op
		if err := c.precheck(op); err != nil {
			c.answer(m.Origin, m.ReqID, op, Result{}, err, false)
			return
		}
		if !c.haveTable {
			// Forwarded by a peer before this node knows the ring (it
			// just restarted): the origin answers 503 and the device
			// retries (found on real processes: this path panicked).
			c.answer(m.Origin, m.ReqID, op, Result{}, fmt.Errorf("%w: the ring is not known yet", ErrUnavailable), false)
			return
		}
		if m.Exec {
			c.execute(m.Origin, m.ReqID, op)
		} else {
			c.route(m.Origin, m.ReqID, op)
		}
	case MsgResult:
		f, ok := c.forwarded[m.ReqID]
		if !ok {
			return // answered already (timed out) or duplicated
		}
		delete(c.forwarded, m.ReqID)
		if m.ErrCode != "" {
			c.complete(m.ReqID, Result{}, codeToErr(m.ErrCode, m.ErrText), false)
			return
		}
		res := Result{}
		if m.Result != nil {
			res = *m.Result
		}
		c.rules.hlc.Observe(res.HLC)
		restoreVideos(f.op, &res)
		c.complete(m.ReqID, res, nil, false)
	case MsgReplicate:
		// The coordinator pushes the change it replicates; replicas push
		// only what reaches them by repair (hints, anti-entropy).
		c.mergeRecords(m.Records, m.ReqID>>63 == 1)
		if m.ReqID != 0 {
			c.heldMsgs = append(c.heldMsgs, Envelope{To: from, Msg: Msg{Type: MsgAck, ReqID: m.ReqID}})
		}
	case MsgAck:
		if hb, ok := c.hintsSent[m.ReqID]; ok && hb.to == from {
			delete(c.hintsSent, m.ReqID)
			c.clearHints(hb)
			return
		}
		if w, ok := c.writes[m.ReqID]; ok && slices.Contains(w.owners, from) {
			w.acked[from] = true
			c.checkWrite(m.ReqID, w)
		}
	case MsgDigest:
		c.onDigest(from, m)
	case MsgBuckets:
		c.onBuckets(from, m)
	case MsgPull:
		c.onPull(from, m)
	case MsgInterest:
		until := c.nowMs + min(m.LeaseMs, 10*c.cfg.InterestLease.Milliseconds())
		for _, r := range m.Refs {
			set := c.interest[r]
			if set == nil {
				set = map[ring.NodeID]int64{}
				c.interest[r] = set
			}
			set[from] = until
		}
		c.queueCatchUps(from, m)
	case MsgEvents:
		c.onEvents(m)
	case MsgProfileRecords:
		c.onProfileRecords(from, m)
	case MsgProfileRecordsReply:
		c.onProfileRecordsReply(from, m)
	default:
		c.stats.BadMessages++
	}
}

func restoreVideos(op Op, res *Result) {
	res.Cursor.Video = op.Video
	for i := range res.Writes {
		if i < len(op.Ups) {
			res.Writes[i].Cursor.Video = op.Ups[i].Video
		}
	}
	if op.Mark != nil && len(res.Writes) == 1 {
		res.Writes[0].Cursor.Video = op.Mark.Video
	}
}

// checkWrite answers a coordinated write once its quorum is durable, and
// forgets it once every owner acked.
func (c *Core) checkWrite(wid uint64, w *coordWrite) {
	if !w.answered && len(w.acked) >= w.need {
		w.answered = true
		res := w.res
		c.answer(w.origin, w.reqID, w.op, res, nil, false)
	}
	if len(w.acked) == len(w.owners) {
		delete(c.writes, wid)
	}
}

// mergeRecords merges peer records into the local state; with push set, a
// merge that advances a live cursor is pushed to nodes with interest in its
// profile.
func (c *Core) mergeRecords(kvs []KeyValue, push bool) int {
	changed := 0
	for _, kv := range kvs {
		put, err := decodeRecord(kv)
		if err != nil {
			c.stats.BadMessages++
			continue
		}
		if c.mergeOne(put, push) {
			changed++
		}
	}
	return changed
}

func (c *Core) mergeOne(put storage.Put, push bool) bool {
	old, had, err := c.buf.Get(put.Key)
	if err != nil {
		// Not merged: the sender (replication, hints, anti-entropy)
		// sends it again.
		c.stats.StoreErrors++
		return false
	}
	merged := put.Record
	if had {
		if old.Kind == crdt.KindCursor {
			old.Cursor.Video = ""
		}
		if put.Record.Kind == crdt.KindCursor {
			put.Record.Cursor.Video = ""
		}
		merged = crdt.MergeRecord(old, put.Record)
		if merged == old {
			return false
		}
	}
	c.buf.Write([]storage.Put{{Key: put.Key, Record: merged}}, nil)
	c.stats.RecordsMerged++
	if push && merged.Kind == crdt.KindCursor && (!had || crdt.Advances(old.Cursor, merged.Cursor)) {
		ref := Ref{Account: put.Key.Account, Profile: put.Key.Profile}
		if len(c.interest[ref]) > 0 {
			cur := merged.Cursor
			cur.Video = put.Key.ID
			prof, _, err := c.buf.Get(storage.Key{Partition: put.Key.Partition, Account: ref.Account, Profile: ref.Profile, Kind: crdt.KindProfile})
			if err != nil {
				// Unknown whether the cursor is visible: push nothing
				// rather than a deleted position; catch-up sends it.
				c.stats.StoreErrors++
			} else if cur.Live(prof.Profile, c.Policy(), c.nowMs) {
				c.heldEvents = append(c.heldEvents, Event{Ref: ref, Type: EventCursor, Cursor: cur.Shown(prof.Profile), Video: cur.Video})
			}
		}
	}
	return true
}

// Flush makes everything merged since the last Flush durable in one
// write, then releases the answers, acknowledgements and events that
// waited for it. On a storage error the held answers become
// ErrUnavailable and the acknowledgements are dropped.
func (c *Core) Flush() error {
	err := c.persist()
	if err == nil && c.lost != nil {
		err = c.lost
	}
	c.lost = nil
	if err != nil {
		for _, d := range c.heldDone {
			c.ready.Completions = append(c.ready.Completions, Completion{ID: d.ID, Err: fmt.Errorf("%w: %v", ErrUnavailable, err)})
		}
		for _, e := range c.heldMsgs {
			if e.Msg.Type == MsgResult {
				m := Msg{Type: MsgResult, ReqID: e.Msg.ReqID}
				m.ErrCode, m.ErrText = errToCode(fmt.Errorf("%w: %v", ErrUnavailable, err))
				c.send(e.To, m)
			}
		}
		c.heldDone, c.heldMsgs, c.heldEvents, c.flushedAt, c.catchUps = nil, nil, nil, nil, nil
		clear(c.queued)
		return err
	}
	c.ready.Completions = append(c.ready.Completions, c.heldDone...)
	c.ready.Messages = append(c.ready.Messages, c.heldMsgs...)
	c.heldDone, c.heldMsgs = nil, nil
	for _, wid := range c.flushedAt {
		if w, ok := c.writes[wid]; ok {
			w.acked[c.cfg.Self] = true
			c.checkWrite(wid, w)
		}
	}
	c.flushedAt = nil
	c.releaseEvents()
	c.runCatchUps()
	return nil
}

// persist writes the overlay to the store in one durable batch.
func (c *Core) persist() error {
	puts, deletes := c.buf.Pending()
	if plantEarlyAck {
		puts, c.lagPuts = c.lagPuts, puts
		deletes, c.lagDeletes = c.lagDeletes, deletes
	}
	// Hints changed in this cycle go into the same batch: one sync.
	puts, deletes = c.appendHintWrites(puts, deletes)
	if len(puts) == 0 && len(deletes) == 0 {
		return nil
	}
	c.stats.Flushes++
	c.stats.FlushedRecords += uint64(len(puts) + len(deletes))
	if err := c.store.Write(puts, deletes); err != nil {
		// The overlay is lost with the failed batch; the digests no longer
		// match the store: they are stale until the next anti-entropy round
		// rebuilds them (once, however many writes failed meanwhile; a
		// rebuild reads the whole store), and are neither sent nor
		// answered before. Changed hints stay marked and are written by
		// the next Flush.
		c.stats.StoreErrors++
		c.lost = err
		c.buf.Stale = true // rebuilt by the next anti-entropy round
		return err
	}
	clear(c.hintDirty)
	return nil
}

// releaseEvents hands durable changes to local subscribers and to every
// node with interest in their profile.
func (c *Core) releaseEvents() {
	if len(c.heldEvents) == 0 {
		return
	}
	byNode := map[ring.NodeID][]Event{}
	c.deliverEvents(c.heldEvents...)
	for _, ev := range c.heldEvents {
		for n, until := range c.interest[ev.Ref] {
			if n != c.cfg.Self && until > c.nowMs {
				byNode[n] = append(byNode[n], ev)
			}
		}
	}
	c.heldEvents = nil
	for _, n := range slices.Sorted(maps.Keys(byNode)) {
		c.stats.EventsSent += uint64(len(byNode[n]))
		c.send(n, Msg{Type: MsgEvents, Events: byNode[n]})
	}
}

// Ready returns what the driver must do now and clears it.
func (c *Core) Ready() Ready {
	r := c.ready
	c.ready = Ready{}
	return r
}

// Tick advances the Core's time: requests time out, hints replay,
// interest is renewed and expires, anti-entropy compares digests.
func (c *Core) Tick(nowMs int64) {
	if nowMs > c.nowMs {
		c.nowMs = nowMs
	}
	for _, id := range due(c.forwarded, func(f *forwarded) int64 { return f.deadline }, c.nowMs, &c.forwardedDue) {
		delete(c.forwarded, id)
		c.complete(id, Result{}, fmt.Errorf("%w: no answer from the partition's coordinator in %v", ErrUnavailable, c.cfg.RequestTimeout), false)
	}
	c.tickQuorumReads()
	c.dedup.expire(c.nowMs)
	for _, wid := range due(c.writes, func(w *coordWrite) int64 { return w.deadline }, c.nowMs, &c.writesDue) {
		w := c.writes[wid]
		if !w.answered {
			w.answered = true
			c.stats.QuorumFailures++
			c.answer(w.origin, w.reqID, w.op, Result{}, fmt.Errorf("%w: %d of %d owners acknowledged in %v, %d needed", ErrUnavailable, len(w.acked), len(w.owners), c.cfg.RequestTimeout, w.need), false)
		}
		for _, o := range w.owners {
			if !w.acked[o] && o != c.cfg.Self {
				c.storeHints(o, w.records)
			}
		}
		delete(c.writes, wid)
	}
	if c.nowMs-c.lastHints >= c.cfg.HintInterval.Milliseconds() {
		c.lastHints = c.nowMs
		c.replayHints()
		c.pullHandoffs()
	}
	c.renewInterest()
	if lease := c.cfg.InterestLease.Milliseconds(); c.nowMs-c.lastExpire >= lease/3 {
		c.lastExpire = c.nowMs
		for r, set := range c.interest {
			for n, until := range set {
				if until <= c.nowMs {
					delete(set, n)
				}
			}
			if len(set) == 0 {
				delete(c.interest, r)
			}
		}
	}
	if c.nowMs-c.lastAE >= c.cfg.AEInterval.Milliseconds() {
		c.lastAE = c.nowMs
		c.antiEntropyRound()
	}
}

// dueBound is a lower bound of the deadlines in a map of requests in
// flight (0: none known), so that a tick — every cycle ticks — scans the
// map only when something may be due.
type dueBound int64

// add notes a deadline of an entry added to the map.
func (b *dueBound) add(deadline int64) {
	if *b == 0 || dueBound(deadline) < *b {
		*b = dueBound(deadline)
	}
}

// due returns, in order, the ids of the entries of m whose deadline is at
// or before now: what a tick expires, usually none of many (sorting every
// id on every tick, then scanning every entry every cycle, was a tenth of
// the simulator's time). b bounds the deadlines of m (see dueBound).
func due[V any](m map[uint64]V, deadline func(V) int64, now int64, b *dueBound) []uint64 {
	if *b == 0 || int64(*b) > now {
		return nil
	}
	var ids []uint64
	*b = 0
	for id, v := range m {
		if d := deadline(v); d <= now {
			ids = append(ids, id)
		} else {
			b.add(d)
		}
	}
	slices.Sort(ids)
	return ids
}

// Anti-entropy and handoff.

func (c *Core) antiEntropyRound() {
	if !c.haveTable {
		return
	}
	if c.buf.Stale {
		if err := c.buf.RebuildDigests(c.cfg.Local.Partitions); err != nil {
			c.stats.StoreErrors++
			return // digests that may lie are not sent
		}
	}
	n := c.table.Partitions()
	sent := 0
	for i := 0; i < n && sent < c.cfg.AEPartitions; i++ {
		p := uint16((c.aeNext + i) % n)
		owners := c.table.OwnersOf(p)
		if !slices.Contains(owners, c.cfg.Self) {
			// A partition this node no longer owns but still holds data
			// of (it left the ring, or was removed while down): compare
			// it with an owner too, so writes only this node has reach
			// the owners (found by the simulator: a write acknowledged by
			// two owners that both died and were removed was lost).
			if *c.buf.Digest(p) == ([DigestBuckets]uint64{}) {
				continue
			}
		}
		var peers []ring.NodeID
		for _, o := range owners {
			if o != c.cfg.Self && c.isAlive(o) {
				peers = append(peers, o)
			}
		}
		if len(peers) == 0 {
			continue
		}
		c.aePeer++
		peer := peers[c.aePeer%len(peers)]
		d := c.buf.Digest(p)
		c.send(peer, Msg{Type: MsgDigest, P: p, Digest: d[:]})
		sent++
	}
	c.aeNext = (c.aeNext + c.cfg.AEPartitions) % n
	c.stats.AERounds++
}

func (c *Core) onDigest(from ring.NodeID, m Msg) {
	if len(m.Digest) != DigestBuckets || int(m.P) >= c.cfg.Local.Partitions {
		c.stats.BadMessages++
		return
	}
	if c.buf.Stale {
		return // our digests may lie; the next round rebuilds them
	}
	mine := c.buf.Digest(m.P)
	var diff uint64
	for b := range DigestBuckets {
		if mine[b] != m.Digest[b] {
			diff |= 1 << b
		}
	}
	if plantAESkip {
		diff &^= 1
	}
	if diff == 0 {
		return
	}
	c.sendBuckets(from, m.P, diff, true, false, nil)
}

// sendBuckets sends this node's records of the buckets in mask, but those
// the peer just sent as they are here (sent: the peer's records, encoded,
// when this is the reply to them; nil otherwise).
func (c *Core) sendBuckets(to ring.NodeID, p uint16, mask uint64, reply, handoff bool, sent []KeyValue) {
	var puts []storage.Put
	err := c.buf.ScanPartition(p, func(k storage.Key, r crdt.Record) error {
		if mask&(1<<bufstore.BucketOf(k)) != 0 {
			puts = append(puts, storage.Put{Key: k, Record: r})
		}
		return nil
	})
	if err != nil {
		// Nothing is sent: the peer's next anti-entropy round asks again.
		c.stats.StoreErrors++
		return
	}
	kvs := encodeRecords(puts)
	if len(sent) > 0 {
		// The reply of an anti-entropy exchange: the peer has merged
		// nothing yet of ours, but it holds what it sent; a record that
		// merged here into exactly what it sent needs no trip back (it
		// was most of every reply: the buckets differ by a record or two).
		theirs := make(map[string]string, len(sent))
		for _, kv := range sent {
			theirs[string(kv.Key)] = string(kv.Value)
		}
		kvs = slices.DeleteFunc(kvs, func(kv KeyValue) bool {
			v, ok := theirs[string(kv.Key)]
			return ok && v == string(kv.Value)
		})
		if len(kvs) == 0 {
			return
		}
	}
	c.stats.AERecordsSent += uint64(len(kvs))
	c.send(to, Msg{Type: MsgBuckets, P: p, Buckets: mask, Reply: reply, Handoff: handoff, Records: kvs})
}

func (c *Core) onBuckets(from ring.NodeID, m Msg) {
	if int(m.P) >= c.cfg.Local.Partitions {
		c.stats.BadMessages++
		return
	}
	c.mergeRecords(m.Records, true)
	c.stats.AEBucketsRepaired += uint64(popcount(m.Buckets))
	if m.Reply {
		c.sendBuckets(from, m.P, m.Buckets, false, false, m.Records)
	}
	if m.Handoff {
		if _, ok := c.handoff[m.P]; ok {
			delete(c.handoff, m.P)
			delete(c.pulled, m.P)
			c.stats.HandoffsDone++
		}
	}
}

func (c *Core) onPull(from ring.NodeID, m Msg) {
	if int(m.P) >= c.cfg.Local.Partitions {
		c.stats.BadMessages++
		return
	}
	c.sendBuckets(from, m.P, ^uint64(0), false, true, nil)
}

// pullHandoffs asks an old owner for each partition still to pull; a pull
// without an answer is sent again (to the next live old owner) after a
// request timeout. While no old owner is alive the node serves the
// partition from what it has (anti-entropy with the other owners fills
// it) and keeps the pull pending: the old owners may hold the only copies
// (found by the simulator: when every old owner of a partition died and
// the ring moved on, dropping the pull lost acknowledged writes for good).
func (c *Core) pullHandoffs() {
	for _, p := range slices.Sorted(maps.Keys(c.handoff)) {
		if at, ok := c.pulled[p]; ok && c.nowMs-at < c.cfg.RequestTimeout.Milliseconds() {
			continue
		}
		var live []ring.NodeID
		for _, o := range c.handoff[p] {
			if c.isAlive(o) {
				live = append(live, o)
			}
		}
		if len(live) == 0 {
			continue
		}
		c.pulled[p] = c.nowMs
		c.send(live[int(c.nowMs/max(1, c.cfg.RequestTimeout.Milliseconds()))%len(live)], Msg{Type: MsgPull, P: p})
	}
}

// Digest returns this node's digest of partition p (for tests and the
// simulator's convergence check).
func (c *Core) Digest(p uint16) [DigestBuckets]uint64 { return *c.buf.Digest(p) }

// Helpers.

// compareKeys orders keys as the store does. The encode errors are safe to
// drop: only stored (hence encodable) keys are compared.
func compareKeys(a, b storage.Key) int {
	ka, _ := storage.EncodeKey(a)
	kb, _ := storage.EncodeKey(b)
	return slices.Compare(ka, kb)
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
