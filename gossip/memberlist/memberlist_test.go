package memberlist

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/internal/edgetest"
	"github.com/playhead/playhead/gossip/ring"
)

// edgeMemberLog records OnChange deliveries.
type edgeMemberLog struct {
	mu  sync.Mutex
	got []ring.Member
}

func (l *edgeMemberLog) add(m ring.Member) {
	l.mu.Lock()
	l.got = append(l.got, m)
	l.mu.Unlock()
}

func (l *edgeMemberLog) saw(id ring.NodeID, s ring.MemberState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.got, func(m ring.Member) bool { return m.ID == id && m.State == s })
}

// newTestMemberlist starts a member on 127.0.0.1:0 with the given keys; it
// publishes made-up addresses derived from its ID.
func newTestMemberlist(t *testing.T, id string, keys ...[]byte) (*Memberlist, *edgeMemberLog) {
	t.Helper()
	log := &edgeMemberLog{}
	cfg := Config{
		NodeID:   ring.NodeID(id),
		BindAddr: "127.0.0.1:0",
		RPCAddr:  "rpc-" + id + ":7000",
		HTTPAddr: "http-" + id + ":8080",
		RaftAddr: "raft-" + id + ":7947",
		Keys:     keys,
		OnChange: log.add,
		Logger:   edgetest.Logger(),
	}
	cfg.SetLoopbackTimings()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	return m, log
}

// sees explains what m's view lacks to hold want (ID → state), or "".
func mlSees(m *Memberlist, want map[ring.NodeID]ring.MemberState) string {
	got := map[ring.NodeID]ring.MemberState{}
	for _, mem := range m.Members() {
		got[mem.ID] = mem.State
	}
	for id, s := range want {
		if got[id] != s {
			return fmt.Sprintf("%s sees %v, want %s %v", m.LocalID(), got, id, s)
		}
	}
	return ""
}

func mlAllAlive(ids ...string) map[ring.NodeID]ring.MemberState {
	out := map[ring.NodeID]ring.MemberState{}
	for _, id := range ids {
		out[ring.NodeID(id)] = ring.MemberAlive
	}
	return out
}

// TestMemberlistJoinSeesMeta: three members with a shared key join through
// one seed and see each other alive, with the addresses each published.
func TestMemberlistJoinSeesMeta(t *testing.T) {
	key := edgetest.Key(1)
	m1, log1 := newTestMemberlist(t, "n1", key)
	m2, _ := newTestMemberlist(t, "n2", key)
	m3, _ := newTestMemberlist(t, "n3", key)
	for _, m := range []*Memberlist{m2, m3} {
		if n, err := m.Join([]string{m1.GossipAddr()}); err != nil || n != 1 {
			t.Fatalf("%s join: %d, %v", m.LocalID(), n, err)
		}
	}
	for _, m := range []*Memberlist{m1, m2, m3} {
		edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m, mlAllAlive("n1", "n2", "n3")) })
	}
	gossipAddrs := map[ring.NodeID]string{"n1": m1.GossipAddr(), "n2": m2.GossipAddr(), "n3": m3.GossipAddr()}
	for _, m := range []*Memberlist{m1, m2, m3} {
		members := m.Members()
		if len(members) != 3 || !slices.IsSortedFunc(members, func(a, b ring.Member) int { return strings.Compare(string(a.ID), string(b.ID)) }) {
			t.Fatalf("%s: members %+v", m.LocalID(), members)
		}
		for _, mem := range members {
			id := string(mem.ID)
			want := ring.Member{ID: mem.ID, GossipAddr: gossipAddrs[mem.ID], RPCAddr: "rpc-" + id + ":7000",
				HTTPAddr: "http-" + id + ":8080", RaftAddr: "raft-" + id + ":7947", State: ring.MemberAlive, Since: mem.Since}
			if mem != want || mem.Since == 0 {
				t.Errorf("%s sees %+v, want %+v", m.LocalID(), mem, want)
			}
		}
	}
	edgetest.Eventually(t, 2*time.Second, func() string {
		if !log1.saw("n1", ring.MemberAlive) || !log1.saw("n2", ring.MemberAlive) || !log1.saw("n3", ring.MemberAlive) {
			return "n1's OnChange did not deliver all three joins"
		}
		return ""
	})
}

// TestMemberlistWrongKeyCannotJoin: a member with another key, or none, is
// refused and never appears.
func TestMemberlistWrongKeyCannotJoin(t *testing.T) {
	m1, _ := newTestMemberlist(t, "n1", edgetest.Key(1))
	other, _ := newTestMemberlist(t, "other", edgetest.Key(2))
	plain, _ := newTestMemberlist(t, "plain")
	for _, m := range []*Memberlist{other, plain} {
		n, err := m.Join([]string{m1.GossipAddr()})
		if err == nil || n != 0 {
			t.Fatalf("%s joined with the wrong key: %d, %v", m.LocalID(), n, err)
		}
		if !strings.HasPrefix(err.Error(), "memberlist: ") {
			t.Errorf("error not prefixed: %v", err)
		}
	}
	if got := m1.Members(); len(got) != 1 || got[0].ID != "n1" {
		t.Fatalf("n1 sees %+v", got)
	}
}

// TestMemberlistLeaveAndDeath: a graceful leave is seen as Left, a crash as
// Dead; Leave after Shutdown fails instead of panicking.
func TestMemberlistLeaveAndDeath(t *testing.T) {
	key := edgetest.Key(1)
	m1, log1 := newTestMemberlist(t, "n1", key)
	m2, _ := newTestMemberlist(t, "n2", key)
	m3, _ := newTestMemberlist(t, "n3", key)
	for _, m := range []*Memberlist{m2, m3} {
		if _, err := m.Join([]string{m1.GossipAddr()}); err != nil {
			t.Fatal(err)
		}
	}
	edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m1, mlAllAlive("n1", "n2", "n3")) })

	if err := m3.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m3.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := m3.Leave(time.Second); !errors.Is(err, ErrMembershipClosed) {
		t.Fatalf("leave after shutdown: %v", err)
	}
	want := map[ring.NodeID]ring.MemberState{"n1": ring.MemberAlive, "n2": ring.MemberAlive, "n3": ring.MemberLeft}
	for _, m := range []*Memberlist{m1, m2} {
		edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m, want) })
	}
	edgetest.Eventually(t, time.Second, func() string {
		if !log1.saw("n3", ring.MemberLeft) {
			return "OnChange did not deliver n3's leave"
		}
		return ""
	})

	// n2 crashes: no leave message, so it is declared dead.
	if err := m2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	want["n2"] = ring.MemberDead
	edgetest.Eventually(t, 10*time.Second, func() string { return mlSees(m1, want) })
	if !log1.saw("n2", ring.MemberDead) {
		edgetest.Eventually(t, time.Second, func() string {
			if !log1.saw("n2", ring.MemberDead) {
				return "OnChange did not deliver n2's death"
			}
			return ""
		})
	}
}

// TestMemberlistKeyRotation: install a new key everywhere, make it primary
// everywhere, remove the old one; the cluster keeps working, new members
// need the new key and the old key no longer gets in.
func TestMemberlistKeyRotation(t *testing.T) {
	oldKey, newKey := edgetest.Key(1), edgetest.Key(2)
	m1, _ := newTestMemberlist(t, "n1", oldKey)
	m2, _ := newTestMemberlist(t, "n2", oldKey)
	if _, err := m2.Join([]string{m1.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m1, mlAllAlive("n1", "n2")) })

	both := []*Memberlist{m1, m2}
	for _, m := range both {
		if err := m.InstallKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range both {
		if err := m.UseKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range both {
		if err := m.RemoveKey(newKey); err == nil {
			t.Fatal("removing the primary key succeeded")
		}
		if err := m.RemoveKey(oldKey); err != nil {
			t.Fatal(err)
		}
		if got := m.Keys(); len(got) != 1 || !bytes.Equal(got[0], newKey) {
			t.Fatalf("%s keys after rotation: %x", m.LocalID(), got)
		}
	}

	m3, _ := newTestMemberlist(t, "n3", newKey)
	if _, err := m3.Join([]string{m1.GossipAddr()}); err != nil {
		t.Fatalf("joining with the new key: %v", err)
	}
	for _, m := range []*Memberlist{m1, m2, m3} {
		edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m, mlAllAlive("n1", "n2", "n3")) })
	}
	m4, _ := newTestMemberlist(t, "n4", oldKey)
	if _, err := m4.Join([]string{m2.GossipAddr()}); err == nil {
		t.Fatal("joined with the removed key")
	}

	if err := m1.InstallKey([]byte("short")); err == nil {
		t.Fatal("installed a short key")
	}
	plain, _ := newTestMemberlist(t, "plain")
	if err := plain.InstallKey(newKey); !errors.Is(err, ErrGossipPlaintext) {
		t.Fatalf("key op on a plaintext member: %v", err)
	}
}

func TestMemberlistConfigValidate(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, "node ID"},
		{"bad bind", func(c *Config) { c.BindAddr = "localhost" }, "not host:port"},
		{"named bind", func(c *Config) { c.BindAddr = "localhost:7946" }, "must be an IP"},
		{"advertise without port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "needs a port"},
		{"short key", func(c *Config) { c.Keys = [][]byte{edgetest.Key(1), []byte("0123456789abcdef")} }, "key 2 is 16 bytes"},
		{"long address", func(c *Config) { c.HTTPAddr = long }, "at most 128"},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = 2 * c.ProbeInterval }, "shorter than the probe interval"},
	} {
		cfg := Config{NodeID: "n1"}
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		tc.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "memberlist: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// TestMemberlistMetaRoundTrip: the metadata encoding round-trips, stays
// within memberlist's limit, and tolerates absent fields.
func TestMemberlistMetaRoundTrip(t *testing.T) {
	max := strings.Repeat("a", maxMetaAddr)
	for _, m := range []memberMeta{{}, {RPC: "10.0.0.1:7000"}, {RPC: max, HTTP: max, Raft: max}} {
		b, err := encodeMemberMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMemberMeta(b)
		if err != nil || got != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, got, err)
		}
	}
	if got, err := decodeMemberMeta(nil); err != nil || got != (memberMeta{}) {
		t.Fatalf("empty meta: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{{9}, {memberMetaV1}, {memberMetaV1, 0xc1}, append([]byte{memberMetaV1, 0x80}, 0)} {
		if _, err := decodeMemberMeta(bad); !errors.Is(err, ErrBadMeta) {
			t.Errorf("decode %x: %v", bad, err)
		}
	}
}

func FuzzMemberlistMeta(f *testing.F) {
	b, _ := encodeMemberMeta(memberMeta{RPC: "10.0.0.1:7000", HTTP: "10.0.0.1:8080", Raft: "10.0.0.1:7947"})
	f.Add(b)
	f.Add([]byte{memberMetaV1, 0x81, 0xa1, 'z', 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMemberMeta(b)
		if err != nil {
			return
		}
		if len(m.RPC) > maxMetaAddr || len(m.HTTP) > maxMetaAddr || len(m.Raft) > maxMetaAddr {
			return // decodes, but no node would have published it
		}
		again, err := encodeMemberMeta(m)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		if m2, err := decodeMemberMeta(again); err != nil || m2 != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, m2, err)
		}
	})
}
