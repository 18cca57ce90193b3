// Package clustersim is playhead's deterministic cluster simulator: it runs
// the real replication code (gossip.Core, over storage.Mem or storage.Pebble
// on Pebble's crashable in-memory file system, and the crdt rules) for several nodes in one goroutine, on a virtual clock, with PRNG
// streams derived from the seed (one per link, one per node) deciding every
// latency, loss, duplication and reordering. The same seed and schedule
// always give the same trace hash.
//
// It must not import node/ and never reads the wall clock, opens a socket
// or uses unseeded randomness.
package clustersim

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
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
	// Batch is the most inputs (peer frames, requests, ticks, ring and
	// membership changes) a node takes into one cycle, as gossip/driver
	// takes everything waiting: each cycle takes a number drawn from
	// [1, Batch] of those waiting, ticks the Core once, steps each, then
	// flushes once and carries out Ready. The default value is 1 (one
	// input per cycle).
	Batch int
	// CycleMs bounds how long a node's cycle takes (its store write and
	// sync): after a cycle the node takes no input for a time drawn from
	// [0, CycleMs] ms, and what arrives meanwhile waits for the next
	// cycle. The default value is 0.
	CycleMs int64
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
	if o.Batch == 0 {
		o.Batch = 1
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
	// Streams derived from the seed per link (latency, loss, duplication)
	// and per node (tick phase and what a crash keeps; the cycles' batch
	// and busy time; the store-error coins), keyed by their names: what
	// one link or node draws does not move another's (plan.go: a shrunk
	// plan keeps them).
	links map[[2]ring.NodeID]*rand.Rand
	nrand map[string]*rand.Rand
	// founders: each node's founding rule until the ring is founded.
	founders map[ring.NodeID]*ring.Controller
	founded  bool
	// cut[from][to]: messages from → to are dropped.
	cut map[ring.NodeID]map[ring.NodeID]bool

	// storeErr: the storage errors injected per node (SetStoreErrors).
	storeErr map[ring.NodeID]storeFault

	skew  map[ring.NodeID]int64 // node clock offset (ms)
	drift map[ring.NodeID]int64 // node clock rate error (ppm): the error grows by drift µs per ms

	nextReq uint64
	results map[uint64]gossip.Completion
	// at: the node each unanswered request was submitted to; a crash of
	// that node fails it (the device's connection broke).
	at map[uint64]ring.NodeID
	// Delivered counts messages delivered, Dropped those lost; Crashes
	// the node crashes. Cycles counts the nodes' cycles and Inputs the
	// inputs they took (Inputs/Cycles is the mean batch).
	Delivered, Dropped, Crashes uint64
	Cycles, Inputs              uint64
	// StoreErrors counts the store writes that failed (SetStoreErrors),
	// FailedFlushes the cycles whose Flush reported an error.
	StoreErrors, FailedFlushes uint64
	// OnEvents, if set, receives the events each node's Core hands to its
	// local push subscribers (Ready.Events: the gossip.Notifier's input),
	// as soon as they are released; Node.Events then stays empty. It must
	// not call back into the Sim.
	OnEvents func(n *Node, evs []gossip.Event)
	// OnSend, if set, sees every message a node puts on the wire (not
	// lost, not cut) with the size of its encoded frame: the message
	// accounting of the scale tests (scale_test.go). It must not call
	// back into the Sim; it draws nothing, so traces do not change.
	OnSend func(from, to ring.NodeID, m *gossip.Msg, frameBytes int)
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

	// inbox holds the inputs waiting for the node's next cycle (the
	// driver's channel); cycleAt is when that cycle is scheduled (0: none),
	// busyUntil when the last cycle's store write ends.
	inbox     []input
	cycleAt   int64
	busyUntil int64
	// tickWaiting: a tick is in the inbox; the next waits for it to be
	// taken (the driver's ticker holds one tick, dropping the rest).
	tickWaiting bool
}

// input is one thing a node's driver takes into a cycle.
type input struct {
	kind  inputKind
	from  ring.NodeID
	msgs  []gossip.Msg // inFrame
	id    uint64       // inSubmit
	op    gossip.Op    // inSubmit
	refs  []gossip.Ref // inInterest
	table ring.Table   // inTable
	peer  ring.NodeID  // inAlive
	alive bool         // inAlive
}

type inputKind uint8

const (
	inTick inputKind = iota
	inFrame
	inSubmit
	inInterest
	inTable
	inAlive
)

// New builds a cluster of opts.Nodes nodes sharing one ring.
func New(opts Options) (*Sim, error) {
	opts.ensureDefaults()
	s := &Sim{
		opts:     opts,
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		now:      simEpoch,
		trace:    sha256.New(),
		cut:      map[ring.NodeID]map[ring.NodeID]bool{},
		skew:     map[ring.NodeID]int64{},
		storeErr: map[ring.NodeID]storeFault{},
		founders: map[ring.NodeID]*ring.Controller{},
		drift:    map[ring.NodeID]int64{},
		results:  map[uint64]gossip.Completion{},
		at:       map[uint64]ring.NodeID{},
		links:    map[[2]ring.NodeID]*rand.Rand{},
		nrand:    map[string]*rand.Rand{},
	}
	var ids []ring.NodeID
	for i := 1; i <= opts.Nodes; i++ {
		ids = append(ids, ring.NodeID(fmt.Sprintf("n%d", i)))
	}
	for _, id := range ids {
		n, err := s.newNode(id, s.newStore())
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
		// Every node of a new cluster runs the founding rule
		// (--bootstrap-expect with every node).
		f, err := ring.NewController(id, ring.ControllerConfig{BootstrapExpect: opts.Nodes})
		if err != nil {
			return nil, err
		}
		s.founders[id] = f
	}
	for _, n := range s.nodes {
		s.scheduleTick(n.ID, s.now+1+s.nodeRand(n.ID).Int64N(opts.TickMs))
	}
	// The nodes start without a ring and found one as a new cluster does
	// (found): run until every node has it.
	for deadline := s.now + 60_000; s.now < deadline; {
		ready := s.founded
		for _, n := range s.nodes {
			_, have := n.Core.Table()
			ready = ready && have
		}
		if ready {
			return s, nil
		}
		if !s.step() {
			break
		}
	}
	s.Close()
	return nil, fmt.Errorf("clustersim: the %d nodes founded no ring in 60 s", opts.Nodes)
}

// found runs node n's founding rule (ring.Controller.Found, as node/ runs
// it on its membership view) while the cluster has no ring: every live
// node is alive to every other, and a node whose Core knows a ring had
// ring state. The founder's ring holds the members it sees (its leader's
// reconciler adds them at once) and reaches every live node.
func (s *Sim) found(n *Node) {
	var alive []ring.NodeID
	for _, m := range s.nodes {
		if m.Up {
			alive = append(alive, m.ID)
		}
	}
	_, had := n.Core.Table()
	if !s.founders[n.ID].Found(s.nodeNow(n), alive, had) {
		return
	}
	s.founded = true
	s.table = ring.NewTable(s.opts.Partitions, s.opts.Replication, alive)
	s.record("found", n.ID, "", uint64(len(alive)), 0)
	for _, m := range s.nodes {
		if m.Up {
			s.enqueue(m, input{kind: inTable, table: s.table})
		}
	}
}

// disk is a node's store: storage.Mem, or storage.Pebble on a crashable
// in-memory file system.
type disk struct {
	mem *storage.Mem
	fs  *vfs.MemFS
	db  *storage.Pebble
	// syncFailed: the last write's sync failed (faultyStore); the cycle
	// does not sync the in-memory store, so the write stays undurable
	// until a later write syncs (or a crash decides).
	syncFailed bool
}

// storeFault is the storage errors injected into a node's store: each
// write fails with probability pct percent until simulated time until,
// the way mode says.
type storeFault struct {
	pct   int
	until int64
	mode  string
}

// How an injected store error fails a write (SetStoreErrors).
const (
	StoreFailWrite  = "write"  // nothing is written
	StoreFailSync   = "sync"   // written and visible, its sync failed
	StoreFailEither = "either" // one or the other, a coin per failed write
)

// Errors the faulty store returns.
var (
	errInjectedWrite = errors.New("clustersim: injected store write error (nothing written)")
	errInjectedSync  = errors.New("clustersim: injected store sync error (written, durability unknown)")
)

// faultyStore is the store a node's Core writes through: the disk's
// store, with the storage errors of SetStoreErrors. A failed write either
// writes nothing (an I/O error before the log), or is applied and visible
// but its sync failed: it is not durable until a later write's sync
// covers it, and a crash before that keeps it or not. Reads never fail.
// The coins come from the node's store stream (storeRand), drawn only
// while a fault is on.
type faultyStore struct {
	storage.Store
	s  *Sim
	id ring.NodeID
	d  *disk
}

func (f *faultyStore) Write(puts []storage.Put, deletes []storage.Key) error {
	sf := f.s.storeErr[f.id]
	if sf.pct == 0 || f.s.now >= sf.until || f.s.storeRand(f.id).IntN(100) >= sf.pct {
		err := f.Store.Write(puts, deletes)
		if err == nil {
			f.d.syncFailed = false
		}
		return err
	}
	f.s.StoreErrors++
	if sf.mode == StoreFailWrite || sf.mode == StoreFailEither && f.s.storeRand(f.id).IntN(2) == 0 {
		return errInjectedWrite
	}
	if err := f.Store.Write(puts, deletes); err != nil {
		return err
	}
	f.d.syncFailed = true
	return errInjectedSync
}

// SetStoreErrors makes a pct percent share of node i's store writes fail
// until simulated time untilMs (pct 0: none), before anything is written
// (mode StoreFailWrite), at the sync (StoreFailSync) or either
// (StoreFailEither; see faultyStore). The node's Core must answer what
// such a write carried with an error and acknowledge nothing of it.
func (s *Sim) SetStoreErrors(i int, pct int, untilMs int64, mode string) {
	id := s.nodes[i-1].ID
	if pct <= 0 {
		delete(s.storeErr, id)
		return
	}
	switch mode {
	case StoreFailWrite, StoreFailSync, StoreFailEither:
	default:
		panic(fmt.Sprintf("clustersim: store error mode %q", mode))
	}
	s.storeErr[id] = storeFault{pct: pct, until: untilMs, mode: mode}
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
func (s *Sim) crashDisk(id ring.NodeID, d *disk) *disk {
	nr := s.nodeRand(id)
	if d.db == nil {
		return &disk{mem: d.mem.Crash(func() bool { return nr.IntN(2) == 0 })}
	}
	// Pebble's CrashClone walks directories in map order, so it gets its
	// own PRNG: the node's stream must not depend on how many draws it makes.
	rng := rand.New(rand.NewPCG(nr.Uint64(), nr.Uint64()))
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
	store := &faultyStore{Store: d.store(), s: s, id: id, d: d}
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

// stream is a PRNG keyed by the seed and a hash of what the stream
// is for.
func (s *Sim) stream(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(s.opts.Seed, h.Sum64()))
}

// linkRand is the stream of the link from → to.
func (s *Sim) linkRand(from, to ring.NodeID) *rand.Rand {
	k := [2]ring.NodeID{from, to}
	r := s.links[k]
	if r == nil {
		r = s.stream("link " + string(from) + " " + string(to))
		s.links[k] = r
	}
	return r
}

// nodeRand is node id's stream: its tick phase, what a crash keeps.
func (s *Sim) nodeRand(id ring.NodeID) *rand.Rand { return s.named("node " + string(id)) }

// cycleRand is node id's cycle stream: how many waiting inputs a cycle
// takes, how long its store write lasts. A stream of its own, so that a
// crash or a store fault a shrunk plan drops leaves the cycles' draws alone.
func (s *Sim) cycleRand(id ring.NodeID) *rand.Rand { return s.named("cycle " + string(id)) }

// storeRand is node id's store-error stream: whether a write fails, and
// how (faultyStore); drawn only while a store fault is on.
func (s *Sim) storeRand(id ring.NodeID) *rand.Rand { return s.named("store " + string(id)) }

func (s *Sim) named(name string) *rand.Rand {
	r := s.nrand[name]
	if r == nil {
		r = s.stream(name)
		s.nrand[name] = r
	}
	return r
}

// Now returns the virtual time in ms since the Unix epoch.
func (s *Sim) Now() int64 { return s.now }

// Rand returns a PRNG seeded by the simulation's seed, for a test's
// workload (the network and crashes draw from streams of their own).
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
	s.enqueue(n, input{kind: inSubmit, id: id, op: op})
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
	s.enqueue(n, input{kind: inInterest, refs: refs})
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
		if n.ID != id && n.Up {
			s.enqueue(n, input{kind: inAlive, peer: id, alive: alive})
		}
	}
}

// Crash stops node i: its in-flight state is lost; its store keeps what
// was durable (the in-memory store's crash semantics).
func (s *Sim) Crash(i int) {
	n := s.nodes[i-1]
	n.Up = false
	s.Crashes++
	for _, in := range n.inbox {
		if in.kind == inFrame {
			s.Dropped += uint64(len(in.msgs)) // read from the socket, never stepped
		}
	}
	n.inbox = nil
	n.disk = s.crashDisk(n.ID, n.disk)
	n.Store = &faultyStore{Store: n.disk.store(), s: s, id: n.ID, d: n.disk}
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
			s.enqueue(n, input{kind: inTable, table: s.table})
		}
	}
}

// Events of the queue: a message delivery or a node's tick.

type event struct {
	at   int64
	seq  uint64
	to   ring.NodeID
	from ring.NodeID
	msgs []gossip.Msg // a frame; nil: a tick, or a cycle
	// cycle: the node's next cycle (node: the one it was scheduled for,
	// not a node restarted since).
	cycle *Node
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
	switch {
	case e.cycle != nil:
		if e.cycle == n && n.Up {
			n.cycleAt = 0
			s.cycle(n)
		}
	case e.msgs == nil:
		if !n.Up {
			return true // a crashed node's ticks stop; Restart schedules new ones
		}
		if !s.founded {
			s.found(n)
		}
		if !n.tickWaiting {
			n.tickWaiting = true
			s.enqueue(n, input{kind: inTick})
		}
		s.scheduleTick(n.ID, s.now+s.opts.TickMs)
	case !n.Up:
		s.Dropped += uint64(len(e.msgs))
	default:
		s.enqueue(n, input{kind: inFrame, from: e.from, msgs: e.msgs})
	}
	return true
}

// enqueue gives node n an input for its next cycle, which runs now or once
// its last cycle's store write is over.
func (s *Sim) enqueue(n *Node, in input) {
	n.inbox = append(n.inbox, in)
	s.scheduleCycle(n)
}

func (s *Sim) scheduleCycle(n *Node) {
	if n.cycleAt != 0 {
		return
	}
	n.cycleAt = max(s.now, n.busyUntil)
	s.push(event{at: n.cycleAt, to: n.ID, cycle: n})
}

// cycle is one turn of the node's driver loop (gossip/driver): take some
// of the inputs waiting (a number drawn from [1, Batch]), tick the Core,
// step each input, then one Flush and carry out Ready.
func (s *Sim) cycle(n *Node) {
	if len(n.inbox) == 0 {
		return
	}
	k := len(n.inbox)
	if s.opts.Batch < k {
		k = 1 + s.cycleRand(n.ID).IntN(s.opts.Batch)
	}
	batch := n.inbox[:k]
	n.Core.Tick(s.nodeNow(n))
	for _, in := range batch {
		switch in.kind {
		case inTick:
			n.tickWaiting = false
		case inFrame:
			for i := range in.msgs {
				s.Delivered++
				s.record("deliver", in.from, n.ID, uint64(in.msgs[i].Type), in.msgs[i].ReqID)
				n.Core.Step(in.from, in.msgs[i])
			}
		case inSubmit:
			n.Core.Submit(in.id, in.op)
		case inInterest:
			n.Core.SetInterest(in.refs)
		case inTable:
			n.Core.SetTable(in.table)
		case inAlive:
			n.Core.SetAlive(in.peer, in.alive)
		}
	}
	n.inbox = append(n.inbox[:0:0], n.inbox[k:]...)
	s.Cycles++
	s.Inputs += uint64(k)
	s.process(n)
	if s.opts.CycleMs > 0 {
		n.busyUntil = s.now + s.cycleRand(n.ID).Int64N(s.opts.CycleMs+1)
	}
	if len(n.inbox) > 0 {
		s.scheduleCycle(n)
	}
}

// process flushes a node's Core and carries out its Ready.
func (s *Sim) process(n *Node) {
	if err := n.Core.Flush(); err != nil {
		// Only injected errors may fail a store write here; the Core
		// answered what the write carried with errors.
		if !errors.Is(err, errInjectedWrite) && !errors.Is(err, errInjectedSync) {
			panic(fmt.Sprintf("clustersim: flush on the in-memory store failed: %v", err))
		}
		s.FailedFlushes++
	}
	if n.disk.mem != nil && !n.disk.syncFailed {
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
	// One frame per peer, peers in order, as the driver sends them.
	var peers []ring.NodeID
	byPeer := map[ring.NodeID][]gossip.Msg{}
	for _, env := range rd.Messages {
		if _, ok := byPeer[env.To]; !ok {
			peers = append(peers, env.To)
		}
		byPeer[env.To] = append(byPeer[env.To], env.Msg)
	}
	slices.Sort(peers)
	for _, to := range peers {
		s.sendFrames(n.ID, to, byPeer[to])
	}
}

// sendFrames sends msgs to a peer in frames of bounded size, as the
// driver does (gossip/driver.sendAll); each frame is lost, duplicated and
// delayed as a whole.
func (s *Sim) sendFrames(from, to ring.NodeID, msgs []gossip.Msg) {
	for len(msgs) > 0 {
		n := len(msgs)
		var frame []byte
		for {
			var err error
			frame, err = gossip.EncodeFrame(msgs[:n])
			if err != nil {
				panic(fmt.Sprintf("clustersim: encoding a frame: %v", err))
			}
			if len(frame) <= gossip.MaxFrame/2 || n == 1 {
				break
			}
			n = (n + 1) / 2
		}
		s.sendFrame(from, to, frame, msgs[:n])
		msgs = msgs[n:]
	}
}

func (s *Sim) sendFrame(from, to ring.NodeID, frame []byte, sent []gossip.Msg) {
	count := len(sent)
	// Four draws per frame, whatever happens to it, from the link's
	// stream: the n-th frame of a link always meets the same luck.
	rng := s.linkRand(from, to)
	loss, dup := rng.Float64()*100, rng.Float64()*100
	lats := [2]uint64{rng.Uint64(), rng.Uint64()}
	if s.cut[from][to] || loss < s.opts.LossPct {
		s.Dropped += uint64(count)
		return
	}
	if s.OnSend != nil {
		// Each message is accounted at the size it has alone in a frame
		// (batched messages share the frame's header).
		for i := range sent {
			one, err := gossip.EncodeFrame(sent[i : i+1])
			if err != nil {
				panic(fmt.Sprintf("clustersim: encoding a frame: %v", err))
			}
			s.OnSend(from, to, &sent[i], len(one))
		}
	}
	copies := 1
	if dup < s.opts.DupPct {
		copies = 2
	}
	for c := range copies {
		// Messages cross the wire encoded, as in production.
		msgs, err := gossip.DecodeFrame(frame)
		if err != nil || len(msgs) != count {
			panic(fmt.Sprintf("clustersim: frame round trip: %d of %d messages, %v", len(msgs), count, err))
		}
		lat := s.opts.MinLatencyMs + int64(lats[c]%uint64(s.opts.MaxLatencyMs-s.opts.MinLatencyMs+1))
		s.push(event{at: s.now + lat, to: to, from: from, msgs: msgs})
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
