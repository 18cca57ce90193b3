package driver

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Sync pipelining, as etcd raft's asynchronous storage writes: the loop
// applies a cycle's batch to the store (visible to the Core's next reads)
// and goes on with the next cycle while the WAL sync runs; the syncer
// goroutine waits for each cycle's sync in cycle order and only then
// releases what the cycle's outputs claim is durable. The Core itself is
// unchanged: it believes its Flush durable, and the driver makes that true
// before anyone outside the process can rely on it.
//
// Why it is safe: Pebble syncs its one WAL in apply order, and the syncer
// handles cycles in order, so when it releases cycle N every batch applied
// in cycles up to N is durable. Everything the Core answers or acknowledges
// — a device's completion, MsgResult to an origin, MsgAck to a
// coordinator — and every push event is released by the syncer, so none is
// seen before the records it reports on are durable here; the
// coordinator's own ack (its Flush) counts towards W only through a
// completion released the same way. Before the sync go only the messages
// that claim nothing (sendBeforeSync): a coordinator's MsgReplicate — so
// the replica's sync overlaps the coordinator's instead of following it —
// and forwarded requests.
//
// A failed sync is sticky (Pebble cannot continue after one): from then on
// the syncer fails every completion, drops every held message and event,
// and logs; the node must be restarted.

// syncQueue bounds the cycles waiting for their sync; a full queue stops
// the loop (back-pressure on a slow disk).
const syncQueue = 1024

// heldCycle is what one cycle released that must wait for its batch's sync.
type heldCycle struct {
	wait   func() error // nil: the cycle wrote nothing (it still waits its turn)
	msgs   []gossip.Envelope
	events []gossip.Event
	done   []gossip.Completion
}

// sendBeforeSync reports whether a message may leave before the cycle's
// batch is durable: it reports no outcome and acknowledges nothing.
func sendBeforeSync(t gossip.MsgType) bool {
	switch t {
	case gossip.MsgReplicate, gossip.MsgForward:
		return true
	}
	return false
}

// pipelinedStore is the Core's store under the driver: Write applies and
// keeps the sync's wait for the cycle (storage.WriteNoWait).
type pipelinedStore struct {
	storage.Store
	wait func() error // loop goroutine only
}

// Write implements storage.Store, without waiting for durability: the
// driver waits (take).
func (s *pipelinedStore) Write(puts []storage.Put, deletes []storage.Key) error {
	wait, err := storage.WriteNoWait(s.Store, puts, deletes)
	if err != nil {
		return err
	}
	if prev := s.wait; prev != nil {
		s.wait = func() error { return errors.Join(prev(), wait()) }
	} else {
		s.wait = wait
	}
	return nil
}

// take returns the waits of the Writes since the last take (nil if none).
func (s *pipelinedStore) take() func() error {
	w := s.wait
	s.wait = nil
	return w
}

// syncer releases held cycles in order, each after its sync.
func (c *Driver) syncer() {
	defer c.syncWG.Done()
	for h := range c.syncq {
		if h.wait != nil {
			if err := h.wait(); err != nil && c.syncErr == nil {
				c.syncErr = err
				c.cfg.Logger.Error("syncing the store failed; every later answer fails until the node restarts", "err", err)
			}
		}
		c.release(h)
	}
}

// release carries out a held cycle: or fails it, after a sync failure.
func (c *Driver) release(h heldCycle) {
	if c.syncErr != nil {
		for i := range h.done {
			h.done[i].Res = gossip.Result{}
			h.done[i].Err = fmt.Errorf("%w: %v", gossip.ErrUnavailable, c.syncErr)
		}
		h.msgs, h.events = nil, nil
	}
	if len(h.msgs) > 0 {
		byPeer := map[ring.NodeID][]gossip.Msg{}
		for _, e := range h.msgs {
			byPeer[e.To] = append(byPeer[e.To], e.Msg)
		}
		for _, to := range slices.Sorted(maps.Keys(byPeer)) {
			c.sendAll(to, byPeer[to])
		}
	}
	if len(h.events) > 0 {
		c.cfg.Notifier.Notify(h.events)
	}
	if len(h.done) > 0 {
		c.mu.Lock()
		for _, d := range h.done {
			if ch, ok := c.waiting[d.ID]; ok {
				delete(c.waiting, d.ID)
				ch <- d
			}
		}
		c.mu.Unlock()
	}
}
