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
// Notify never blocks: each subscriber has its own queue, and a subscriber
// that falls behind has its queue conflated (below) rather than growing it;
// only a subscriber whose conflated queue still holds more than the buffer
// is dropped (Done closes, Err is ErrSlowSubscriber).
//
// Conflation: a device needs only the newest cursor of each video, so a
// cursor event queued for a video is replaced by a newer cursor event of the
// same video, which takes the newer one's place at the tail; likewise a
// takeover event by a later takeover of the same video and superseded
// session (what the superseded session's devices need to know is that it
// was superseded, and by whom last). Cleared and hidden events are never
// dropped and are barriers: an event queued before one is never merged with
// one of its video queued after it (a cursor written after a delete comes
// after the delete; one from before never jumps past it). Hence what a
// subscriber receives is always a subsequence of what Notify was given, in
// Notify's order — commit order within a profile — missing only cursor and
// takeover events followed, with no barrier of their video in between, by
// one that supersedes them. The queue is bounded by the profile's videos and
// superseded sessions with something pending, plus the barriers pending.
//
// Hub is safe for concurrent use. Lock order: Hub.mu, then Subscription.mu.
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

// NewHub returns a hub whose subscribers each queue up to buffer events
// once conflated (DefaultPushBuffer if buffer < 1).
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
	omit string // SubscribeOptions.OmitDevice

	ready chan struct{} // capacity 1: rung when events are queued
	done  chan struct{}

	once sync.Once
	err  atomic.Pointer[error] // why done closed; set before closing done

	mu sync.Mutex
	// q is the queue, oldest first; a nil slot held an event conflated
	// away. Invariant: live is the number of non-nil slots.
	q    []*Pushed // guarded by mu
	live int       // guarded by mu
	// last is, per video, the slot of its queued cursor event with no
	// barrier of the video after it (nil until first needed); took the same
	// for takeover events, per video and superseded session.
	last map[string]int      // guarded by mu
	took map[takeoverKey]int // guarded by mu
}

// takeoverKey identifies what a takeover event tells: that a video's
// session was superseded.
type takeoverKey struct{ video, session string }

// Pushed is an event as the hub hands it out: one per Notify'd event,
// shared by every subscriber of its profile (read only), with its msgpack
// encoding made once for all of them (a profile's devices are pushed the
// same bytes).
type Pushed struct {
	gossip.Event
	mp atomic.Pointer[[]byte]
}

// encoded returns the event's encoding, made by enc on first use (enc must
// give every caller the same bytes).
func (p *Pushed) encoded(enc func(*gossip.Event) []byte) []byte {
	if b := p.mp.Load(); b != nil {
		return *b
	}
	b := enc(&p.Event)
	p.mp.Store(&b)
	return b
}

// SubscribeOptions are a subscriber's choices.
type SubscribeOptions struct {
	// OmitDevice, when set, leaves out the cursor events whose cursor was
	// written by that device: a device that holds the answers to its own
	// writes need not get them echoed back. A queued cursor event of the
	// same video older than the device's write is dropped too (the device
	// holds a newer cursor). Other events (cleared, takeover, hidden) are
	// always delivered.
	OmitDevice string
}

// Subscribe registers a subscriber of ref. It fails with ErrShuttingDown
// once the hub is closed. The caller must Close the subscription.
func (h *Hub) Subscribe(ref gossip.Ref) (*Subscription, error) {
	return h.SubscribeWith(ref, SubscribeOptions{})
}

// SubscribeWith is Subscribe with options.
func (h *Hub) SubscribeWith(ref gossip.Ref, opts SubscribeOptions) (*Subscription, error) {
	s := &Subscription{hub: h, ref: ref, omit: opts.OmitDevice, ready: make(chan struct{}, 1), done: make(chan struct{})}
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

// Ready receives a value when events are queued: then Take them. A value
// may come with nothing left to take (a Take after the ring took them).
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take appends the queued events to buf, oldest first, and empties the
// queue. Events are shared between subscribers: read only.
func (s *Subscription) Take(buf []*Pushed) []*Pushed {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.q {
		if ev != nil {
			buf = append(buf, ev)
		}
	}
	s.resetLocked()
	return buf
}

// Pending returns the number of events queued.
func (s *Subscription) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// resetLocked empties the queue, keeping its storage unless it grew large.
func (s *Subscription) resetLocked() {
	if cap(s.q) > 4*s.hub.buffer+64 {
		s.q = nil
	} else {
		clear(s.q)
		s.q = s.q[:0]
	}
	s.live = 0
	if len(s.last) > 0 {
		clear(s.last)
	}
	if len(s.took) > 0 {
		clear(s.took)
	}
}

// push queues ev, conflating it with a queued event it supersedes (see
// Hub). It returns false if the queue is over the hub's buffer.
func (s *Subscription) push(ev *Pushed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Type {
	case gossip.EventCursor:
		return s.pushCursorLocked(ev)
	case gossip.EventTakeover:
		k := takeoverKey{ev.Video, ev.Superseded.Version.Session}
		if i, ok := s.took[k]; ok {
			s.q[i] = nil
			s.live--
			delete(s.took, k)
		}
		if !s.appendLocked(ev) {
			return false
		}
		if s.took == nil {
			s.took = map[takeoverKey]int{}
		}
		s.took[k] = len(s.q) - 1
		return true
	}
	// A barrier (cleared, hidden): later events of its video (of every
	// video for a delete-all) queue behind it.
	if ev.Video == "" {
		clear(s.last)
		clear(s.took)
	} else {
		delete(s.last, ev.Video)
		for k := range s.took {
			if k.video == ev.Video {
				delete(s.took, k)
			}
		}
	}
	return s.appendLocked(ev)
}

// pushCursorLocked queues a cursor event in place of the video's queued
// one, unless that one is newer.
func (s *Subscription) pushCursorLocked(ev *Pushed) bool {
	i, queued := s.last[ev.Video]
	if queued && ev.Cursor.Version.Less(s.q[i].Cursor.Version) {
		return true // the queued one is newer: ev adds nothing
	}
	if queued {
		s.q[i] = nil
		s.live--
		delete(s.last, ev.Video)
	}
	if s.omit != "" && ev.Cursor.Device == s.omit {
		return true // the device's own write
	}
	if !s.appendLocked(ev) {
		return false
	}
	if s.last == nil {
		s.last = map[string]int{}
	}
	s.last[ev.Video] = len(s.q) - 1
	return true
}

// appendLocked adds ev at the tail and rings the bell; false if the queue
// would hold more than the buffer.
func (s *Subscription) appendLocked(ev *Pushed) bool {
	if s.live >= s.hub.buffer {
		return false
	}
	if len(s.q) >= 2*s.hub.buffer+16 {
		s.compactLocked()
	}
	s.q = append(s.q, ev)
	s.live++
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// compactLocked drops the conflated slots and renumbers last.
func (s *Subscription) compactLocked() {
	k := 0
	for _, ev := range s.q {
		if ev == nil {
			continue
		}
		switch ev.Type {
		case gossip.EventCursor:
			if i, ok := s.last[ev.Video]; ok && s.q[i] == ev {
				s.last[ev.Video] = k
			}
		case gossip.EventTakeover:
			tk := takeoverKey{ev.Video, ev.Superseded.Version.Session}
			if i, ok := s.took[tk]; ok && s.q[i] == ev {
				s.took[tk] = k
			}
		}
		s.q[k] = ev
		k++
	}
	clear(s.q[k:])
	s.q = s.q[:k]
}

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
		ev := &Pushed{Event: events[i]}
		for s := range set {
			if s.ended() {
				continue
			}
			if !s.push(ev) && s.end(ErrSlowSubscriber) {
				h.dropped.Add(1)
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
