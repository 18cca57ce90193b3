package memberlist

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/clusterkey"
	"github.com/playhead/playhead/gossip/internal/hostport"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/gossip/wallclock"
)

// Defaults of memberlist.Config.
const (
	DefaultGossipBindAddr        = "0.0.0.0:7946"
	DefaultGossipProbeInterval   = 1 * time.Second
	DefaultGossipProbeTimeout    = 500 * time.Millisecond
	DefaultGossipSuspicionMult   = 4
	DefaultGossipInterval        = 200 * time.Millisecond
	DefaultGossipPushPull        = 30 * time.Second
	DefaultGossipTCPTimeout      = 10 * time.Second
	DefaultGossipDeadNodeReclaim = 30 * time.Second
)

// Errors of the memberlist adapter.
var (
	// ErrMembershipClosed: the Memberlist was shut down.
	ErrMembershipClosed = errors.New("memberlist: membership is shut down")
	// ErrGossipPlaintext: a key operation on a Memberlist started without
	// keys; encryption cannot be turned on at run time.
	ErrGossipPlaintext = errors.New("memberlist: gossip encryption is off (started without keys); restart with a key to use keys")
)

// Config configures a Memberlist. The zero value of every field but
// NodeID takes its default (EnsureDefaults). Durations are wall-clock time.
type Config struct {
	// NodeID is this node's name in the cluster: unique, and stable across
	// restarts (a node that comes back under the same ID keeps its
	// partitions). Required.
	NodeID ring.NodeID

	// BindAddr is the host:port memberlist listens on, UDP and TCP alike.
	// Port 0 picks a free port (tests); GossipAddr reports the bound address.
	// The default value is "0.0.0.0:7946".
	BindAddr string
	// AdvertiseAddr is the host:port other members use to reach this node,
	// when it differs from BindAddr (NAT, containers). Empty means derived
	// from BindAddr: its host, or the first private IP when that host is
	// unspecified (0.0.0.0), and the bound port. The default value is "".
	AdvertiseAddr string

	// RPCAddr, HTTPAddr and RaftAddr are published to the other members in
	// the node metadata (at most 128 bytes each) so they can reach this
	// node's replication, device API and ring raft endpoints. Empty means
	// not published. The default value of each is "".
	RPCAddr  string
	HTTPAddr string
	RaftAddr string

	// Keys are the gossip encryption keys, clusterkey.Size (32) bytes each
	// (AES-256-GCM). The first is the primary: it encrypts everything sent;
	// all of them are tried to decrypt what arrives, which is what lets keys
	// rotate without downtime (install the new key everywhere, make it
	// primary everywhere, then remove the old one: see InstallKey). Empty
	// means plaintext gossip, which anyone on the network can read and join:
	// for development only. The default value is none.
	Keys [][]byte

	// ProbeInterval is how often this node probes a random member. Failure
	// detection time scales with it; so does background traffic. The
	// default value is 1 second (memberlist's LAN preset).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before trying
	// indirect probes: it should exceed the 99th-percentile round trip. The
	// default value is 500 milliseconds.
	ProbeTimeout time.Duration
	// SuspicionMult sets how long a suspect member has to refute before it
	// is declared dead: SuspicionMult × log10(max(members, 10)) ×
	// ProbeInterval (4 s for up to 10 members at the defaults). Higher
	// tolerates longer pauses (GC, a slow disk) at the cost of slower
	// detection. The default value is 4.
	SuspicionMult int
	// GossipInterval is how often state changes are gossiped to a few random
	// members. Lower spreads news faster for more packets. The default value
	// is 200 milliseconds.
	GossipInterval time.Duration
	// PushPullInterval is how often this node does a full state exchange
	// with a random member over TCP: the repair path for lost gossip. The
	// default value is 30 seconds.
	PushPullInterval time.Duration
	// TCPTimeout bounds a TCP exchange (join, push/pull, TCP fallback
	// probe): how long Join waits for a dead seed. The default value is 10
	// seconds.
	TCPTimeout time.Duration

	// PeersFile is where the members this node knows are remembered
	// (JSON, rewritten atomically when membership changes), so that after a
	// restart it rejoins through every member it knew, not only its seeds
	// (RememberedAddrs). Empty means nothing is remembered across restarts;
	// the rejoin loop still redials members lost since start. The default
	// value is "" (a node uses <data-dir>/peers.json).
	PeersFile string
	// RejoinInterval is how often members that memberlist declared dead
	// (or remembered ones it does not list) are redialed: memberlist never
	// contacts a dead member again by itself, so without this a partition
	// longer than the failure detector, or a restart after every seed died,
	// splits the cluster for good. The default value is 5 seconds.
	RejoinInterval time.Duration
	// RejoinFor bounds the redialing: a member not seen alive for this long
	// is forgotten (it can still come back by joining a seed). The default
	// value is 72 hours.
	RejoinFor time.Duration

	// OnChange, if set, receives every member change; see MemberChangeFunc
	// for the contract. The default value is nil (no deliveries).
	OnChange ring.MemberChangeFunc
	// Clock stamps Member.Since. The default value is the wall clock.
	Clock gossip.Clock
	// Logger receives memberlist's log lines, all at debug level (its
	// warnings and errors are routine during failures; the node reports what
	// matters through OnChange). The default value discards them.
	Logger *slog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.BindAddr == "" {
		c.BindAddr = DefaultGossipBindAddr
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultGossipProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultGossipProbeTimeout
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = DefaultGossipSuspicionMult
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if c.PushPullInterval == 0 {
		c.PushPullInterval = DefaultGossipPushPull
	}
	if c.TCPTimeout == 0 {
		c.TCPTimeout = DefaultGossipTCPTimeout
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.RejoinFor == 0 {
		c.RejoinFor = DefaultRejoinFor
	}
	if c.Clock == nil {
		c.Clock = wallclock.Clock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SetLoopbackTimings shortens the protocol periods for clusters on one host
// (tests): failures are detected in about a second instead of several, at
// a traffic cost no real network should pay.
func (c *Config) SetLoopbackTimings() {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 5 * time.Second
	c.TCPTimeout = 2 * time.Second
	c.RejoinInterval = time.Second
}

// Validate reports settings that cannot work, saying what to change.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("memberlist: memberlist needs a node ID (--node-id)")
	}
	if len(c.NodeID) > 128 {
		return fmt.Errorf("memberlist: node ID %.32q… is %d bytes, at most 128", c.NodeID, len(c.NodeID))
	}
	if host, _, err := hostport.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("memberlist: gossip bind address: %w", err)
	} else if net.ParseIP(host) == nil {
		return fmt.Errorf("memberlist: gossip bind address %q must be an IP address (0.0.0.0 for all interfaces), not a name", c.BindAddr)
	}
	if c.AdvertiseAddr != "" {
		host, port, err := hostport.SplitHostPort(c.AdvertiseAddr)
		if err != nil {
			return fmt.Errorf("memberlist: gossip advertise address: %w", err)
		}
		if net.ParseIP(host) == nil {
			return fmt.Errorf("memberlist: gossip advertise address %q must be an IP address, not a name", c.AdvertiseAddr)
		}
		if port == 0 {
			return fmt.Errorf("memberlist: gossip advertise address %q needs a port", c.AdvertiseAddr)
		}
	}
	if _, err := encodeMemberMeta(memberMeta{RPC: c.RPCAddr, HTTP: c.HTTPAddr, Raft: c.RaftAddr}); err != nil {
		return err
	}
	for i, k := range c.Keys {
		if len(k) != clusterkey.Size {
			return fmt.Errorf("memberlist: gossip key %d is %d bytes, want %d (generate one with `playhead keygen`)", i+1, len(k), clusterkey.Size)
		}
	}
	if c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.GossipInterval <= 0 || c.PushPullInterval <= 0 || c.TCPTimeout <= 0 {
		return errors.New("memberlist: memberlist intervals and timeouts must be positive")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("memberlist: memberlist probe timeout %v must be shorter than the probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.RejoinInterval <= 0 || c.RejoinFor <= 0 {
		return errors.New("memberlist: the rejoin interval and bound must be positive")
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("memberlist: memberlist suspicion multiplier must be at least 1, got %d", c.SuspicionMult)
	}
	return nil
}

// Memberlist is the Membership of a production node, over
// hashicorp/memberlist (SWIM gossip over UDP with TCP push/pull).
//
// It owns two goroutines, one delivering OnChange calls and one redialing
// lost members and writing the peers file (see rejoin), and memberlist's
// own; Shutdown stops them all.
type Memberlist struct {
	cfg         Config
	ml          *memberlist.Memberlist
	keyring     *memberlist.Keyring // nil when plaintext
	meta        []byte              // published node metadata
	leavingMeta []byte              // the same, marked leaving
	leaving     atomic.Bool         // publish leavingMeta
	log         *slog.Logger

	// life is held shared by Join and Leave and exclusively by Shutdown:
	// memberlist panics on Leave after Shutdown.
	life sync.RWMutex

	// mu guards the fields below. Lock order: memberlist's internal locks
	// (its event callbacks run under them), then mu. Never call into ml
	// while holding mu.
	mu      sync.Mutex
	members map[ring.NodeID]ring.Member
	// pending lists members with an undelivered change, oldest first;
	// Invariant: pendingSet holds exactly pending's IDs.
	pending    []ring.NodeID
	pendingSet map[ring.NodeID]bool
	closed     bool
	// peers: every other member remembered (peers file) or seen, for the
	// rejoin loop; peersDirty: changed since the file was written.
	peers      map[ring.NodeID]peerRecord
	peersDirty bool

	wake      chan struct{} // capacity 1: a change is pending
	peersWake chan struct{} // capacity 1: peers changed, write the file
	done      chan struct{} // closed by Shutdown
	wg        sync.WaitGroup
	once      sync.Once
	err       error // Shutdown's result
}

var _ ring.Membership = (*Memberlist)(nil)

// New starts memberlist on cfg.BindAddr. The node is alone until
// Join. Call Shutdown to stop it.
func New(cfg Config) (*Memberlist, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Keys = cloneKeys(cfg.Keys)
	meta, err := encodeMemberMeta(memberMeta{RPC: cfg.RPCAddr, HTTP: cfg.HTTPAddr, Raft: cfg.RaftAddr})
	if err != nil {
		return nil, err
	}
	leavingMeta, err := encodeMemberMeta(memberMeta{RPC: cfg.RPCAddr, HTTP: cfg.HTTPAddr, Raft: cfg.RaftAddr, Leaving: true})
	if err != nil {
		return nil, err
	}
	m := &Memberlist{
		cfg:         cfg,
		meta:        meta,
		leavingMeta: leavingMeta,
		log:         cfg.Logger.With("component", "memberlist"),
		members:     map[ring.NodeID]ring.Member{},
		pendingSet:  map[ring.NodeID]bool{},
		peers:       map[ring.NodeID]peerRecord{},
		wake:        make(chan struct{}, 1),
		peersWake:   make(chan struct{}, 1),
		done:        make(chan struct{}),
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = string(cfg.NodeID)
	host, port, _ := hostport.SplitHostPort(cfg.BindAddr)
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = hostport.SplitHostPort(cfg.AdvertiseAddr)
	}
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	// Keep gossiping about a dead member as long as between two push/pulls,
	// so the news reaches everyone (memberlist's LAN preset does the same).
	mc.GossipToTheDeadTime = cfg.PushPullInterval
	mc.TCPTimeout = cfg.TCPTimeout
	// A node that restarts under the same ID at a new address (a rescheduled
	// container) may take its name back once its old incarnation has been
	// dead this long; memberlist's default (0) refuses it forever.
	mc.DeadNodeReclaimTime = DefaultGossipDeadNodeReclaim
	mc.Delegate = mlDelegate{m}
	mc.Events = mlEvents{m}
	mc.Logger = log.New(mlLogWriter{m.log}, "", 0)
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("memberlist: gossip keys: %w", err)
		}
		m.keyring = kr
		mc.Keyring = kr
		// Refuse plaintext and foreign keys both ways (the preset's values,
		// restated because they are what makes a key a gate).
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	} else {
		m.log.Warn("gossip encryption is off: any host that can reach the gossip port can join the cluster; set a gossip key")
	}

	if cfg.PeersFile != "" {
		peers, err := readPeersFile(cfg.PeersFile, cfg.NodeID)
		if err != nil {
			m.log.Warn("starting from the seeds alone", "err", err)
		}
		for _, p := range peers {
			m.peers[p.ID] = p
		}
	}

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("memberlist: starting memberlist on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	m.wg.Add(2)
	go m.deliver()
	go m.rejoin()
	return m, nil
}

// LocalID returns this node's ID.
func (m *Memberlist) LocalID() ring.NodeID { return m.cfg.NodeID }

// GossipAddr returns the host:port other members reach this node at (the
// bound port when BindAddr asked for port 0). Give it to Join as a seed.
func (m *Memberlist) GossipAddr() string {
	return m.ml.LocalNode().Address()
}

// Join contacts the seeds and merges their view of the cluster; see
// Membership.Join.
func (m *Memberlist) Join(seeds []string) (int, error) {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.isClosed() {
		return 0, ErrMembershipClosed
	}
	if len(seeds) == 0 {
		return 0, errors.New("memberlist: join needs at least one seed address")
	}
	n, err := m.ml.Join(seeds)
	if err != nil {
		return n, fmt.Errorf("memberlist: joining via %s: %w", strings.Join(seeds, ", "), err)
	}
	return n, nil
}

// Leave announces a graceful leave; see Membership.Leave.
//
// memberlist tells its users a member is gone but not whether it left or
// died: the state it keeps (StateLeft) does not reach the Node its
// EventDelegate receives (hashicorp/memberlist#293). So a leave takes two
// broadcasts: first this node republishes its metadata marked leaving
// (within half the timeout), then memberlist's own leave. A member that
// sees the departure after the mark reports Left; one that missed the mark
// (it can happen when a node leaves with the network in trouble) reports
// Dead, which only delays the hand-over by the dead-node grace.
func (m *Memberlist) Leave(timeout time.Duration) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.isClosed() {
		return ErrMembershipClosed
	}
	start := time.Now()
	if !m.leaving.Swap(true) {
		if err := m.ml.UpdateNode(timeout / 2); err != nil {
			m.log.Debug("announcing the leave in the node metadata timed out; leaving anyway", "err", err)
		}
	}
	rest := max(timeout-time.Since(start), timeout/2)
	if err := m.ml.Leave(rest); err != nil {
		return fmt.Errorf("memberlist: leave: %w", err)
	}
	return nil
}

// Shutdown stops memberlist and the delivery goroutine; see
// Membership.Shutdown. It waits for a Join or Leave in progress.
func (m *Memberlist) Shutdown() error {
	m.once.Do(func() {
		m.life.Lock()
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		if err := m.ml.Shutdown(); err != nil {
			m.err = fmt.Errorf("memberlist: memberlist shutdown: %w", err)
		}
		close(m.done)
		m.life.Unlock()
		m.wg.Wait()
	})
	return m.err
}

// Members returns every member seen since start; see Membership.Members.
func (m *Memberlist) Members() []ring.Member {
	// Suspicion raises no event; read it from memberlist, outside mu.
	suspect := map[ring.NodeID]bool{}
	if !m.isClosed() {
		for _, n := range m.ml.Members() {
			if n.State == memberlist.StateSuspect {
				suspect[ring.NodeID(n.Name)] = true
			}
		}
	}
	m.mu.Lock()
	out := make([]ring.Member, 0, len(m.members))
	for _, mem := range m.members {
		if mem.State == ring.MemberAlive && suspect[mem.ID] {
			mem.State = ring.MemberSuspect
		}
		out = append(out, mem)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b ring.Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func (m *Memberlist) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// observe records a member's new view from a memberlist event and queues
// its delivery. It runs on memberlist's goroutines, under memberlist's node
// lock: it must not block or call into memberlist.
func (m *Memberlist) observe(n *memberlist.Node, state ring.MemberState) {
	meta, err := decodeMemberMeta(n.Meta)
	if err != nil {
		m.log.Debug("member published unreadable metadata", "member", n.Name, "err", err)
	}
	mem := ring.Member{
		ID:         ring.NodeID(n.Name),
		GossipAddr: n.Address(),
		RPCAddr:    meta.RPC,
		HTTPAddr:   meta.HTTP,
		RaftAddr:   meta.Raft,
		State:      state,
		Since:      m.cfg.Clock.NowMs(),
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	if old, ok := m.members[mem.ID]; ok {
		if old.State == mem.State {
			mem.Since = old.Since // an address update, not a state change
		}
		if old == mem {
			m.mu.Unlock()
			return
		}
	}
	m.members[mem.ID] = mem
	m.notePeerLocked(mem)
	if !m.pendingSet[mem.ID] {
		m.pendingSet[mem.ID] = true
		m.pending = append(m.pending, mem.ID)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	select {
	case m.peersWake <- struct{}{}:
	default:
	}
}

// deliver is the goroutine that calls OnChange, one member at a time.
func (m *Memberlist) deliver() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case <-m.wake:
		}
		for {
			m.mu.Lock()
			if m.closed || len(m.pending) == 0 {
				m.pending = nil
				m.mu.Unlock()
				break
			}
			id := m.pending[0]
			m.pending = m.pending[1:]
			delete(m.pendingSet, id)
			mem := m.members[id]
			m.mu.Unlock()
			if m.cfg.OnChange != nil {
				m.cfg.OnChange(mem)
			}
		}
	}
}

// mlEvents maps memberlist's events to member states.
type mlEvents struct{ m *Memberlist }

func (e mlEvents) NotifyJoin(n *memberlist.Node)   { e.m.observe(n, mapNodeState(n.State)) }
func (e mlEvents) NotifyUpdate(n *memberlist.Node) { e.m.observe(n, mapNodeState(n.State)) }

// NotifyLeave: a member gone after marking itself leaving (see Leave) left;
// any other was declared dead. (n.State is not set by memberlist v0.7.0;
// it is checked too for releases that fix hashicorp/memberlist#293.)
func (e mlEvents) NotifyLeave(n *memberlist.Node) {
	st := ring.MemberDead
	if meta, err := decodeMemberMeta(n.Meta); (err == nil && meta.Leaving) || n.State == memberlist.StateLeft {
		st = ring.MemberLeft
	}
	e.m.observe(n, st)
}

func mapNodeState(s memberlist.NodeStateType) ring.MemberState {
	switch s {
	case memberlist.StateSuspect:
		return ring.MemberSuspect
	case memberlist.StateDead:
		return ring.MemberDead
	case memberlist.StateLeft:
		return ring.MemberLeft
	default:
		return ring.MemberAlive
	}
}

// mlDelegate publishes the node metadata; it carries no user messages or
// state yet.
type mlDelegate struct{ m *Memberlist }

func (d mlDelegate) NodeMeta(limit int) []byte {
	meta := d.m.meta
	if d.m.leaving.Load() {
		meta = d.m.leavingMeta
	}
	if len(meta) > limit {
		// Cannot happen: Validate bounds the encoding by MetaMaxSize.
		return nil
	}
	return meta
}
func (mlDelegate) NotifyMsg([]byte)                           {}
func (mlDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (mlDelegate) LocalState(join bool) []byte                { return nil }
func (mlDelegate) MergeRemoteState(buf []byte, join bool)     {}
