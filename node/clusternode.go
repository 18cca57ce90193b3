package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/driver"
	"github.com/playhead/playhead/gossip/memberlist"
	"github.com/playhead/playhead/gossip/raftring"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/gossip/tcp"
)

// ClusterOptions makes a node a cluster member (DESIGN.md §5). With
// Config.ClusterOptions nil the node runs alone on the single-node
// coordinator, as `playhead serve` does without cluster flags.
type ClusterOptions struct {
	// GossipAddr is the host:port memberlist binds (UDP and TCP). Port 0
	// picks one (tests). The default value is 0.0.0.0:7946
	// (memberlist.DefaultGossipBindAddr); a wildcard needs AdvertiseHost.
	GossipAddr string
	// RaftAddr is the host:port of the ring configuration's raft. The
	// default value is GossipAddr's host, port 7947
	// (raftring.DefaultRaftBindAddr's port).
	RaftAddr string
	// RPCAddr is the host:port of replication traffic. The default value is
	// GossipAddr's host, port 7948 (tcp.DefaultBindAddr's port).
	RPCAddr string
	// AdvertiseHost is the host (IP or name) other nodes reach this one at,
	// when the addresses above bind a wildcard (0.0.0.0). The default value
	// is "" (use the bound addresses).
	AdvertiseHost string
	// Join lists gossip addresses of members to join; retried until one
	// answers. The members remembered in <data-dir>/peers.json are joined
	// with them, and the membership redials lost members (see
	// memberlist.Config.RejoinInterval), so the seeds need not stay up.
	Join []string
	// BootstrapExpect is how many members a new cluster waits for before
	// the member with the smallest id founds the ring. The default value
	// is 1 (a node without --join founds a cluster at once).
	BootstrapExpect int
	// Keys is the cluster keyring (clusterkey.LoadAll). Required.
	Keys [][]byte
	// Replication and WriteQuorum: copies of each profile, and how many
	// must be durable before a write is acknowledged. The default values
	// are ring.DefaultReplicas (3) and gossip.DefaultWriteQuorum (2).
	Replication int
	WriteQuorum int
	// DeadNodeGrace is how long a dead member keeps its partitions. The
	// default value is 5 minutes.
	DeadNodeGrace time.Duration
	// Loopback shortens the failure-detection and raft timings for
	// clusters on one host (dev, tests).
	Loopback bool
}

// EnsureDefaults fills zero fields with their defaults.
func (c *ClusterOptions) EnsureDefaults() {
	if c.GossipAddr == "" {
		c.GossipAddr = memberlist.DefaultGossipBindAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = sameHost(c.GossipAddr, raftring.DefaultRaftBindAddr)
	}
	if c.RPCAddr == "" {
		c.RPCAddr = sameHost(c.GossipAddr, tcp.DefaultBindAddr)
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = 1
	}
	if c.Replication == 0 {
		c.Replication = ring.DefaultReplicas
	}
	if c.WriteQuorum == 0 {
		c.WriteQuorum = gossip.DefaultWriteQuorum
	}
	if c.DeadNodeGrace == 0 {
		c.DeadNodeGrace = ring.DefaultDeadNodeGrace
	}
}

// sameHost is def's port on addr's host: the raft and replication ports
// default to the gossip address's host. A malformed addr gives def
// (Validate reports the address).
func sameHost(addr, def string) string {
	host, _, err := net.SplitHostPort(addr)
	_, port, err2 := net.SplitHostPort(def)
	if err != nil || err2 != nil {
		return def
	}
	return net.JoinHostPort(host, port)
}

// Validate reports settings that cannot work.
func (c ClusterOptions) Validate() error {
	switch {
	case len(c.Keys) == 0:
		return errors.New("node: a cluster needs its key (--gossip-key-file; make one with `playhead keygen`)")
	case c.Replication < 1:
		return fmt.Errorf("node: --replication must be at least 1, got %d", c.Replication)
	case c.WriteQuorum < 1 || c.WriteQuorum > c.Replication:
		return fmt.Errorf("node: --write-quorum must be between 1 and --replication (%d), got %d", c.Replication, c.WriteQuorum)
	case c.BootstrapExpect < 1:
		return fmt.Errorf("node: --bootstrap-expect must be at least 1, got %d", c.BootstrapExpect)
	}
	return nil
}

// clusterParts are the running pieces of a cluster node.
type clusterParts struct {
	opts      ClusterOptions
	self      ring.NodeID
	cl        *driver.Driver
	transport *tcp.Transport
	ring      *raftring.Ring
	members   *memberlist.Memberlist
	rec       *raftring.Reconciler
	hub       *Hub
	httpAddr  func() string
	clock     gossip.Clock
	// founder decides when this node founds the ring (--bootstrap-expect):
	// ring.Controller.Found, on the background goroutine.
	founder *ring.Controller

	mu    sync.Mutex
	addrs map[ring.NodeID]string // replication addresses
	done  chan struct{}
	wg    sync.WaitGroup
}

// newClusterNode opens the store and starts the cluster parts: transport,
// replication driver, raft ring, membership and the ring reconciler.
func newClusterNode(cfg Config) (_ *Node, err error) {
	o := *cfg.ClusterOptions
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: creating the data directory: %w", err)
	}
	hub := NewHub(cfg.PushBuffer)
	m, err := newMetrics(hub, cfg.NodeID, cfg.Registry)
	if err != nil {
		return nil, err
	}
	store, err := openStore(cfg, m)
	if err != nil {
		return nil, err
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				c()
			}
			store.Close()
		}
	}()
	log := cfg.Logger.With("node", cfg.NodeID)
	cp := &clusterParts{opts: o, self: ring.NodeID(cfg.NodeID), hub: hub, addrs: map[ring.NodeID]string{}, done: make(chan struct{}), clock: cfg.Clock}
	if cp.founder, err = ring.NewController(cp.self, ring.ControllerConfig{BootstrapExpect: o.BootstrapExpect}); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}

	cl, err := driver.New(driver.Config{
		Core:  gossip.CoreConfig{Self: cp.self, Local: cfg.localOptions(), WriteQuorum: o.WriteQuorum},
		Store: store, Clock: cfg.Clock, Notifier: hub, AddrOf: cp.addrOf, Logger: log.With("component", "replication"),
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	cp.cl = cl
	rpcLn, err := net.Listen("tcp", o.RPCAddr)
	if err != nil {
		return nil, fmt.Errorf("node: listening for replication on %s (--rpc-addr): %w", o.RPCAddr, err)
	}
	tr, err := tcp.New(tcp.Config{Self: cp.self, Listener: rpcLn, Keys: o.Keys, MaxFrame: gossip.MaxFrame,
		OnFrame: cl.Deliver, Logger: log.With("component", "rpc")})
	if err != nil {
		rpcLn.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	cp.transport = tr
	closers = append(closers, tr.Close)
	cl.Start(tr)
	closers = append(closers, func() error { cl.Close(); return nil })
	rpcPublic := advertise(o.AdvertiseHost, tr.Addr().String())
	cp.setAddr(cp.self, rpcPublic)

	rcfg := raftring.Config{NodeID: cp.self, DataDir: cfg.DataDir, BindAddr: o.RaftAddr,
		Partitions: cfg.Partitions, Replicas: o.Replication,
		AdvertiseAddr: advertiseOnly(o.AdvertiseHost, o.RaftAddr),
		Bootstrap:     o.BootstrapExpect == 1 && len(o.Join) == 0,
		OnTable:       cl.SetTable, Logger: log.With("component", "raft")}
	if o.Loopback {
		rcfg.SetLoopbackTimings()
	}
	rr, err := raftring.Open(rcfg)
	if err != nil {
		return nil, fmt.Errorf("node: opening the ring (raft) in %s: %w", cfg.DataDir, err)
	}
	cp.ring = rr
	closers = append(closers, rr.Shutdown)
	if t := rr.Table(); t.Version > 0 {
		cl.SetTable(t)
	}

	var recPtr atomic.Pointer[raftring.Reconciler] // set once it runs
	mcfg := memberlist.Config{NodeID: cp.self, BindAddr: o.GossipAddr,
		AdvertiseAddr: advertiseOnly(o.AdvertiseHost, o.GossipAddr),
		RPCAddr:       rpcPublic, HTTPAddr: advertise(o.AdvertiseHost, cfg.HTTPAddr), RaftAddr: advertise(o.AdvertiseHost, rr.Addr()), Keys: o.Keys,
		PeersFile: filepath.Join(cfg.DataDir, memberlist.PeersFileName),
		OnChange: func(mb ring.Member) {
			if mb.RPCAddr != "" {
				cp.setAddr(mb.ID, mb.RPCAddr)
			}
			if mb.ID != cp.self {
				cl.SetAlive(mb.ID, mb.State == ring.MemberAlive || mb.State == ring.MemberSuspect)
			}
			if rec := recPtr.Load(); rec != nil {
				rec.Notify()
			}
		},
		Logger: log.With("component", "memberlist")}
	if o.Loopback {
		mcfg.SetLoopbackTimings()
	}
	members, err := memberlist.New(mcfg)
	if err != nil {
		return nil, fmt.Errorf("node: starting membership on %s (--gossip-addr): %w", o.GossipAddr, err)
	}
	cp.members = members
	closers = append(closers, members.Shutdown)
	rcc := raftring.ReconcilerConfig{Membership: members, Ring: rr,
		Controller: ring.ControllerConfig{DeadNodeGrace: o.DeadNodeGrace}, Logger: log.With("component", "ring")}
	if o.Loopback {
		rcc.Interval = time.Second
	}
	rec, err := raftring.StartReconciler(rcc)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	recPtr.Store(rec)
	cp.rec = rec
	closers = append(closers, func() error { rec.Stop(); return nil })

	hub.SetOnFirstSubscriber(cl.AddInterest)
	hub.SetOnLastSubscriber(cl.RemoveInterest)
	cp.wg.Add(1)
	go cp.background(log)

	cfg.Cluster = cp
	n := assemble(cfg, cl, hub, store, m)
	cp.httpAddr = n.httpAddr
	n.readyCheck = cp.readyCheck
	n.closers = append(n.closers, func(ctx context.Context) error { return cp.stop(ctx) })
	return n, nil
}

// advertise replaces addr's host by host when host is set; with addr ""
// it returns "" (let the component choose).
func advertise(host, addr string) string {
	if host == "" || addr == "" {
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}

// advertiseOnly is advertise for the components' own advertise settings:
// "" unless a host is set.
func advertiseOnly(host, addr string) string {
	if host == "" {
		return ""
	}
	return advertise(host, addr)
}

func (cp *clusterParts) addrOf(id ring.NodeID) string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.addrs[id]
}

func (cp *clusterParts) setAddr(id ring.NodeID, addr string) {
	cp.mu.Lock()
	cp.addrs[id] = addr
	cp.mu.Unlock()
}

// background joins the seeds and the members remembered from before a
// restart (retrying until one answers) and founds the ring when the ring
// controller says so (ring.Controller.Found: --bootstrap-expect members
// seen for 2 s, smallest id; a node that had ring state never founds). (The
// membership's own loop redials lost members after that; push interest
// follows the hub's first and last subscribers.)
func (cp *clusterParts) background(log interface{ Info(string, ...any) }) {
	defer cp.wg.Done()
	self := cp.members.GossipAddr()
	var targets []string
	for _, a := range slices.Concat(cp.opts.Join, cp.members.RememberedAddrs()) {
		if a != self && !slices.Contains(targets, a) {
			targets = append(targets, a)
		}
	}
	joined := len(targets) == 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if !joined {
			if n, _ := cp.members.Join(targets); n > 0 {
				joined = true
				log.Info("joined the cluster", "seeds", cp.opts.Join, "tried", targets, "answered", n)
			}
		}
		if joined && cp.opts.BootstrapExpect > 1 {
			// (With 1, raftring.Open founded the ring already, or the
			// node joins one through --join.)
			var alive []ring.NodeID
			for _, mb := range cp.members.Members() {
				if mb.State == ring.MemberAlive && mb.RaftAddr != "" {
					alive = append(alive, mb.ID)
				}
			}
			hadRing := cp.ring.HadState() || cp.ring.HasState()
			if cp.founder.Found(cp.clock.NowMs(), alive, hadRing) {
				// Waited for an existing leader to add this node; none did.
				if err := cp.ring.BootstrapNow(); err == nil {
					log.Info("founded the ring", "members", len(alive))
				}
			}
		}
		select {
		case <-cp.done:
			return
		case <-tick.C:
		}
	}
}

// readyCheck passes when the node is part of the one ring that owns its
// profiles: it knows the table, it hears from the ring's raft leader
// (raftring.Ring.InContact), and the ring's member set includes it. A node
// restarted after being cut off, or on the minority side of a split, fails
// it: /readyz answers 503 and profile requests too, rather than answers
// from a table that may be stale.
func (cp *clusterParts) readyCheck() error {
	if !cp.cl.HasRing() {
		return errors.New("the ring is not known yet (joining)")
	}
	if !cp.ring.InContact() {
		return errors.New("not in contact with the ring's leader (cut off from the cluster, or rejoining it)")
	}
	if !cp.ring.IsRingMember(cp.self) {
		return errors.New("this node is not a member of the ring (joining, or rejoining after the dead-node grace)")
	}
	return nil
}

// stop leaves the cluster gracefully and stops the parts; the node closes
// the store after it.
func (cp *clusterParts) stop(ctx context.Context) error {
	close(cp.done)
	cp.wg.Wait()
	if err := cp.members.Leave(2 * time.Second); err != nil && !errors.Is(err, context.Canceled) {
		_ = err // leaving is best effort: the others declare the node dead
	}
	if cp.ring.IsLeader() {
		cp.ring.TransferLeadership()
	}
	cp.rec.Stop()
	cp.ring.Shutdown()
	cp.members.Shutdown()
	cp.cl.Close()
	return cp.transport.Close()
}

// ClusterStatus implements ClusterInfo for GET /v1/cluster.
func (cp *clusterParts) ClusterStatus(context.Context) (ClusterStatus, error) {
	t := cp.ring.Table()
	load := t.Load()
	leader, _ := cp.ring.Leader()
	st := ClusterStatus{Partitions: t.Partitions(), Replication: t.Replicas, RaftLeader: string(leader)}
	for _, mb := range cp.members.Members() {
		st.Members = append(st.Members, ClusterMember{ID: string(mb.ID), State: mb.State.String(),
			HTTPAddr: mb.HTTPAddr, Partitions: load[mb.ID]})
	}
	if st.Members == nil {
		st.Members = []ClusterMember{}
	}
	return st, nil
}

// GossipAddr returns the node's membership address (a seed for others to
// join), or "" for a node that runs alone.
func (n *Node) GossipAddr() string {
	if cp, ok := n.clusterInfo.(*clusterParts); ok {
		return cp.members.GossipAddr()
	}
	return ""
}

// Ready reports whether the node serves: a lone node at once, a cluster
// node once its copy of the ring has the given number of owning members.
func (n *Node) Ready(members int) bool {
	cp, ok := n.clusterInfo.(*clusterParts)
	if !ok {
		return true
	}
	t, have := cp.cl.Table()
	return have && len(t.Load()) == members
}
