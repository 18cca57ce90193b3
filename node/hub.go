package node

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/playhead/playhead/gossip"
)

// Reasons a subscription ends, other than its own Close.
var (
	// ErrSlowSubscriber: the subscriber's buffer was full when an event
	// came; it was dropped so that writers never wait. The device reconnects
	// with after= and misses nothing.
	ErrSlowSubscriber = errors.New("node: push subscriber too slow; reconnect with after=")
	// ErrShuttingDown: the node is shutting down.
	ErrShuttingDown = errors.New("node: shutting down")
)

// Hub fans merged changes out to the push subscribers of each profile
// (WebSocket, SSE and long-poll requests). It implements gossip.Notifier:
// pass it to the coordinator.
//
// Isolation: a subscription is for one exact (account, profile), and an
// event goes only to the subscriptions of its Ref.
//
// Notify never blocks: each subscriber has a bounded buffer, and a
// subscriber whose buffer is full is dropped (Done closes, Err is
// ErrSlowSubscriber). Events of one profile reach each subscriber in the
// order Notify received them, which is commit order.
//
// Hub is safe for concurrent use.
type Hub struct {
	buffer int

	mu     sync.RWMutex
	subs   map[gossip.Ref]map[*Subscription]struct{} // guarded by mu
	closed bool                                      // guarded by mu

	active  atomic.Int64
	dropped atomic.Uint64

	onFirst func(gossip.Ref) // set before use; see SetOnFirstSubscriber
	onLast  func(gossip.Ref) // set before use; see SetOnLastSubscriber
}

var _ gossip.Notifier = (*Hub)(nil)

// NewHub returns a hub whose subscribers each buffer up to buffer events
// (DefaultPushBuffer if buffer < 1).
func NewHub(buffer int) *Hub {
	if buffer < 1 {
		buffer = DefaultPushBuffer
	}
	return &Hub{buffer: buffer, subs: map[gossip.Ref]map[*Subscription]struct{}{}}
}

// Subscription receives the events of one profile.
type Subscription struct {
	hub  *Hub
	ref  gossip.Ref
	ch   chan *gossip.Event
	done chan struct{}

	once sync.Once
	err  atomic.Pointer[error] // why done closed; set before closing done
}

// Subscribe registers a subscriber of ref. It fails with ErrShuttingDown
// once the hub is closed. The caller must Close the subscription.
func (h *Hub) Subscribe(ref gossip.Ref) (*Subscription, error) {
	s := &Subscription{hub: h, ref: ref, ch: make(chan *gossip.Event, h.buffer), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShuttingDown
	}
	set := h.subs[ref]
	first := set == nil
	if first {
		set = map[*Subscription]struct{}{}
		h.subs[ref] = set
	}
	set[s] = struct{}{}
	h.active.Add(1)
	if first && h.onFirst != nil {
		h.onFirst(ref)
	}
	return s, nil
}

// SetOnFirstSubscriber sets a function called (under the hub's lock, so it
// must not block) when a profile gets its first subscriber. A cluster uses
// it to register push interest with the profile's owners at once (the core
// then renews it). Call it before the hub is in use.
func (h *Hub) SetOnFirstSubscriber(f func(gossip.Ref)) { h.onFirst = f }

// SetOnLastSubscriber sets a function called (under the hub's lock, so it
// must not block) when a profile's last subscriber leaves. A cluster uses
// it to stop renewing the profile's push interest. Call it before the hub
// is in use.
func (h *Hub) SetOnLastSubscriber(f func(gossip.Ref)) { h.onLast = f }

// Refs returns the profiles that have subscribers now.
func (h *Hub) Refs() []gossip.Ref {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]gossip.Ref, 0, len(h.subs))
	for ref := range h.subs {
		out = append(out, ref)
	}
	return out
}

// Events delivers the subscription's events. Events are shared between
// subscribers: read only.
func (s *Subscription) Events() <-chan *gossip.Event { return s.ch }

// Done is closed when the hub ends the subscription (Err says why) or when
// it is closed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: ErrSlowSubscriber,
// ErrShuttingDown, or nil if it has not ended or was closed by its owner.
func (s *Subscription) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close unregisters the subscription. Idempotent.
func (s *Subscription) Close() {
	s.end(nil)
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if set, ok := h.subs[s.ref]; ok {
		if _, ok := set[s]; ok {
			delete(set, s)
			h.active.Add(-1)
			if len(set) == 0 {
				delete(h.subs, s.ref)
				if h.onLast != nil {
					h.onLast(s.ref)
				}
			}
		}
	}
}

// end closes done once, recording err.
func (s *Subscription) end(err error) bool {
	ended := false
	s.once.Do(func() {
		if err != nil {
			s.err.Store(&err)
		}
		close(s.done)
		ended = true
	})
	return ended
}

func (s *Subscription) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Notify implements gossip.Notifier: it hands each event to the
// subscribers of its profile without blocking.
func (h *Hub) Notify(events []gossip.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for i := range events {
		set := h.subs[events[i].Ref]
		if len(set) == 0 {
			continue
		}
		ev := new(gossip.Event)
		*ev = events[i]
		for s := range set {
			if s.ended() {
				continue
			}
			select {
			case s.ch <- ev:
			default:
				if s.end(ErrSlowSubscriber) {
					h.dropped.Add(1)
				}
			}
		}
	}
}

// Close ends every subscription with ErrShuttingDown and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, set := range h.subs {
		for s := range set {
			s.end(ErrShuttingDown)
		}
	}
}

// Active returns the number of registered subscriptions.
func (h *Hub) Active() int64 { return h.active.Load() }

// Dropped returns how many subscribers were dropped for being slow.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }
