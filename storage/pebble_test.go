package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestPebbleReopen(t *testing.T) {
	fs := vfs.NewCrashableMem()
	opts := Options{FS: fs, CacheSize: 1 << 20, MemTableSize: 1 << 20}
	p, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := cursorKey(1, "a", "p", "v1"), cursorKey(1, "a", "p", "v2")
	mustWrite(t, p, []Put{put(k1, cursorRec("v1", 1)), put(k2, cursorRec("v2", 2))}, nil)
	mustWrite(t, p, nil, []Key{k2})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, ok := mustGet(t, p, k1); !ok || got != cursorRec("v1", 1) {
		t.Errorf("after reopen: %+v, %v", got, ok)
	}
	if _, ok := mustGet(t, p, k2); ok {
		t.Error("deleted record back after reopen")
	}
}

// TestPebbleOnSync checks that OnSync sees the WAL syncs and that their
// batches add up to the number of Writes.
func TestPebbleOnSync(t *testing.T) {
	var mu sync.Mutex
	var syncs, batches int
	p, err := Open("db", Options{
		FS: vfs.NewCrashableMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20,
		OnSync: func(d time.Duration, n int) {
			if d < 0 || n < 0 {
				t.Errorf("OnSync(%v, %d)", d, n)
			}
			mu.Lock()
			syncs++
			batches += n
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const writers, writes = 8, 20
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range writes {
				v := fmt.Sprintf("v%d-%d", g, i)
				if err := p.Write([]Put{put(cursorKey(1, "a", "p", v), cursorRec(v, 1))}, nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if batches != writers*writes || syncs == 0 || syncs > writers*writes+2 {
		t.Errorf("OnSync saw %d syncs carrying %d batches; want some syncs carrying %d", syncs, batches, writers*writes)
	}
	t.Logf("%d writes, %d WAL syncs", writers*writes, syncs)
}

func TestPebbleFlushCompactMetrics(t *testing.T) {
	p := openMemPebble(t)
	var puts []Put
	for i := range 100 {
		v := fmt.Sprint("v", i)
		puts = append(puts, put(cursorKey(uint16(i%4), "a", "p", v), cursorRec(v, int64(i))))
	}
	mustWrite(t, p, puts, nil)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := p.Metrics(); !strings.Contains(m, "WAL") {
		t.Errorf("Metrics() = %q", m)
	}
	if got := len(scanPartition(t, p, 1)); got != 25 {
		t.Errorf("after compaction partition 1 has %d records, want 25", got)
	}
	p.Close()
	if err := p.Flush(); err != ErrClosed {
		t.Errorf("Flush after Close = %v", err)
	}
	if p.Metrics() != "" {
		t.Error("Metrics after Close not empty")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string // substring of the error; "" for none
	}{
		{Options{}, ""},
		{Options{CacheSize: -1}, "CacheSize"},
		{Options{MemTableSize: 4 << 30}, "MemTableSize"},
	} {
		err := tc.opts.EnsureDefaults().Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.opts, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "storage: ")):
			t.Errorf("%+v: error %v, want one about %s", tc.opts, err, tc.want)
		}
	}
	if _, err := Open("db", Options{FS: vfs.NewMem(), CacheSize: -5}); err == nil {
		t.Error("Open accepted invalid options")
	}
	var o Options
	o.EnsureDefaults()
	if o.FS != vfs.Default || o.CacheSize != DefaultCacheSize || o.MemTableSize != DefaultMemTableSize {
		t.Errorf("defaults: %+v", o)
	}
}
