package clustersim

import "testing"

// TestPebbleRunsDeterministic: runs on Pebble (storage.Pebble over
// vfs.NewCrashableMem, crashes by CrashClone) pass every checker and give
// the same trace twice, whatever Pebble's goroutines do.
func TestPebbleRunsDeterministic(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		o := ciRun(seed)
		o.Store = "pebble"
		a, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		if a.Failed() {
			t.Errorf("seed %d on %s: %v", seed, a.Store, a.Violations)
		}
		b, _ := Run(o)
		if a.TraceHash != b.TraceHash {
			t.Errorf("seed %d on %s: trace %s then %s", seed, a.Store, a.TraceHash, b.TraceHash)
		}
		t.Logf("seed %d on %s: %d writes, %d crashes, %s", seed, a.Store, a.Writes, a.Crashes, a.TraceHash[:12])
	}
}
