package raftring

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/playhead/playhead/gossip/internal/hostport"
	"github.com/playhead/playhead/gossip/ring"
	"go.etcd.io/bbolt"
)

// Defaults of raftring.Config.
const (
	DefaultRaftBindAddr          = "0.0.0.0:7947"
	DefaultMaxVoters             = 5
	DefaultRaftHeartbeatTimeout  = 1000 * time.Millisecond
	DefaultRaftElectionTimeout   = 1000 * time.Millisecond
	DefaultRaftLeaderLease       = 500 * time.Millisecond
	DefaultRaftCommitTimeout     = 50 * time.Millisecond
	DefaultRaftApplyTimeout      = 10 * time.Second
	DefaultRaftSnapshotInterval  = 120 * time.Second
	DefaultRaftSnapshotThreshold = 1024
	DefaultRaftTrailingLogs      = 1024
	// raftSnapshotsRetained is how many snapshots stay on disk (the newest
	// and one before it, in case the newest is damaged).
	raftSnapshotsRetained = 2
	// raftStoreOpenTimeout bounds the wait for the raft store's file lock:
	// another process holding it means a second node on one data dir.
	raftStoreOpenTimeout = 1 * time.Second
)

// Errors of the raft ring.
var (
	// ErrNotRingLeader: the call must be made on the raft leader (see
	// Leader); leadership may also have been lost during the call. Retry on
	// the leader.
	ErrNotRingLeader = errors.New("raftring: not the ring leader")
	// ErrRingClosed: the raftring.Ring was shut down (or removed from the group).
	ErrRingClosed = errors.New("raftring: ring is shut down")
)

// Config configures a raftring.Ring. The zero value of every field but
// NodeID and DataDir takes its default (EnsureDefaults). Durations are
// wall-clock time.
type Config struct {
	// NodeID is this node's raft server ID: the same as its member ID.
	// Required.
	NodeID ring.NodeID
	// DataDir is the node's data directory. The raft log and stable store
	// live in DataDir/raft/raft.db (bbolt), snapshots in
	// DataDir/raft/snapshots. Required.
	DataDir string
	// BindAddr is the host:port of raft's TCP transport. Port 0 picks a free
	// port (tests); Addr reports it. The default value is "0.0.0.0:7947",
	// which needs AdvertiseAddr.
	BindAddr string
	// AdvertiseAddr is the host:port the other servers dial, when BindAddr's
	// host is unspecified (0.0.0.0) or not reachable by them. It is stored
	// in the raft configuration, so it must stay stable across restarts.
	// The default value is "" (use BindAddr).
	AdvertiseAddr string

	// Partitions is the number of partitions of the table the first
	// SetMembers creates; fixed for the life of the cluster, and every node
	// must be started with the same value. The default value is
	// DefaultPartitions (1024).
	Partitions int
	// Replicas is the replication factor the leader's SetMembers applies
	// (each partition has min(Replicas, members) owners). The default value
	// is 3.
	Replicas int
	// MaxVoters caps the raft voters: AddServer adds a voter while there are
	// fewer, a non-voter after. More voters survive more failures
	// ((voters-1)/2) but make every commit wait on more servers; an odd
	// number wastes none. The default value is 5.
	MaxVoters int

	// Bootstrap makes this node found a single-server cluster if its
	// DataDir holds no raft state yet; with state, it is ignored. Set it on
	// exactly one node of a new cluster (the others are added by the
	// leader): two bootstrapped nodes make two clusters that never merge.
	// The default value is false.
	Bootstrap bool

	// HeartbeatTimeout is how long a follower waits without hearing from the
	// leader before it calls an election. Lower fails over faster but risks
	// needless elections on a slow network or a paused process. The default
	// value is 1 second.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before trying
	// again; at least HeartbeatTimeout. The default value is 1 second.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum; at most HeartbeatTimeout. Lower makes a partitioned
	// leader step down sooner. The default value is 500 milliseconds.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest the leader waits before sending an
	// (empty) append to followers, bounding how late they learn a commit.
	// The default value is 50 milliseconds.
	CommitTimeout time.Duration
	// ApplyTimeout bounds how long SetMembers, AddServer and RemoveServer
	// wait to be enqueued and committed. The default value is 10 seconds.
	ApplyTimeout time.Duration
	// SnapshotInterval is how often raft checks whether to snapshot, and
	// SnapshotThreshold how many new log entries make it do so. Ring changes
	// are rare and the state small, so a low threshold costs little and
	// keeps restarts fast. The default values are 120 seconds and 1024.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// a briefly lagging follower catches up from the log rather than a
	// snapshot. The default value is 1024.
	TrailingLogs uint64

	// OnTable, if set, is called with the new table after each change is
	// applied, and once at start when state was restored from disk. Calls
	// come from one goroutine owned by the raftring.Ring, in order, never
	// concurrently; tables that change while a call runs are coalesced (the
	// next call gets the latest). It must not block for long, nor call
	// Shutdown. The default value is nil.
	OnTable func(ring.Table)
	// OnLeader, if set, is called with true when this node becomes the
	// leader and false when it stops being it, from the same goroutine as
	// OnTable; quick flaps may be coalesced to the latest value. The default
	// value is nil.
	OnLeader func(isLeader bool)
	// Logger receives raft's warnings and errors (its info-level chatter
	// about elections and replication is dropped). The default value
	// discards them.
	Logger *slog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.BindAddr == "" {
		c.BindAddr = DefaultRaftBindAddr
	}
	if c.Partitions == 0 {
		c.Partitions = ring.DefaultPartitions
	}
	if c.Replicas == 0 {
		c.Replicas = ring.DefaultReplicas
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = DefaultMaxVoters
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultRaftHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultRaftElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = DefaultRaftLeaderLease
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultRaftCommitTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultRaftApplyTimeout
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultRaftSnapshotInterval
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultRaftSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultRaftTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SetLoopbackTimings shortens raft's timeouts for clusters on one host
// (tests): a failover takes a few hundred milliseconds instead of seconds.
// On a real network they would cause needless elections.
func (c *Config) SetLoopbackTimings() {
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
}

// Validate reports settings that cannot work, saying what to change.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("raftring: raft ring needs a node ID (--node-id)")
	}
	if c.DataDir == "" {
		return errors.New("raftring: raft ring needs a data directory (--data-dir)")
	}
	host, _, err := hostport.SplitHostPort(c.BindAddr)
	if err != nil {
		return fmt.Errorf("raftring: raft bind address: %w", err)
	}
	if c.AdvertiseAddr == "" {
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("raftring: raft bind address %q is not one other servers can dial; set the raft advertise address", c.BindAddr)
		}
	} else {
		host, port, err := hostport.SplitHostPort(c.AdvertiseAddr)
		if err != nil {
			return fmt.Errorf("raftring: raft advertise address: %w", err)
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || port == 0 {
			return fmt.Errorf("raftring: raft advertise address %q must be a specific IP and a port", c.AdvertiseAddr)
		}
	}
	if c.Partitions < 1 || c.Partitions > 1<<16 {
		return fmt.Errorf("raftring: partitions must be in [1, 65536], got %d", c.Partitions)
	}
	if c.Replicas < 1 || c.Replicas > 16 {
		return fmt.Errorf("raftring: replicas must be in [1, 16], got %d", c.Replicas)
	}
	if c.MaxVoters < 1 || c.MaxVoters > 9 {
		return fmt.Errorf("raftring: raft max voters must be in [1, 9] (5 is usual), got %d", c.MaxVoters)
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond ||
		c.LeaderLeaseTimeout < 5*time.Millisecond || c.CommitTimeout < time.Millisecond {
		return errors.New("raftring: raft timeouts are too short (heartbeat, election and lease at least 5ms, commit 1ms)")
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return fmt.Errorf("raftring: raft election timeout %v must be at least the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("raftring: raft leader lease %v must be at most the heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ApplyTimeout <= 0 || c.SnapshotInterval < 5*time.Millisecond {
		return errors.New("raftring: raft apply timeout and snapshot interval must be positive")
	}
	return nil
}

// Ring is the ring configuration replicated by a hashicorp/raft group:
// its state machine is a ring.State, changed only by SetMembers commands.
// All methods are safe for concurrent use.
//
// It owns one goroutine (OnTable and OnLeader calls) plus raft's own;
// Shutdown stops them all.
type Ring struct {
	cfg         Config
	raft        *raft.Raft
	fsm         *ringFSM
	trans       *raft.NetworkTransport
	store       *raftboltdb.BoltStore
	placeholder ring.Table // Table before the first SetMembers
	hadState    bool       // the data directory held raft state at Open
	// stalledMs: when the contact loop last saw the process stall;
	// verifiedMs: when a quorum last confirmed this node's leadership
	// (Unix ms). See InContact.
	stalledMs  atomic.Int64
	verifiedMs atomic.Int64
	tickMs     atomic.Int64 // the contact loop's last tick
	log        *slog.Logger

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	err  error // Shutdown's result
}

// Open opens (or creates) the node's raft state in cfg.DataDir,
// starts the transport on cfg.BindAddr and joins the group it was part of.
// A new node with Bootstrap founds a cluster of one; a new node without it
// waits for a leader to add it (AddServer). Call Shutdown to stop it.
func Open(cfg Config) (_ *Ring, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Ring{
		cfg:         cfg,
		placeholder: ring.Table{Replicas: cfg.Replicas, Owners: make([][]ring.NodeID, cfg.Partitions)},
		log:         cfg.Logger.With("component", "raft-ring"),
		done:        make(chan struct{}),
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				_ = c()
			}
		}
	}()

	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftring: creating the raft directory: %w", err)
	}
	hlog := newHclogBridge(r.log, hclog.Warn)

	dbPath := filepath.Join(dir, "raft.db")
	r.store, err = raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		BoltOptions: &bbolt.Options{Timeout: raftStoreOpenTimeout},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("raftring: raft store %s is locked by another process (is another node running on this data dir?)", dbPath)
	}
	if err != nil {
		return nil, fmt.Errorf("raftring: opening raft store %s: %w", dbPath, err)
	}
	closers = append(closers, r.store.Close)
	logs, err := raft.NewLogCache(128, r.store)
	if err != nil {
		return nil, fmt.Errorf("raftring: raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, raftSnapshotsRetained, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftring: raft snapshot store in %s: %w", dir, err)
	}

	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("raftring: raft advertise address: %w", err)
		}
	}
	r.trans, err = raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, 3, 10*time.Second, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftring: starting raft transport on %s: %w", cfg.BindAddr, err)
	}
	closers = append(closers, r.trans.Close)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hlog
	// A server removed from the group (dead past the grace, then back) keeps
	// running as a follower without a vote, so the leader can add it back
	// when membership sees it again; raft's default shuts it down for good.
	rc.ShutdownOnRemove = false
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raftring: raft config: %w", err)
	}

	r.fsm = newRingFSM(r.log)
	existing, err := raft.HasExistingState(logs, r.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftring: reading raft state in %s: %w", dir, err)
	}
	r.hadState = existing
	if cfg.Bootstrap && existing {
		r.log.Info("ring state found in the data directory: rejoining the ring it belongs to, not founding one")
	}
	r.raft, err = raft.NewRaft(rc, r.fsm, logs, r.store, snaps, r.trans)
	if err != nil {
		return nil, fmt.Errorf("raftring: starting raft: %w", err)
	}
	closers = append(closers, func() error { return r.raft.Shutdown().Error() })
	if cfg.Bootstrap && !existing {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: r.trans.LocalAddr(),
		}}}
		if err := r.raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("raftring: bootstrapping the ring: %w", err)
		}
	}

	r.tickMs.Store(time.Now().UnixMilli())
	r.wg.Add(3)
	go r.notify()
	go r.contact()
	go r.verify()
	return r, nil
}

// notify is the goroutine that calls OnTable and OnLeader.
func (r *Ring) notify() {
	defer r.wg.Done()
	leaderCh := r.raft.LeaderCh()
	for {
		select {
		case <-r.done:
			return
		case <-r.fsm.changed:
			t := r.Table()
			if t.Partitions() != r.cfg.Partitions {
				r.log.Error("the ring's partition count differs from this node's configuration; the ring's wins",
					"ring", t.Partitions(), "configured", r.cfg.Partitions)
			}
			if r.cfg.OnTable != nil {
				r.cfg.OnTable(t)
			}
		case isLeader := <-leaderCh:
			if r.cfg.OnLeader != nil {
				r.cfg.OnLeader(isLeader)
			}
		}
	}
}

// ID returns this node's ID.
func (r *Ring) ID() ring.NodeID { return r.cfg.NodeID }

// Addr returns the raft address other servers reach this node at (the
// bound port when BindAddr asked for port 0): what AddServer needs.
func (r *Ring) Addr() string { return string(r.trans.LocalAddr()) }

// MaxVoters returns the voter cap AddServer applies.
func (r *Ring) MaxVoters() int { return r.cfg.MaxVoters }

// Table returns the current table: the last one applied on this node
// (followers may lag the leader by a heartbeat). Before the first
// SetMembers it has Version 0 and no owners. The table is shared: do not
// modify it.
func (r *Ring) Table() ring.Table {
	if s := r.fsm.state.Load(); s.Table.Partitions() > 0 {
		return s.Table
	}
	return r.placeholder
}

// RingMembers returns the member set the current table was computed for.
func (r *Ring) RingMembers() []ring.NodeID {
	return slices.Clone(r.fsm.state.Load().Members)
}

// IsRingMember reports whether id is in the ring's member set, without
// copying it (checked on every profile request: node's readiness gate).
func (r *Ring) IsRingMember(id ring.NodeID) bool {
	return slices.Contains(r.fsm.state.Load().Members, id)
}

// IsLeader reports whether this node is the raft leader now.
func (r *Ring) IsLeader() bool { return r.raft.State() == raft.Leader }

// Leader returns the leader's ID and raft address as this node knows them;
// empty if there is no leader (an election is running, or no quorum).
func (r *Ring) Leader() (ring.NodeID, string) {
	addr, id := r.raft.LeaderWithID()
	return ring.NodeID(id), string(addr)
}

// Servers returns the raft group's latest configuration.
func (r *Ring) Servers() ([]ring.Server, error) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, r.mapErr("reading the raft configuration", err)
	}
	var out []ring.Server
	for _, s := range f.Configuration().Servers {
		out = append(out, ring.Server{ID: ring.NodeID(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddServer adds a server to the raft group, or updates its address: as a
// voter while the group has fewer than MaxVoters voters, else as a
// non-voter; an existing non-voter is promoted when there is room. A server
// already present as it should be is left alone. Leader only.
func (r *Ring) AddServer(id ring.NodeID, raftAddr string) error {
	if id == "" || raftAddr == "" {
		return errors.New("raftring: adding a ring server needs an ID and a raft address")
	}
	servers, err := r.Servers()
	if err != nil {
		return err
	}
	plan := ring.PlanAddServer(servers, id, raftAddr, r.cfg.MaxVoters)
	if !plan.Needed {
		return nil
	}
	var f raft.IndexFuture
	if plan.Voter {
		f = r.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, r.cfg.ApplyTimeout)
	} else {
		f = r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, r.cfg.ApplyTimeout)
	}
	if err := f.Error(); err != nil {
		return r.mapErr(fmt.Sprintf("adding %s to the ring's raft group", id), err)
	}
	return nil
}

// RemoveServer removes a server from the raft group; removing one that is
// not there is a no-op. A removed server shuts its raft down. Leader only.
func (r *Ring) RemoveServer(id ring.NodeID) error {
	servers, err := r.Servers()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(servers, func(s ring.Server) bool { return s.ID == id }) {
		return nil
	}
	if err := r.raft.RemoveServer(raft.ServerID(id), 0, r.cfg.ApplyTimeout).Error(); err != nil {
		return r.mapErr(fmt.Sprintf("removing %s from the ring's raft group", id), err)
	}
	return nil
}

// SetMembers commits a new member set: once it returns nil, every replica
// applies ring.State.SetMembers with this node's Partitions and Replicas, so
// all tables become the same Rebalance of the members. Leader only.
func (r *Ring) SetMembers(members []ring.NodeID) error {
	if len(members) == 0 {
		return ring.ErrRingNoMembers
	}
	cmd, err := ring.EncodeSetMembers(ring.SetMembersCmd{Members: members, Partitions: r.cfg.Partitions, Replicas: r.cfg.Replicas})
	if err != nil {
		return err
	}
	f := r.raft.Apply(cmd, r.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return r.mapErr("committing the ring's member set", err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// Snapshot makes raft snapshot the state now (it also does on its own, see
// SnapshotThreshold), so a restart replays less log.
func (r *Ring) Snapshot() error {
	if err := r.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return r.mapErr("snapshotting the ring", err)
	}
	return nil
}

// TransferLeadership hands leadership to another voter: call it on the
// leader before a graceful shutdown, so the cluster does not wait out an
// election timeout. Leader only.
func (r *Ring) TransferLeadership() error {
	if err := r.raft.LeadershipTransfer().Error(); err != nil {
		return r.mapErr("transferring ring leadership", err)
	}
	return nil
}

// Shutdown stops raft, the notification goroutine and the transport, and
// closes the store. It is safe to call more than once. It does not leave
// the group: the leader removes this server when membership says so.
func (r *Ring) Shutdown() error {
	r.once.Do(func() {
		var errs []error
		if err := r.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft: %w", err))
		}
		close(r.done)
		r.wg.Wait()
		// Close the pooled connections too: Close stops only the listener,
		// and a pooled connection left open keeps a goroutine on the peer
		// reading from it (and a file descriptor here) for good.
		r.trans.CloseStreams()
		if err := r.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft transport: %w", err))
		}
		if err := r.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft store: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			r.err = fmt.Errorf("raftring: ring shutdown: %w", err)
		}
	})
	return r.err
}

// mapErr turns raft's errors into ours.
func (r *Ring) mapErr(what string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrNotVoter):
		return fmt.Errorf("%w: %s: %v", ErrNotRingLeader, what, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %s", ErrRingClosed, what)
	default:
		return fmt.Errorf("raftring: %s: %w", what, err)
	}
}
