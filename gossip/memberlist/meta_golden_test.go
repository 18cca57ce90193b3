package memberlist

import (
	"testing"

	"github.com/playhead/playhead/gossip/internal/goldentest"
)

// TestGoldenNodeMeta pins the node metadata a member publishes through
// memberlist (Delegate.NodeMeta): every member of the cluster, whatever its
// release, decodes it to find the others' replication, HTTP and raft
// addresses and whether they are leaving. The pinned bytes must decode to
// the same metadata.
func TestGoldenNodeMeta(t *testing.T) {
	cases := []struct {
		name string
		m    memberMeta
	}{
		{"meta-full", memberMeta{RPC: "10.0.0.7:7948", HTTP: "10.0.0.7:8080", Raft: "10.0.0.7:7947", Leaving: true}},
		{"meta-addresses", memberMeta{RPC: "node-a.internal:7948", HTTP: "[2001:db8::1]:8080", Raft: "node-a.internal:7947"}},
		{"meta-rpc-only", memberMeta{RPC: "127.0.0.1:7948"}},
		{"meta-empty", memberMeta{}},
	}
	var gc []goldentest.Case
	for _, c := range cases {
		b, err := encodeMemberMeta(c.m)
		if err != nil {
			t.Fatal(err)
		}
		gc = append(gc, goldentest.Case{Name: c.name, Bytes: b})
	}
	want := goldentest.Check(t, "testdata/meta.golden",
		"memberlist node metadata (Delegate.NodeMeta): format byte 0x01, then memberMeta\n"+
			"as a msgpack map under one-letter keys r (replication address), h (HTTP\n"+
			"address), f (raft address), l (leaving), empty ones left out.", gc)
	for _, c := range cases {
		if w, ok := want[c.name]; ok {
			if got, err := decodeMemberMeta(w); err != nil || got != c.m {
				t.Errorf("%s: pinned bytes decode to %+v, %v; want %+v", c.name, got, err, c.m)
			}
		}
	}
	if memberMetaV1 != 1 {
		t.Errorf("node metadata format byte is %d, was 1: a new format needs a new byte and the old one still decoded", memberMetaV1)
	}
}
