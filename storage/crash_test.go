package storage

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/playhead/playhead/crdt"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized storage tests (0: from the clock)")

// testSeed returns the seed for a randomized test and logs how to replay it.
func testSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d; replay: go test ./storage -run '^%s$' -seed %d", seed, t.Name(), seed)
	return seed
}

// Crash test layout: writer g writes batches j = 0, 1, 2, … one after the
// other, each spanning three partitions:
//
//	partition 1: put cursor v<j> (position j), delete cursor v<j-3>
//	partition 2: put entry e<j> (position j)
//	partition 3: put the profile record, ClearedAt = j+1 (the last batch)
//
// A writer's next batch starts only after the previous one is durable, so
// after a crash the batches present are 0..L for some L, and the state is a
// function of L: cursors v<L-2>..v<L>, entries e<0>..e<L>, ClearedAt L+1.
// Any half-applied batch breaks that.
const crashKeep = 3

func crashBatch(g, j int) ([]Put, []Key) {
	acct, prof := "acct", fmt.Sprint("writer", g)
	v, e := fmt.Sprintf("v%06d", j), fmt.Sprintf("e%06d", j)
	puts := []Put{
		put(cursorKey(1, acct, prof, v), cursorRec(v, int64(j))),
		put(entryKey(2, acct, prof, e), entryRec(v, int64(j))),
		put(profileKey(3, acct, prof), profileRec(crdt.HLC(j+1))),
	}
	var dels []Key
	if j >= crashKeep {
		dels = append(dels, cursorKey(1, acct, prof, fmt.Sprintf("v%06d", j-crashKeep)))
	}
	return puts, dels
}

// TestPebbleCrash takes crash clones of a Pebble store on a crashable
// in-memory FS while writers run, reopens each, and checks that every Write
// acknowledged before the clone survived and that no Write is half-applied.
func TestPebbleCrash(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 0))
	fs := vfs.NewCrashableMem()
	// A small memtable makes flushes, WAL rotation and compactions happen
	// during the test.
	opts := Options{FS: fs, CacheSize: 1 << 20, MemTableSize: 256 << 10}
	db, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}

	const writers, crashes = 8, 12
	var acked [writers]atomic.Int64 // last acknowledged batch, -1: none
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range writers {
		acked[g].Store(-1)
		wg.Go(func() {
			for j := 0; !stop.Load(); j++ {
				if err := db.Write(crashBatch(g, j)); err != nil {
					t.Errorf("writer %d batch %d: %v", g, j, err)
					return
				}
				acked[g].Store(int64(j))
			}
		})
	}

	type crash struct {
		fs       *vfs.MemFS
		unsynced int // CrashCloneCfg.UnsyncedDataPercent
		acked    [writers]int64
	}
	var cs []crash
	for range crashes {
		time.Sleep(time.Duration(rng.IntN(6000)) * time.Microsecond)
		var c crash
		// Read the acknowledgements before cloning: each of them was
		// durable before the clone.
		for g := range acked {
			c.acked[g] = acked[g].Load()
		}
		c.unsynced = []int{0, 0, 10, 50, 100}[rng.IntN(5)]
		c.fs = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: c.unsynced, RNG: rng})
		cs = append(cs, c)
	}
	stop.Store(true)
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for i, c := range cs {
		opts.FS = c.fs
		db, err := Open("db", opts)
		if err != nil {
			t.Fatalf("crash %d (unsynced %d%%): reopen: %v", i, c.unsynced, err)
		}
		var last [writers]int64
		for g := range writers {
			last[g] = checkCrashedWriter(t, db, g, c.acked[g])
		}
		t.Logf("crash %d (unsynced %d%%): acknowledged %v, present %v", i, c.unsynced, c.acked, last)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCrashedWriter checks writer g's records after a crash and returns
// its last batch present.
func checkCrashedWriter(t *testing.T, s Store, g int, acked int64) int64 {
	t.Helper()
	acct, prof := "acct", fmt.Sprint("writer", g)
	last := int64(-1)
	if rec, ok := mustGet(t, s, profileKey(3, acct, prof)); ok {
		last = int64(rec.Profile.ClearedAt) - 1
		if rec != profileRec(crdt.HLC(last+1)) {
			t.Errorf("writer %d: profile record %+v was never written", g, rec)
		}
	}
	if last < acked {
		t.Errorf("writer %d: batch %d acknowledged, but only batches up to %d survived", g, acked, last)
	}

	var want []kv
	for j := max(0, last-crashKeep+1); j <= last; j++ {
		v := fmt.Sprintf("v%06d", j)
		want = append(want, kv{cursorKey(1, acct, prof, v), cursorRec(v, j)})
	}
	checkKVs(t, fmt.Sprintf("writer %d cursors (last batch %d)", g, last), scanProfile(t, s, 1, acct, prof, 0), want)

	want = nil
	for j := int64(0); j <= last; j++ {
		want = append(want, kv{entryKey(2, acct, prof, fmt.Sprintf("e%06d", j)), entryRec(fmt.Sprintf("v%06d", j), j)})
	}
	checkKVs(t, fmt.Sprintf("writer %d entries (last batch %d)", g, last), scanProfile(t, s, 2, acct, prof, 0), want)
	return last
}

func checkKVs(t *testing.T, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: record %d is %+v, want %+v", what, i, got[i], want[i])
			return
		}
	}
}
