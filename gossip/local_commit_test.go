package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// slowSyncStore is a storage.AsyncWriter over Mem whose writes become
// visible at once and "durable" after a random delay (or when a test
// releases them), so commits finish out of apply order.
type slowSyncStore struct {
	*storage.Mem
	mu      sync.Mutex
	rng     *rand.Rand
	gate    chan struct{} // if set, every wait blocks until it is closed
	failing bool          // waits fail
}

func (s *slowSyncStore) WriteNoWait(puts []storage.Put, dels []storage.Key) (func() error, error) {
	if err := s.Mem.Write(puts, dels); err != nil {
		return nil, err
	}
	s.mu.Lock()
	d := time.Duration(s.rng.IntN(300)) * time.Microsecond
	gate, failing := s.gate, s.failing
	s.mu.Unlock()
	return func() error {
		if gate != nil {
			<-gate
		}
		time.Sleep(d)
		if failing {
			return errors.New("sync failed")
		}
		return nil
	}, nil
}

// TestLocalEventsInApplyOrder: with writes that become durable out of order,
// each profile's events are still delivered in the order the writes were
// applied (updated_hlc increasing), and every applied write's event is
// delivered exactly once.
func TestLocalEventsInApplyOrder(t *testing.T) {
	store := &slowSyncStore{Mem: storage.NewMem(), rng: rand.New(rand.NewPCG(1, 2))}
	clock := &testClock{}
	clock.ms.Store(t0)
	rec := &recorder{}
	l, err := NewLocal(store, clock, rec, LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := Ref{"acct", "prof"}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	applied := make([]int, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				u := upd(fmt.Sprintf("v%d", w%3), fmt.Sprintf("dev%d", w), fmt.Sprintf("s%d", w), int64(i)*1000)
				res, err := l.Put(context.Background(), ref, []crdt.Update{u})
				if err != nil {
					t.Error(err)
					return
				}
				if res[0].Applied {
					applied[w]++
				}
			}
		}(w)
	}
	wg.Wait()
	events := rec.take()
	var last crdt.HLC
	n := 0
	for _, ev := range events {
		if ev.Type != EventCursor {
			continue
		}
		n++
		if ev.Cursor.UpdatedHLC <= last {
			t.Fatalf("event %d delivered out of apply order: updated_hlc %v after %v", n, ev.Cursor.UpdatedHLC, last)
		}
		last = ev.Cursor.UpdatedHLC
	}
	want := 0
	for _, a := range applied {
		want += a
	}
	if n != want {
		t.Fatalf("%d cursor events delivered for %d applied writes", n, want)
	}
}

// TestLocalAcksOnlyWhenDurable: Put does not return before its write is
// durable, though the profile's lock is free meanwhile (a second writer
// merges onto the applied state); a failed sync fails the Put with
// ErrUnavailable and delivers no event.
func TestLocalAcksOnlyWhenDurable(t *testing.T) {
	gate := make(chan struct{})
	store := &slowSyncStore{Mem: storage.NewMem(), rng: rand.New(rand.NewPCG(1, 2)), gate: gate}
	clock := &testClock{}
	clock.ms.Store(t0)
	rec := &recorder{}
	l, err := NewLocal(store, clock, rec, LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := Ref{"acct", "prof"}
	done := make(chan error, 2)
	go func() {
		_, err := l.Put(context.Background(), ref, []crdt.Update{upd("v", "tv", "s1", 1000)})
		done <- err
	}()
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, err := l.Put(context.Background(), ref, []crdt.Update{upd("v", "tv", "s1", 2000)})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a Put returned (%v) before its write was durable", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Both writes are visible (applied) while neither is durable: the
	// stripe was released after the apply.
	if c, ok, _ := l.Cursor(context.Background(), ref, "v"); !ok || c.PositionMs != 2000 {
		t.Fatalf("second write not applied while the first waited for its sync: %+v %v", c, ok)
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("events delivered before durability: %+v", evs)
	}
	close(gate)
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if evs := rec.take(); len(evs) != 2 || evs[0].Cursor.PositionMs != 1000 || evs[1].Cursor.PositionMs != 2000 {
		t.Fatalf("events after durability: %+v", evs)
	}

	store.mu.Lock()
	store.gate, store.failing = nil, true
	store.mu.Unlock()
	_, err = l.Put(context.Background(), ref, []crdt.Update{upd("v", "tv", "s1", 3000)})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a failed sync answered %v, want ErrUnavailable", err)
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("a write whose sync failed delivered events: %+v", evs)
	}
	// The next write's events still flow (the failed one passed its turn).
	store.mu.Lock()
	store.failing = false
	store.mu.Unlock()
	if _, err := l.Put(context.Background(), ref, []crdt.Update{upd("v", "tv", "s1", 4000)}); err != nil {
		t.Fatal(err)
	}
	if evs := rec.take(); len(evs) != 1 || evs[0].Cursor.PositionMs != 4000 {
		t.Fatalf("events after a failed sync: %+v", evs)
	}
}
