// Package clustersim is playhead's deterministic cluster simulator: it runs
// the real replication code (gossip.Core, over storage.Mem or storage.Pebble
// on Pebble's crashable in-memory file system, and the crdt rules) for several nodes in one goroutine, on a virtual clock, with one
// seeded PRNG deciding every latency, loss, duplication and reordering. The
// same seed and schedule always give the same trace hash.
//
// It must not import node/ and never reads the wall clock, opens a socket
// or uses unseeded randomness.
package clustersim

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Options configures a simulation. Zero fields take the defaults.
type Options struct {
	Seed        uint64
	Nodes       int // the default value is 3
	Partitions  int // the default value is 64 (small rings keep runs fast)
	Replication int // the default value is ring.DefaultReplicas (3)
	WriteQuorum int // the default value is gossip.DefaultWriteQuorum (2)
	// Network: latency uniform in [MinLatencyMs, MaxLatencyMs]; each
	// message lost with LossPct, duplicated with DupPct (percent).
	MinLatencyMs, MaxLatencyMs int64
	LossPct, DupPct            float64
	// TickMs is how often each node's Core ticks. The default value is 10.
	TickMs int64
	// Core settings passed to every node.
	Core gossip.CoreConfig
	// Mutate, if set, changes each node's Core config (planted bugs).
	Mutate func(*gossip.CoreConfig)
	// DeferredSync models a disk: a store write is durable only once the
	// node's driver syncs it after the Core's Flush, and a crash keeps a
	// random part of what was not synced.
	DeferredSync bool
	// Pebble puts every node on the production store (storage.Pebble) over
	// Pebble's crashable in-memory file system instead of storage.Mem. A
	// crash clones the file system as a power loss would leave it — what
	// was synced, and UnsyncedPct percent of the rest (each unsynced block
	// and directory entry, drawn from a PRNG seeded by the Sim's) — and
	// reopens the store on the clone.
	Pebble      bool
	UnsyncedPct int
}

func (o *Options) ensureDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Partitions == 0 {
		o.Partitions = 64
	}
	if o.Replication == 0 {
		o.Replication = ring.DefaultReplicas
	}
	if o.WriteQuorum == 0 {
		o.WriteQuorum = gossip.DefaultWriteQuorum
	}
	if o.MaxLatencyMs == 0 {
		o.MinLatencyMs, o.MaxLatencyMs = 1, 10
	}
	if o.TickMs == 0 {
		o.TickMs = 10
	}
}

// Sim is one simulated cluster.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	now   int64
	queue eventQueue
	seq   uint64
	trace hash.Hash

	nodes []*Node
	table ring.Table
	// cut[from][to]: messages from → to are dropped.
	cut map[ring.NodeID]map[ring.NodeID]bool

	skew  map[ring.NodeID]int64 // node clock offset (ms)
	drift map[ring.NodeID]int64 // node clock rate error (ppm): the error grows by drift µs per ms

	nextReq uint64
	results map[uint64]gossip.Completion
	// at: the node each unanswered request was submitted to; a crash of
	// that node fails it (the device's connection broke).
	at map[uint64]ring.NodeID
	// Delivered counts messages delivered, Dropped those lost; Crashes
	// the node crashes.
	Delivered, Dropped, Crashes uint64
	// OnEvents, if set, receives the events each node's Core hands to its
	// local push subscribers (Ready.Events: the gossip.Notifier's input),
	// as soon as they are released; Node.Events then stays empty. It must
	// not call back into the Sim.
	OnEvents func(n *Node, evs []gossip.Event)
}

// Node is one simulated node.
type Node struct {
	ID     ring.NodeID
	Core   *gossip.Core
	Store  storage.Store
	disk   *disk
	Up     bool
	Events []gossip.Event // pushed to this node's subscribers
	sim    *Sim
}

// New builds a cluster of opts.Nodes nodes sharing one ring.
func New(opts Options) (*Sim, error) {
	opts.ensureDefaults()
	s := &Sim{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		now:     simEpoch,
		trace:   sha256.New(),
		cut:     map[ring.NodeID]map[ring.NodeID]bool{},
		skew:    map[ring.NodeID]int64{},
		drift:   map[ring.NodeID]int64{},
		results: map[uint64]gossip.Completion{},
		at:      map[uint64]ring.NodeID{},
	}
	var ids []ring.NodeID
	for i := 1; i <= opts.Nodes; i++ {
		ids = append(ids, ring.NodeID(fmt.Sprintf("n%d", i)))
	}
	s.table = ring.NewTable(opts.Partitions, opts.Replication, ids)
	for _, id := range ids {
		n, err := s.newNode(id, s.newStore())
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
		n.Core.SetTable(s.table)
	}
	for _, n := range s.nodes {
		s.scheduleTick(n.ID, s.now+1+s.rng.Int64N(opts.TickMs))
	}
	return s, nil
}

// disk is a node's store: storage.Mem, or storage.Pebble on a crashable
// in-memory file system.
type disk struct {
	mem *storage.Mem
	fs  *vfs.MemFS
	db  *storage.Pebble
}

func (d *disk) store() storage.Store {
	if d.db != nil {
		return d.db
	}
	return d.mem
}

// pebbleDir is where each node's Pebble store lives on its file system.
const pebbleDir = "/playhead"

func openPebble(fs *vfs.MemFS) (*storage.Pebble, error) {
	// A memtable no simulated run fills: Pebble then never flushes or
	// compacts in the background, and every write is synced by the Write
	// that made it, so what a crash keeps does not depend on goroutines.
	return storage.Open(pebbleDir, storage.Options{FS: fs, CacheSize: 1 << 20, MemTableSize: 64 << 20})
}

func (s *Sim) newStore() *disk {
	if s.opts.Pebble {
		fs := vfs.NewCrashableMem()
		db, err := openPebble(fs)
		if err != nil {
			panic(fmt.Sprintf("clustersim: opening Pebble on the in-memory file system: %v", err))
		}
		return &disk{fs: fs, db: db}
	}
	if s.opts.DeferredSync {
		return &disk{mem: storage.NewMem(storage.WithDeferredSync())}
	}
	return &disk{mem: storage.NewMem()}
}

// crash returns what d's disk holds after a power loss now.
func (s *Sim) crashDisk(d *disk) *disk {
	if d.db == nil {
		return &disk{mem: d.mem.Crash(func() bool { return s.rng.IntN(2) == 0 })}
	}
	// Pebble's CrashClone walks directories in map order, so it gets its
	// own PRNG: the Sim's stream must not depend on how many draws it makes.
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	fs := d.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: s.opts.UnsyncedPct, RNG: rng})
	d.db.Close() // the old process is gone; its file system is dropped
	db, err := openPebble(fs)
	if err != nil {
		panic(fmt.Sprintf("clustersim: reopening Pebble after a crash: %v", err))
	}
	return &disk{fs: fs, db: db}
}

// Close releases the nodes' stores (Pebble's goroutines).
func (s *Sim) Close() {
	for _, n := range s.nodes {
		if n.disk != nil && n.disk.db != nil {
			n.disk.db.Close()
		}
	}
}

// SetSkew sets node i's clock offset in ms.
func (s *Sim) SetSkew(i int, ms int64) { s.skew[s.nodes[i-1].ID] = ms }

// SetDrift sets node i's clock rate error in parts per million: its clock
// runs ppm µs fast (negative: slow) per ms of simulated time.
func (s *Sim) SetDrift(i int, ppm int64) { s.drift[s.nodes[i-1].ID] = ppm }

// simEpoch is the virtual time every run starts at (2027-01-15).
const simEpoch = 1_800_000_000_000

func (s *Sim) nodeNow(n *Node) int64 { return s.clockOf(n.ID) }

// clockOf is node id's clock: simulated time plus its offset and drift.
// Drift stays far below 1e6 ppm, so a node's clock never goes back.
func (s *Sim) clockOf(id ring.NodeID) int64 {
	return s.now + s.skew[id] + s.drift[id]*(s.now-simEpoch)/1_000_000
}

func (s *Sim) newNode(id ring.NodeID, d *disk) (*Node, error) {
	store := d.store()
	cfg := s.opts.Core
	cfg.Self = id
	cfg.Local.Partitions = s.opts.Partitions
	cfg.WriteQuorum = s.opts.WriteQuorum
	if s.opts.Mutate != nil {
		s.opts.Mutate(&cfg)
	}
	core, err := gossip.NewCore(cfg, store, s.clockOf(id))
	if err != nil {
		return nil, err
	}
	return &Node{ID: id, Core: core, Store: store, disk: d, Up: true, sim: s}, nil
}

// Now returns the virtual time in ms since the Unix epoch.
func (s *Sim) Now() int64 { return s.now }

// Rand returns the simulation's PRNG (for workloads: the only randomness).
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Node returns node i (1-based).
func (s *Sim) Node(i int) *Node { return s.nodes[i-1] }

// Nodes returns every node.
func (s *Sim) Nodes() []*Node { return s.nodes }

// Table returns the ring.
func (s *Sim) Table() ring.Table { return s.table }

// TraceHash is the hash of everything delivered and answered so far.
func (s *Sim) TraceHash() string { return hex.EncodeToString(s.trace.Sum(nil)) }

// Submit gives node i (1-based) a request and returns its id; Result
// reports the answer once it came.
func (s *Sim) Submit(i int, op gossip.Op) uint64 {
	s.nextReq++
	id := s.nextReq
	n := s.nodes[i-1]
	if !n.Up {
		s.results[id] = gossip.Completion{ID: id, Err: gossip.ErrUnavailable}
		return id
	}
	s.at[id] = n.ID
	n.Core.Tick(s.nodeNow(n))
	n.Core.Submit(id, op)
	s.process(n)
	return id
}

// SetInterest sets the profiles node i's push subscribers follow (as the
// node's hub does on a first subscriber and on every renewal) and sends
// the interest the Core registers with the profiles' owners.
func (s *Sim) SetInterest(i int, refs []gossip.Ref) {
	n := s.nodes[i-1]
	if !n.Up {
		return
	}
	n.Core.Tick(s.nodeNow(n))
	n.Core.SetInterest(refs)
	s.process(n)
}

// ResumePush tells node i that a push stream of ref opened resuming from
// since (what node/events.go does after subscribing a stream with after=).
func (s *Sim) ResumePush(i int, ref gossip.Ref, since crdt.HLC) {
	n := s.nodes[i-1]
	if !n.Up {
		return
	}
	n.Core.Tick(s.nodeNow(n))
	n.Core.ResumePush(ref, since)
	s.process(n)
}

// NodeHLC is node i's HLC now (the Playhead-HLC header of an answer).
func (s *Sim) NodeHLC(i int) crdt.HLC {
	n := s.nodes[i-1]
	n.Core.Tick(s.nodeNow(n))
	return n.Core.Now()
}

// Result returns the answer to request id, if it came.
func (s *Sim) Result(id uint64) (gossip.Completion, bool) {
	c, ok := s.results[id]
	return c, ok
}

// Do submits op at node i and runs until it is answered (at most limitMs).
func (s *Sim) Do(i int, op gossip.Op, limitMs int64) gossip.Completion {
	id := s.Submit(i, op)
	end := s.now + limitMs
	for s.now < end {
		if c, ok := s.results[id]; ok {
			return c
		}
		if !s.step() {
			break
		}
	}
	if c, ok := s.results[id]; ok {
		return c
	}
	return gossip.Completion{ID: id, Err: fmt.Errorf("%w: no answer in %d ms of simulated time", gossip.ErrUnavailable, limitMs)}
}

// RunFor runs the simulation for ms of virtual time.
func (s *Sim) RunFor(ms int64) {
	end := s.now + ms
	for len(s.queue) > 0 && s.queue[0].at <= end {
		s.step()
	}
	if s.now < end {
		s.now = end
	}
}

// Partition cuts every link between the groups (symmetric).
func (s *Sim) Partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			s.block(s.nodes[i-1].ID, s.nodes[j-1].ID)
			s.block(s.nodes[j-1].ID, s.nodes[i-1].ID)
		}
	}
}

// CutOneWay drops messages from node i to node j only (asymmetric).
func (s *Sim) CutOneWay(i, j int) { s.block(s.nodes[i-1].ID, s.nodes[j-1].ID) }

func (s *Sim) block(from, to ring.NodeID) {
	if s.cut[from] == nil {
		s.cut[from] = map[ring.NodeID]bool{}
	}
	s.cut[from][to] = true
}

// Heal restores every link.
func (s *Sim) Heal() { s.cut = map[ring.NodeID]map[ring.NodeID]bool{} }

// SetAlive tells every other node's Core that node i is (not) alive, as
// membership would once it detected the change.
func (s *Sim) SetAlive(i int, alive bool) {
	id := s.nodes[i-1].ID
	for _, n := range s.nodes {
		if n.ID != id {
			n.Core.SetAlive(id, alive)
		}
	}
}

// Crash stops node i: its in-flight state is lost; its store keeps what
// was durable (the in-memory store's crash semantics).
func (s *Sim) Crash(i int) {
	n := s.nodes[i-1]
	n.Up = false
	s.Crashes++
	n.disk = s.crashDisk(n.disk)
	n.Store = n.disk.store()
	for _, id := range slices.Sorted(maps.Keys(s.at)) {
		if s.at[id] == n.ID {
			delete(s.at, id)
			s.results[id] = gossip.Completion{ID: id, Err: fmt.Errorf("%w: the node crashed", gossip.ErrUnavailable)}
		}
	}
}

// Restart brings a crashed node back with a fresh Core over its store.
func (s *Sim) Restart(i int) error {
	old := s.nodes[i-1]
	n, err := s.newNode(old.ID, old.disk)
	if err != nil {
		return err
	}
	n.Core.SetTable(s.table)
	s.nodes[i-1] = n
	s.scheduleTick(n.ID, s.now+s.opts.TickMs)
	return nil
}

// AddNode adds a node with an empty store (not yet in the ring).
func (s *Sim) AddNode() (int, error) {
	id := ring.NodeID(fmt.Sprintf("n%d", len(s.nodes)+1))
	n, err := s.newNode(id, s.newStore())
	if err != nil {
		return 0, err
	}
	n.Core.SetTable(s.table)
	s.nodes = append(s.nodes, n)
	s.scheduleTick(id, s.now+s.opts.TickMs)
	return len(s.nodes), nil
}

// SetMembers rebalances the ring over the given nodes and installs it on
// every live node (as raft would, one node at a time in node order).
func (s *Sim) SetMembers(idx []int) {
	var ids []ring.NodeID
	for _, i := range idx {
		ids = append(ids, s.nodes[i-1].ID)
	}
	s.table = ring.Rebalance(s.table, ids)
	for _, n := range s.nodes {
		if n.Up {
			n.Core.SetTable(s.table)
			s.process(n)
		}
	}
}

// Events of the queue: a message delivery or a node's tick.

type event struct {
	at   int64
	seq  uint64
	to   ring.NodeID
	from ring.NodeID
	msg  *gossip.Msg // nil: a tick
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *Sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

func (s *Sim) scheduleTick(id ring.NodeID, at int64) { s.push(event{at: at, to: id}) }

func (s *Sim) node(id ring.NodeID) *Node {
	for _, n := range s.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// step runs the next event; false when the queue is empty.
func (s *Sim) step() bool {
	if len(s.queue) == 0 {
		return false
	}
	e := heap.Pop(&s.queue).(event)
	if e.at > s.now {
		s.now = e.at
	}
	n := s.node(e.to)
	if n == nil {
		return true
	}
	if e.msg == nil {
		if !n.Up {
			return true // a crashed node's ticks stop; Restart schedules new ones
		}
		n.Core.Tick(s.nodeNow(n))
		s.process(n)
		s.scheduleTick(n.ID, s.now+s.opts.TickMs)
		return true
	}
	if !n.Up {
		s.Dropped++
		return true
	}
	s.Delivered++
	s.record("deliver", e.from, e.to, uint64(e.msg.Type), e.msg.ReqID)
	n.Core.Tick(s.nodeNow(n))
	n.Core.Step(e.from, *e.msg)
	s.process(n)
	return true
}

// process flushes a node's Core and carries out its Ready.
func (s *Sim) process(n *Node) {
	if err := n.Core.Flush(); err != nil {
		panic(fmt.Sprintf("clustersim: flush on the in-memory store failed: %v", err))
	}
	if n.disk.mem != nil {
		n.disk.mem.Sync() // the durable write the driver's Flush stands for
	}
	rd := n.Core.Ready()
	for _, c := range rd.Completions {
		delete(s.at, c.ID)
		s.results[c.ID] = c
		errText := ""
		if c.Err != nil {
			errText = c.Err.Error()
		}
		s.record("complete", n.ID, "", c.ID, uint64(len(errText)))
	}
	if s.OnEvents != nil {
		if len(rd.Events) > 0 {
			s.OnEvents(n, rd.Events)
		}
	} else {
		n.Events = append(n.Events, rd.Events...)
	}
	for _, env := range rd.Messages {
		s.sendMsg(n.ID, env)
	}
}

func (s *Sim) sendMsg(from ring.NodeID, env gossip.Envelope) {
	if s.cut[from][env.To] || s.rng.Float64()*100 < s.opts.LossPct {
		s.Dropped++
		return
	}
	// Messages cross the wire encoded, as in production.
	frame, err := gossip.EncodeFrame([]gossip.Msg{env.Msg})
	if err != nil {
		panic(err)
	}
	copies := 1
	if s.rng.Float64()*100 < s.opts.DupPct {
		copies = 2
	}
	for range copies {
		msgs, err := gossip.DecodeFrame(frame)
		if err != nil || len(msgs) != 1 {
			panic(fmt.Sprintf("clustersim: frame round trip: %v", err))
		}
		lat := s.opts.MinLatencyMs + s.rng.Int64N(s.opts.MaxLatencyMs-s.opts.MinLatencyMs+1)
		s.push(event{at: s.now + lat, to: env.To, from: from, msg: &msgs[0]})
	}
}

func (s *Sim) record(what string, a, b ring.NodeID, x, y uint64) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(s.now))
	s.trace.Write(buf[:])
	s.trace.Write([]byte(what))
	s.trace.Write([]byte(a))
	s.trace.Write([]byte{0})
	s.trace.Write([]byte(b))
	binary.BigEndian.PutUint64(buf[:], x)
	s.trace.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], y)
	s.trace.Write(buf[:])
}

// Converged reports whether every live owner of every partition holds the
// same digest, and the first partition where they differ.
func (s *Sim) Converged() (bool, string) {
	for p := 0; p < s.table.Partitions(); p++ {
		var first *[gossip.DigestBuckets]uint64
		var firstID ring.NodeID
		for _, o := range s.table.OwnersOf(uint16(p)) {
			n := s.node(o)
			if n == nil || !n.Up {
				continue
			}
			d := n.Core.Digest(uint16(p))
			if first == nil {
				first, firstID = &d, o
				continue
			}
			if d != *first {
				return false, fmt.Sprintf("partition %d: %s and %s differ", p, firstID, o)
			}
		}
	}
	return true, ""
}

// Owners returns the 1-based indexes of the owners of ref's partition.
func (s *Sim) Owners(ref gossip.Ref) []int {
	p := ring.PartitionOf(ref.Account, ref.Profile, s.opts.Partitions)
	var out []int
	for _, o := range s.table.OwnersOf(p) {
		out = append(out, slices.IndexFunc(s.nodes, func(n *Node) bool { return n.ID == o })+1)
	}
	return out
}
