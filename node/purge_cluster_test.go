package node

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// TestClusterDeleteAllScrubsEveryReplica: in cluster mode the retention
// sweep runs on every replica (a step of the replication core's tick,
// paced by SweepInterval and SweepBudget): after "delete all my history"
// no node's store holds the position, device or title, and each node's
// playhead_sweep_records_total counts what it erased.
func TestClusterDeleteAllScrubsEveryReplica(t *testing.T) {
	tc := startTestClusterWith(t, 3, func(c *Config) {
		c.SweepInterval, c.SweepBudget = 20*time.Millisecond, 16 // a pass over 64 partitions in 80 ms
	})
	const title = "A Very Secret Title"
	for i, video := range []string{"film", "series-e1"} {
		if st, body := tc.req(i, "PUT", "/v1/profiles/kids/positions/"+video, upd(754_000, hour, "living-room-tv", "s1", "title", title)); st != 200 {
			t.Fatalf("write: %d %s", st, body)
		}
	}
	holding := func() []string {
		var out []string
		for i, nd := range tc.nodes {
			for p := range 64 {
				nd.store.ScanPartition(uint16(p), func(k storage.Key, r crdt.Record) error {
					if k.Profile != "kids" {
						return nil
					}
					c, e := r.Cursor, r.Entry
					if c.PositionMs != 0 || c.Device != "" || c.Title.Value != "" || e.PositionMs != 0 || e.Device != "" || e.Title.Value != "" {
						out = append(out, "n"+strconv.Itoa(i+1)+" "+k.Kind.String()+" "+k.ID)
					}
					return nil
				})
			}
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(holding()) < 2*2*3 && time.Now().Before(deadline) { // cursor and entry of each video on 3 nodes
		time.Sleep(20 * time.Millisecond)
	}
	if got := holding(); len(got) != 12 {
		t.Fatalf("before the delete the replicas hold %d records with content, want 12: %v", len(got), got)
	}
	if st, body := tc.req(2, "DELETE", "/v1/profiles/kids/history", nil); st != 204 {
		t.Fatalf("delete all: %d %s", st, body)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(holding()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := holding(); len(got) > 0 {
		t.Fatalf("5 s after delete all, stores still hold deleted content: %v", got)
	}
	re := regexp.MustCompile(`(?m)^playhead_sweep_records_total (\S+)$`)
	for i := range tc.nodes {
		_, body := tc.req(i, "GET", "/metrics", nil)
		m := re.FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("node %d: no playhead_sweep_records_total in /metrics: %s", i+1, firstLines(string(body), 5))
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v < 1 {
			t.Fatalf("node %d: playhead_sweep_records_total = %v after erasing deleted content", i+1, v)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
