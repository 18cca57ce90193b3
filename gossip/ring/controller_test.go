package ring

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const testGraceMs = int64(5 * time.Minute / time.Millisecond)

func ctlAlive(id string, since int64) Member {
	return Member{ID: NodeID(id), RaftAddr: id + ":7947", State: MemberAlive, Since: since}
}

func ctlWithState(m Member, s MemberState, since int64) Member {
	m.State, m.Since = s, since
	return m
}

func ctlVoters(ids ...string) []Server {
	out := make([]Server, len(ids))
	for i, id := range ids {
		out[i] = Server{ID: NodeID(id), Addr: id + ":7947", Voter: true}
	}
	return out
}

func ctlIDs(s ...string) []NodeID {
	out := make([]NodeID, len(s))
	for i, id := range s {
		out[i] = NodeID(id)
	}
	return out
}

func ctlRender(actions []Action) string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = a.String()
	}
	return strings.Join(out, "; ")
}

// TestRingControllerDecide drives the controller of leader n1 through the
// membership stories DESIGN.md §5 names and checks the actions it decides.
func TestRingControllerDecide(t *testing.T) {
	const t0 = int64(1_000_000)
	three := View{Servers: ctlVoters("n1", "n2", "n3"), Members: ctlIDs("n1", "n2", "n3"), MaxVoters: 5}
	for _, tc := range []struct {
		name    string
		observe []Member
		now     int64
		view    View
		want    string
	}{{
		name:    "bootstrap: the leader alone sets itself as the member set",
		observe: []Member{ctlAlive("n1", t0)},
		now:     t0,
		view:    View{Servers: ctlVoters("n1"), MaxVoters: 5},
		want:    "set-members n1",
	}, {
		name:    "join: added as a voter, then to the ring",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0), ctlAlive("n4", t0)},
		now:     t0,
		view:    three,
		want:    "add-voter n4 n4:7947; set-members n1,n2,n3,n4",
	}, {
		name:    "join of several at once: one member set",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0)},
		now:     t0,
		view:    View{Servers: ctlVoters("n1"), Members: ctlIDs("n1"), MaxVoters: 5},
		want:    "add-voter n2 n2:7947; add-voter n3 n3:7947; set-members n1,n2,n3",
	}, {
		name:    "steady state: nothing to do",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0)},
		now:     t0 + 10*testGraceMs,
		view:    three,
		want:    "",
	}, {
		name:    "suspect is still a member",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlWithState(ctlAlive("n3", t0), MemberSuspect, t0)},
		now:     t0 + 10*testGraceMs,
		view:    three,
		want:    "",
	}, {
		name:    "graceful leave: removed at once",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlWithState(ctlAlive("n3", t0), MemberLeft, t0)},
		now:     t0,
		view:    three,
		want:    "remove-server n3; set-members n1,n2",
	}, {
		name:    "dead before grace: keeps its partitions and its server",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlWithState(ctlAlive("n3", t0), MemberDead, t0)},
		now:     t0 + testGraceMs - 1,
		view:    three,
		want:    "",
	}, {
		name:    "dead after grace: removed",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlWithState(ctlAlive("n3", t0), MemberDead, t0)},
		now:     t0 + testGraceMs,
		view:    three,
		want:    "remove-server n3; set-members n1,n2",
	}, {
		name: "returns before grace: keeps its partitions",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0),
			ctlWithState(ctlAlive("n3", t0), MemberDead, t0), ctlAlive("n3", t0+testGraceMs/2)},
		now:  t0 + 2*testGraceMs,
		view: three,
		want: "",
	}, {
		name:    "returns after removal: joins again",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0+2*testGraceMs)},
		now:     t0 + 2*testGraceMs,
		view:    View{Servers: ctlVoters("n1", "n2"), Members: ctlIDs("n1", "n2"), MaxVoters: 5},
		want:    "add-voter n3 n3:7947; set-members n1,n2,n3",
	}, {
		name:    "a dead member the ring never had gains nothing",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0), ctlWithState(ctlAlive("n4", t0), MemberDead, t0)},
		now:     t0 + 1,
		view:    three,
		want:    "",
	}, {
		name:    "the leader itself leaving is not removed (it hands over first)",
		observe: []Member{ctlWithState(ctlAlive("n1", t0), MemberLeft, t0), ctlAlive("n2", t0), ctlAlive("n3", t0)},
		now:     t0,
		view:    three,
		want:    "",
	}, {
		name:    "6th server joins as a non-voter",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0), ctlAlive("n4", t0), ctlAlive("n5", t0), ctlAlive("n6", t0)},
		now:     t0,
		view:    View{Servers: ctlVoters("n1", "n2", "n3", "n4", "n5"), Members: ctlIDs("n1", "n2", "n3", "n4", "n5"), MaxVoters: 5},
		want:    "add-nonvoter n6 n6:7947; set-members n1,n2,n3,n4,n5,n6",
	}, {
		name: "a voter leaves: a non-voter is promoted into its slot",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0), ctlAlive("n4", t0),
			ctlWithState(ctlAlive("n5", t0), MemberLeft, t0), ctlAlive("n6", t0)},
		now: t0,
		view: View{
			Servers:   append(ctlVoters("n1", "n2", "n3", "n4", "n5"), Server{ID: "n6", Addr: "n6:7947"}),
			Members:   ctlIDs("n1", "n2", "n3", "n4", "n5", "n6"),
			MaxVoters: 5,
		},
		want: "remove-server n5; add-voter n6 n6:7947; set-members n1,n2,n3,n4,n6",
	}, {
		name:    "a member restarted at a new raft address is re-added there",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), {ID: "n3", RaftAddr: "n3:9000", State: MemberAlive, Since: t0}},
		now:     t0,
		view:    three,
		want:    "add-voter n3 n3:9000",
	}, {
		name:    "a member without a raft address joins the ring only",
		observe: []Member{ctlAlive("n1", t0), ctlAlive("n2", t0), ctlAlive("n3", t0), {ID: "n4", State: MemberAlive, Since: t0}},
		now:     t0,
		view:    three,
		want:    "set-members n1,n2,n3,n4",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewController("n1", ControllerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.observe {
				c.Observe(m)
			}
			if got := ctlRender(c.Decide(tc.now, tc.view)); got != tc.want {
				t.Fatalf("actions:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRingControllerAbsentMembers: servers and members the ring holds but
// membership never reported (the leader started after they died) get the
// grace from when the controller first noticed them.
func TestRingControllerAbsentMembers(t *testing.T) {
	c, err := NewController("n1", ControllerConfig{DeadNodeGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c.Observe(ctlAlive("n1", 0))
	c.Observe(ctlAlive("n2", 0))
	view := View{Servers: ctlVoters("n1", "n2", "n3"), Members: ctlIDs("n1", "n2", "n3"), MaxVoters: 5}
	const t0 = int64(50_000)
	for _, step := range []struct {
		now  int64
		want string
	}{
		{t0, ""},
		{t0 + 59_999, ""},
		{t0 + 60_000, "remove-server n3; set-members n1,n2"},
	} {
		if got := ctlRender(c.Decide(step.now, view)); got != step.want {
			t.Fatalf("at %d: got %q, want %q", step.now, got, step.want)
		}
	}
	// Once it reports in, it is a member like any other.
	c.Observe(ctlAlive("n3", t0+60_001))
	if got := ctlRender(c.Decide(t0+60_002, view)); got != "" {
		t.Fatalf("after n3 reported: got %q", got)
	}
}

// TestRingControllerLevelTriggered: a decision that was not carried out is
// decided again; one that was is not.
func TestRingControllerLevelTriggered(t *testing.T) {
	c, _ := NewController("n1", ControllerConfig{})
	for _, id := range []string{"n1", "n2"} {
		c.Observe(ctlAlive(id, 0))
	}
	v := View{Servers: ctlVoters("n1"), Members: ctlIDs("n1"), MaxVoters: 5}
	first := ctlRender(c.Decide(1, v))
	if again := ctlRender(c.Decide(2, v)); again != first || first == "" {
		t.Fatalf("not repeated: %q then %q", first, again)
	}
	v = View{Servers: ctlVoters("n1", "n2"), Members: ctlIDs("n1", "n2"), MaxVoters: 5}
	if got := ctlRender(c.Decide(3, v)); got != "" {
		t.Fatalf("after applying: %q", got)
	}
}

func TestRingControllerPlanAddServer(t *testing.T) {
	five := ctlVoters("a", "b", "c", "d", "e")
	for _, tc := range []struct {
		name    string
		servers []Server
		id      NodeID
		addr    string
		max     int
		want    AddServerPlan
	}{
		{"new, room", ctlVoters("a"), "b", "b:7947", 5, AddServerPlan{Needed: true, Voter: true}},
		{"new, voters full", five, "f", "f:7947", 5, AddServerPlan{Needed: true, Voter: false}},
		{"new, cap 1", ctlVoters("a"), "b", "b:7947", 1, AddServerPlan{Needed: true, Voter: false}},
		{"voter present", five, "c", "c:7947", 5, AddServerPlan{}},
		{"voter moved", five, "c", "c:9", 5, AddServerPlan{Needed: true, Voter: true}},
		{"non-voter, room: promote", append(ctlVoters("a"), Server{ID: "b", Addr: "b:7947"}), "b", "b:7947", 5, AddServerPlan{Needed: true, Voter: true}},
		{"non-voter, full", append(slices.Clone(five), Server{ID: "f", Addr: "f:7947"}), "f", "f:7947", 5, AddServerPlan{}},
		{"non-voter moved, full", append(slices.Clone(five), Server{ID: "f", Addr: "f:7947"}), "f", "f:1", 5, AddServerPlan{Needed: true, Voter: false}},
	} {
		if got := PlanAddServer(tc.servers, tc.id, tc.addr, tc.max); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestRingControllerConfigValidate(t *testing.T) {
	if _, err := NewController("n1", ControllerConfig{DeadNodeGrace: -time.Second}); err == nil || !strings.HasPrefix(err.Error(), "ring: ") {
		t.Fatalf("negative grace: %v", err)
	}
	if _, err := NewController("", ControllerConfig{}); err == nil {
		t.Fatal("empty self accepted")
	}
}

// TestRingControllerFound: with --bootstrap-expect 3, the member with the
// smallest id founds once three members have been alive for longer than
// FoundAfter; the others never do; fewer members restart the wait; and a
// node that had ring state never founds, however long it waits.
func TestRingControllerFound(t *testing.T) {
	const t0 = int64(1_800_000_000_000)
	ctl := func(self string) *Controller {
		c, err := NewController(NodeID(self), ControllerConfig{BootstrapExpect: 3})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	three := ctlIDs("n3", "n1", "n2")
	n1, n2 := ctl("n1"), ctl("n2")
	for ms := int64(0); ms <= 2_000; ms += 250 {
		if n1.Found(t0+ms, three, false) || n2.Found(t0+ms, three, false) {
			t.Fatalf("founded %d ms after the members were seen, before FoundAfter", ms)
		}
	}
	if !n1.Found(t0+2_250, three, false) {
		t.Fatal("n1, the smallest id, did not found after FoundAfter")
	}
	if n2.Found(t0+60_000, three, false) {
		t.Fatal("n2 founded although n1 has the smallest id")
	}
	// Too few members: no founding, and the wait starts again.
	c := ctl("n1")
	c.Found(t0, three, false)
	if c.Found(t0+3_000, ctlIDs("n1", "n2"), false) {
		t.Fatal("founded with 2 of 3 expected members")
	}
	if c.Found(t0+4_000, three, false) || c.Found(t0+5_000, three, false) {
		t.Fatal("founded before FoundAfter passed since enough members were seen again")
	}
	if !c.Found(t0+6_100, three, false) {
		t.Fatal("did not found 2.1 s after enough members were seen again")
	}
	// A node that had ring state never founds.
	old := ctl("n1")
	for ms := int64(0); ms <= 600_000; ms += 250 {
		if old.Found(t0+ms, three, true) {
			t.Fatalf("a node with old ring state founded a new ring at %d ms", ms)
		}
	}
	if _, err := NewController("n1", ControllerConfig{BootstrapExpect: -1}); err == nil {
		t.Fatal("bootstrap expect -1 accepted")
	}
}
