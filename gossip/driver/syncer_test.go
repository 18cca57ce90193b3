package driver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// gatedStore is a store whose writes are visible at once and durable only
// when the test opens the gate (an AsyncWriter, as Pebble is).
type gatedStore struct {
	*storage.Mem
	gate   chan struct{}
	writes atomic.Int64
}

func (s *gatedStore) WriteNoWait(puts []storage.Put, deletes []storage.Key) (func() error, error) {
	if err := s.Mem.Write(puts, deletes); err != nil {
		return nil, err
	}
	s.writes.Add(1)
	return func() error { <-s.gate; return nil }, nil
}

// captureTransport records the messages the driver sends.
type captureTransport struct {
	mu   sync.Mutex
	msgs []gossip.Msg
}

func (t *captureTransport) Send(to ring.NodeID, addr string, frame []byte) error {
	msgs, err := gossip.DecodeFrame(frame)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.msgs = append(t.msgs, msgs...)
	t.mu.Unlock()
	return nil
}

func (t *captureTransport) Close() error { return nil }

func (t *captureTransport) find(typ gossip.MsgType) (gossip.Msg, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.msgs {
		if m.Type == typ {
			return m, true
		}
	}
	return gossip.Msg{}, false
}

type wallClock struct{}

func (wallClock) NowMs() int64 { return time.Now().UnixMilli() }

// TestSyncPipelining: the coordinator replicates a write before its own
// sync, and answers the device only once the write is durable here and
// acknowledged by the replica — not when the replica's ack arrives while
// the local sync is still pending.
func TestSyncPipelining(t *testing.T) {
	store := &gatedStore{Mem: storage.NewMem(), gate: make(chan struct{})}
	tr := &captureTransport{}
	d, err := New(Config{Core: gossip.CoreConfig{Self: "n1", Local: gossip.LocalOptions{Partitions: 8}},
		Store: store, Clock: wallClock{}, AddrOf: func(id ring.NodeID) string { return string(id) + ":1" }})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(tr)
	defer func() {
		select {
		case <-store.gate:
		default:
			close(store.gate)
		}
		d.Close()
	}()
	table := ring.NewTable(8, 3, []ring.NodeID{"n1", "n2"})
	d.SetTable(table)
	// A profile n1 coordinates (first in its preference list).
	var ref gossip.Ref
	for i := 0; ; i++ {
		ref = gossip.Ref{Account: "a", Profile: fmt.Sprint("p", i)}
		if table.OwnersOf(ring.PartitionOf(ref.Account, ref.Profile, 8))[0] == "n1" {
			break
		}
	}
	type answer struct {
		res []gossip.WriteResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := d.Put(context.Background(), ref, []crdt.Update{{Video: "v", Device: "d", Session: "s", PositionMs: 1, DurationMs: 100_000, State: crdt.StatePlaying}})
		done <- answer{res, err}
	}()
	var rep gossip.Msg
	for deadline := time.Now().Add(10 * time.Second); ; {
		var ok bool
		if rep, ok = tr.find(gossip.MsgReplicate); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no MsgReplicate to the replica while the coordinator's sync is pending (store writes: %d)", store.writes.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// The replica acknowledges only once the records are durable there.
	replicaStore := &gatedStore{Mem: storage.NewMem(), gate: make(chan struct{})}
	replicaTr := &captureTransport{}
	replica, err := New(Config{Core: gossip.CoreConfig{Self: "n2", Local: gossip.LocalOptions{Partitions: 8}},
		Store: replicaStore, Clock: wallClock{}, AddrOf: func(id ring.NodeID) string { return string(id) + ":1" }})
	if err != nil {
		t.Fatal(err)
	}
	replica.Start(replicaTr)
	defer func() {
		select {
		case <-replicaStore.gate:
		default:
			close(replicaStore.gate)
		}
		replica.Close()
	}()
	replica.SetTable(table)
	frame, err := gossip.EncodeFrame([]gossip.Msg{rep})
	if err != nil {
		t.Fatal(err)
	}
	replica.Deliver("n1", frame)
	for deadline := time.Now().Add(10 * time.Second); replicaStore.writes.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not apply the records")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if m, ok := replicaTr.find(gossip.MsgAck); ok {
		t.Fatalf("the replica acknowledged %d before its sync", m.ReqID)
	}
	close(replicaStore.gate)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if m, ok := replicaTr.find(gossip.MsgAck); ok && m.ReqID == rep.ReqID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never acknowledged after its sync")
		}
	}

	// The replica's ack reaches the coordinator, whose own batch is still
	// not durable: the device must not be answered.
	ack, err := gossip.EncodeFrame([]gossip.Msg{{Type: gossip.MsgAck, ReqID: rep.ReqID}})
	if err != nil {
		t.Fatal(err)
	}
	d.Deliver("n2", ack)
	select {
	case a := <-done:
		t.Fatalf("answered before the coordinator's sync: %+v %v", a.res, a.err)
	case <-time.After(200 * time.Millisecond):
	}
	close(store.gate)
	select {
	case a := <-done:
		if a.err != nil || len(a.res) != 1 || !a.res[0].Applied {
			t.Fatalf("after the sync: %+v %v", a.res, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the sync and the replica's ack")
	}
}

// TestSyncFailureFailsAnswers: a write whose sync fails is answered with
// ErrUnavailable, never as a success.
func TestSyncFailureFailsAnswers(t *testing.T) {
	store := &failingSyncStore{Mem: storage.NewMem()}
	d, err := New(Config{Core: gossip.CoreConfig{Self: "n1", Local: gossip.LocalOptions{Partitions: 8}},
		Store: store, Clock: wallClock{}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(&captureTransport{})
	defer d.Close()
	d.SetTable(ring.NewTable(8, 3, []ring.NodeID{"n1"}))
	_, err = d.Put(context.Background(), gossip.Ref{Account: "a", Profile: "p"}, []crdt.Update{{Video: "v", Device: "d", Session: "s", PositionMs: 1, DurationMs: 100_000, State: crdt.StatePlaying}})
	if err == nil {
		t.Fatal("a write whose sync failed was acknowledged")
	}
}

type failingSyncStore struct{ *storage.Mem }

func (s *failingSyncStore) WriteNoWait(puts []storage.Put, deletes []storage.Key) (func() error, error) {
	if err := s.Mem.Write(puts, deletes); err != nil {
		return nil, err
	}
	return func() error { return fmt.Errorf("fdatasync: input/output error") }, nil
}
