package driver

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// chanTransport connects drivers in one process: a frame is handed to the
// receiver's Deliver by a goroutine per link (the TCP transport also
// queues per peer and never blocks the sender).
type chanTransport struct {
	links map[ring.NodeID]chan []byte
}

func (t *chanTransport) Send(to ring.NodeID, addr string, frame []byte) error {
	select {
	case t.links[to] <- frame:
	default: // full: dropped, as the TCP transport drops its oldest
	}
	return nil
}

func (t *chanTransport) Close() error { return nil }

// BenchmarkDriverClusterPut measures writes through three drivers (RF 3,
// W 2) over Pebble stores on disk, every write synced on two owners before
// it is answered, 32 writers per core spread over the three coordinators:
// the cluster write path without HTTP, raft or sockets. writes/s is the
// figure; compare it with -bench DriverSingle (the same writers, one node).
//
//	go test ./gossip/driver -run '^$' -bench Driver -benchtime 5s
func BenchmarkDriverClusterPut(b *testing.B) { benchDrivers(b, 3) }

// BenchmarkDriverSinglePut is BenchmarkDriverClusterPut on one node.
func BenchmarkDriverSinglePut(b *testing.B) { benchDrivers(b, 1) }

func benchDrivers(b *testing.B, nodes int) {
	ids := make([]ring.NodeID, nodes)
	for i := range ids {
		ids[i] = ring.NodeID(fmt.Sprint("n", i+1))
	}
	table := ring.NewTable(64, 3, ids)
	drivers := map[ring.NodeID]*Driver{}
	for _, id := range ids {
		st, err := storage.Open(b.TempDir(), storage.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		d, err := New(Config{Core: gossip.CoreConfig{Self: id, Local: gossip.LocalOptions{Partitions: 64}},
			Store: st, Clock: wallClock{}, AddrOf: func(to ring.NodeID) string { return string(to) }})
		if err != nil {
			b.Fatal(err)
		}
		drivers[id] = d
	}
	// One link per (sender, receiver) pair.
	for _, from := range ids {
		tr := &chanTransport{links: map[ring.NodeID]chan []byte{}}
		for _, to := range ids {
			if to == from {
				continue
			}
			ch := make(chan []byte, 1<<16)
			go func() {
				for f := range ch {
					drivers[to].Deliver(from, f)
				}
			}()
			defer close(ch)
			tr.links[to] = ch
		}
		drivers[from].Start(tr)
		defer drivers[from].Close()
		drivers[from].SetTable(table)
	}
	var writers atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	b.RunParallel(func(pb *testing.PB) {
		w := writers.Add(1)
		d := drivers[ids[int(w)%len(ids)]]
		ref := gossip.Ref{Account: "acct", Profile: fmt.Sprint("p", w)}
		for i := int64(1); pb.Next(); i++ {
			_, err := d.Put(context.Background(), ref, []crdt.Update{{Video: "v", Device: "d", Session: "s",
				PositionMs: i, DurationMs: 100_000_000, State: crdt.StatePlaying}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
