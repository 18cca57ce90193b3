package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultDeadNodeGrace is the default of ring.ControllerConfig.DeadNodeGrace.
const DefaultDeadNodeGrace = 5 * time.Minute

// ControllerConfig configures a ring.Controller.
type ControllerConfig struct {
	// DeadNodeGrace is how long a member may be dead (or missing from
	// membership altogether) before the leader takes its partitions away and
	// removes it from the raft group. Shorter outages are bridged by hinted
	// handoff and anti-entropy, without moving data; a member that comes
	// back within the grace keeps its partitions. Shorter restores full
	// replication sooner after a real loss, but turns every slow restart
	// into two full partition moves. The default value is 5 minutes.
	DeadNodeGrace time.Duration
	// BootstrapExpect is how many live members a new cluster waits for
	// before its member with the smallest id founds the ring (Found). The
	// default value is 1.
	BootstrapExpect int
	// FoundAfter is how long the expected members must have been seen
	// before the founder founds the ring: time for an existing ring's
	// leader to add this node instead. The default value is 2 seconds.
	FoundAfter time.Duration
}

// DefaultFoundAfter is the default of ControllerConfig.FoundAfter.
const DefaultFoundAfter = 2 * time.Second

// EnsureDefaults fills zero fields with their defaults.
func (c *ControllerConfig) EnsureDefaults() {
	if c.DeadNodeGrace == 0 {
		c.DeadNodeGrace = DefaultDeadNodeGrace
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = 1
	}
	if c.FoundAfter == 0 {
		c.FoundAfter = DefaultFoundAfter
	}
}

// Validate reports settings that cannot work.
func (c ControllerConfig) Validate() error {
	switch {
	case c.DeadNodeGrace < 0:
		return fmt.Errorf("ring: dead node grace must not be negative, got %v", c.DeadNodeGrace)
	case c.BootstrapExpect < 1:
		return fmt.Errorf("ring: bootstrap expect must be at least 1, got %d", c.BootstrapExpect)
	case c.FoundAfter < 0:
		return fmt.Errorf("ring: found-after must not be negative, got %v", c.FoundAfter)
	}
	return nil
}

// View is what the ring configuration holds now, as the leader reads it.
type View struct {
	// Servers is the raft group's configuration.
	Servers []Server
	// Members is the member set the current table was computed for.
	Members []NodeID
	// MaxVoters caps the raft voters (see raftring.Config.MaxVoters).
	MaxVoters int
}

// ActionKind names what a ring.Action asks of the ring. Wire enum (it
// appears in simulator traces): append only.
type ActionKind uint8

const (
	// RemoveServer: remove ID from the raft group.
	RemoveServer ActionKind = 1
	// AddServer: add ID at RaftAddr to the raft group, or promote it to
	// voter, or update its address; Voter says which suffrage it gets.
	AddServer ActionKind = 2
	// SetMembers: commit Members as the ring's member set.
	SetMembers ActionKind = 3
)

// Action is one change the leader should make to the ring.
type Action struct {
	Kind     ActionKind
	ID       NodeID   // ring.RemoveServer, ring.AddServer
	RaftAddr string   // ring.AddServer
	Voter    bool     // ring.AddServer
	Members  []NodeID // ring.SetMembers: sorted
}

// String renders the action for logs and traces.
func (a Action) String() string {
	switch a.Kind {
	case RemoveServer:
		return "remove-server " + string(a.ID)
	case AddServer:
		s := "add-nonvoter "
		if a.Voter {
			s = "add-voter "
		}
		return s + string(a.ID) + " " + a.RaftAddr
	case SetMembers:
		ids := make([]string, len(a.Members))
		for i, m := range a.Members {
			ids[i] = string(m)
		}
		return "set-members " + strings.Join(ids, ",")
	default:
		return fmt.Sprintf("action(%d)", a.Kind)
	}
}

// Controller decides how the ring leader changes the ring configuration
// when membership changes. It is a sans-I/O state machine: membership goes
// in through Observe, the time and the ring's current configuration through
// Decide, which returns the actions that bring the ring to where membership
// says it should be. It keeps no timers; the wrapper (raftring.Reconciler, or
// the simulator) calls Decide on every change and periodically.
//
// The rules: a member that joins (alive, with a raft address) is added to
// the raft group (as a voter while there are fewer than MaxVoters, else a
// non-voter) and to the ring; one that leaves gracefully is removed at once;
// one that is dead, or that the ring holds but membership does not know, is
// removed only after DeadNodeGrace, and keeps everything if it comes back
// before. The controller's own node is never removed (a leaving leader
// transfers leadership first).
//
// Decide is level-triggered: it compares the wanted state with the view, so
// an action that failed is simply decided again next time, and a new leader
// picks up where the old one stopped.
//
// A Controller is not safe for concurrent use.
type Controller struct {
	self  NodeID
	grace int64 // ms
	// members holds each member's latest view from Observe.
	members map[NodeID]Member
	// absentSince holds, for each ID the ring holds but membership does not
	// know, when Decide first saw it so (ms). Invariant: no key of members
	// is a key of absentSince.
	absentSince map[NodeID]int64

	// Founding (Found): the members expected, how long to wait, and since
	// when enough were seen (enough unset: fewer than expected).
	expect      int
	foundAfter  int64 // ms
	enough      bool
	enoughSince int64
}

// NewController returns a controller for the leader self.
func NewController(self NodeID, cfg ControllerConfig) (*Controller, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == "" {
		return nil, errors.New("ring: ring controller needs its node ID")
	}
	return &Controller{
		self:        self,
		grace:       cfg.DeadNodeGrace.Milliseconds(),
		members:     map[NodeID]Member{},
		absentSince: map[NodeID]int64{},
		expect:      cfg.BootstrapExpect,
		foundAfter:  cfg.FoundAfter.Milliseconds(),
	}, nil
}

// Found decides, on a node that is not yet part of a ring, whether it
// founds one now (--bootstrap-expect): when it has no ring state and never
// had any, at least BootstrapExpect members have been alive (alive: the
// live members membership reports, this node among them) for longer than
// FoundAfter without an existing ring's leader adding this node, and this
// node has the smallest id of them. Every node of a new cluster runs the
// same rule on the same view, so exactly one founds; the others join its
// ring when its leader adds them. A node that had ring state (it was a
// member before a restart, or was added meanwhile) never founds: a second
// ring would split the cluster for good. The caller founds once it is told
// to and calls Found again on every membership change and periodically
// (every 250 ms in node/); the time is its input, as in Decide.
func (c *Controller) Found(nowMs int64, alive []NodeID, hadRing bool) bool {
	if hadRing || len(alive) < c.expect {
		c.enough = false
		return false
	}
	if !c.enough {
		c.enough, c.enoughSince = true, nowMs
		return false
	}
	return nowMs-c.enoughSince > c.foundAfter && slices.Min(alive) == c.self
}

// Observe records a member's latest view (from Membership.Members or a
// MemberChangeFunc).
func (c *Controller) Observe(m Member) {
	if m.ID == "" {
		return
	}
	c.members[m.ID] = m
	delete(c.absentSince, m.ID)
}

// Decide returns the actions that bring the ring from v to what membership
// wants at time nowMs (ms since the Unix epoch), in the order to apply them:
// removals, then additions and promotions, then the new member set. It
// returns nil when the ring is as it should be.
func (c *Controller) Decide(nowMs int64, v View) []Action {
	wantRing, wantServer := c.wanted(nowMs, v)

	var actions []Action
	// 1. Removals first, so promotions can fill the voter slots they free.
	servers := make([]Server, 0, len(v.Servers))
	for _, s := range sortedServers(v.Servers) {
		if !wantServer[s.ID] && s.ID != c.self {
			actions = append(actions, Action{Kind: RemoveServer, ID: s.ID})
			continue
		}
		servers = append(servers, s)
	}
	// 2. Additions, address updates and promotions, for live members.
	for _, id := range sortedIDs(wantServer) {
		m, known := c.members[id]
		if id == c.self || !known || m.RaftAddr == "" || !live(m.State) {
			continue
		}
		plan := PlanAddServer(servers, id, m.RaftAddr, v.MaxVoters)
		if !plan.Needed {
			continue
		}
		actions = append(actions, Action{Kind: AddServer, ID: id, RaftAddr: m.RaftAddr, Voter: plan.Voter})
		servers = plan.Apply(servers, id, m.RaftAddr)
	}
	// 3. The member set.
	members := sortedIDs(wantRing)
	current := slices.Clone(v.Members)
	slices.Sort(current)
	if !slices.Equal(members, slices.Compact(current)) {
		actions = append(actions, Action{Kind: SetMembers, Members: members})
	}
	return actions
}

func live(s MemberState) bool { return s == MemberAlive || s == MemberSuspect }

// wanted returns the IDs that should be ring members and raft servers at
// nowMs, updating absentSince. Live members are wanted in both; this node
// always; a dead member, or one the ring holds that membership does not
// know, keeps the places it has until DeadNodeGrace is over (it gains none);
// a member that left has none.
func (c *Controller) wanted(nowMs int64, v View) (ring, servers map[NodeID]bool) {
	ring = map[NodeID]bool{c.self: true}
	servers = map[NodeID]bool{c.self: true}
	for id, m := range c.members {
		if live(m.State) {
			ring[id], servers[id] = true, true
		}
	}
	// IDs the ring holds that membership has never reported (this leader
	// started after they died, or they never reached its memberlist) count
	// as dead since this controller first noticed them.
	held := map[NodeID]bool{}
	for _, id := range v.Members {
		held[id] = true
	}
	for _, s := range v.Servers {
		held[s.ID] = true
	}
	for id := range c.absentSince {
		if !held[id] {
			delete(c.absentSince, id)
		}
	}
	inGrace := func(id NodeID) bool {
		if m, known := c.members[id]; known {
			return m.State == MemberDead && nowMs-m.Since < c.grace
		}
		since, ok := c.absentSince[id]
		if !ok {
			since = nowMs
			c.absentSince[id] = nowMs
		}
		return nowMs-since < c.grace
	}
	for _, id := range v.Members {
		if !ring[id] && inGrace(id) {
			ring[id] = true
		}
	}
	for _, s := range v.Servers {
		if !servers[s.ID] && inGrace(s.ID) {
			servers[s.ID] = true
		}
	}
	return ring, servers
}

// AddServerPlan says what adding a server to a raft group takes.
type AddServerPlan struct {
	// Needed is false when the server is already there as it should be
	// (then the plan is the zero value).
	Needed bool
	// Voter is the suffrage to add it with.
	Voter bool
}

// PlanAddServer decides how to add server id at addr to a group with the
// given servers and voter cap: a new server becomes a voter while the group
// has fewer than maxVoters voters, else a non-voter; an existing non-voter
// is promoted when there is room; an existing server at another address is
// re-added with its suffrage (raft updates the address). It is a pure
// function.
func PlanAddServer(servers []Server, id NodeID, addr string, maxVoters int) AddServerPlan {
	voters := 0
	var cur *Server
	for i := range servers {
		if servers[i].Voter {
			voters++
		}
		if servers[i].ID == id {
			cur = &servers[i]
		}
	}
	switch {
	case cur == nil:
		return AddServerPlan{Needed: true, Voter: voters < maxVoters}
	case !cur.Voter && voters < maxVoters:
		return AddServerPlan{Needed: true, Voter: true}
	case cur.Addr != addr:
		return AddServerPlan{Needed: true, Voter: cur.Voter}
	default:
		return AddServerPlan{}
	}
}

// apply returns servers after the plan was carried out for id at addr.
func (p AddServerPlan) Apply(servers []Server, id NodeID, addr string) []Server {
	out := slices.Clone(servers)
	for i := range out {
		if out[i].ID == id {
			out[i].Addr, out[i].Voter = addr, p.Voter
			return out
		}
	}
	return append(out, Server{ID: id, Addr: addr, Voter: p.Voter})
}

func sortedServers(s []Server) []Server {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func sortedIDs(set map[NodeID]bool) []NodeID {
	out := make([]NodeID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Server is one server of the ring's raft group.
type Server struct {
	ID    NodeID
	Addr  string // raft transport address, host:port
	Voter bool   // false: a non-voter, which replicates but does not vote
}
