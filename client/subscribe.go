package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// Handler receives a subscription's events. It is called from the
// subscription's goroutine, one event at a time, in arrival order. It
// should not block: the stream waits while it runs (and the node drops a
// WebSocket that falls too far behind; the subscription then reconnects and
// catches up). Hand slow work to another goroutine, and do not call the
// subscription's Close from the handler (Close waits for it to return).
//
// Every cursor event of the profile arrives, this device's own included
// (compare Cursor.Session with your Tracker's); a takeover event concerns
// the player whose session is Event.Session.
type Handler func(Event)

// Transport is how a subscription currently receives events.
type Transport string

// Transports.
const (
	TransportNone      Transport = ""
	TransportWebSocket Transport = "websocket"
	TransportLongPoll  Transport = "longpoll"
)

// Subscription follows one profile's push stream until its context ends or
// Close is called. It owns one goroutine (two while a WebSocket is open: the
// reader and a pinger); all have ended when Done is closed.
type Subscription struct {
	c       *Client
	profile string
	h       Handler
	cancel  context.CancelFunc
	done    chan struct{}

	// Owned by the run goroutine.
	bo *Backoff
	// haveAfter: the resume point is known (SubscribeAfter, or the node's
	// HLC at the first contact); connections then pass after=.
	haveAfter bool
	// online: the last attempt reached the node (a reconnect flushes the
	// offline queue).
	online bool
	// pollID names the subscription the node kept after the last
	// long-poll (api.Changes.Poll), passed back as poll=.
	pollID string

	mu sync.Mutex
	// filter dedupes cursor events and keeps the resume point. Guarded by mu.
	filter    *EventFilter
	transport Transport // guarded by mu
	err       error     // guarded by mu; the last connection failure
	connects  int       // guarded by mu; successful connections
}

// Subscribe follows the profile's changes from now on: cursors that
// advance, takeovers, history deletions, delivered to h (see Handler).
//
// It connects over WebSocket (GET …/events); when the connection drops it
// reconnects with exponential backoff and full jitter, passing
// after=<resume point> so that nothing is missed, and drops cursor versions
// already delivered. After WSFailuresBeforePoll failed WebSocket attempts
// in a row it falls back to long-poll (GET …/changes?after=…&wait=…) and
// tries the WebSocket again every WSRetryInterval. Each time it reaches the
// node after being cut off, it flushes the offline queue.
//
// The resume point starts at the node's HLC at the first contact, held back
// by ResumeHoldBack, and stays there: a reconnect replays every cursor
// changed since, and the subscription drops the versions it delivered
// (DESIGN.md §7, push guarantee). It returns at once; the subscription
// runs until ctx ends or Close is called.
func (c *Client) Subscribe(ctx context.Context, profile string, h Handler) (*Subscription, error) {
	return c.subscribe(ctx, profile, 0, false, h)
}

// SubscribeAfter is Subscribe starting from a known resume point: it first
// delivers every cursor whose updated_hlc is above after — all the
// profile's cursors when after is 0 — and then follows live changes. Pass
// a previous Subscription's After to resume it across app restarts.
func (c *Client) SubscribeAfter(ctx context.Context, profile string, after crdt.HLC, h Handler) (*Subscription, error) {
	return c.subscribe(ctx, profile, after, true, h)
}

func (c *Client) subscribe(ctx context.Context, profile string, after crdt.HLC, haveAfter bool, h Handler) (*Subscription, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidArgument)
	}
	c.mu.Lock()
	rnd := rand.New(rand.NewPCG(c.rnd.Uint64(), c.rnd.Uint64()))
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		c: c, profile: profile, h: h, cancel: cancel, done: make(chan struct{}),
		bo:        NewBackoff(c.cfg.BackoffBase, c.cfg.BackoffCap, rnd),
		haveAfter: haveAfter,
		filter:    NewEventFilter(after),
	}
	go s.run(ctx)
	return s, nil
}

// Close ends the subscription and waits until its goroutines have ended.
// The handler is not called after Close returns.
func (s *Subscription) Close() {
	s.cancel()
	<-s.done
}

// Done is closed when the subscription has ended (its context ended or
// Close was called) and its goroutines are gone.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// After returns the resume point: every change stamped at or below it has
// been delivered (or came before the subscription). SubscribeAfter resumes
// from it. It does not follow the cursors delivered — changes arrive out
// of updated_hlc order — so it stays where the subscription started, and
// resuming from it re-delivers what changed since then at most once more.
func (s *Subscription) After() crdt.HLC {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filter.After()
}

// Transport returns how events arrive now (TransportNone while cut off).
func (s *Subscription) Transport() Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// Err returns the last connection failure, or nil.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Connects returns how many times the subscription reached the node (each
// WebSocket connection and each long-poll session counts once).
func (s *Subscription) Connects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// run is the subscription's goroutine: connect, read, reconnect, until ctx
// ends.
//
// WebSocket mode: a failed attempt or a dropped connection waits a backoff
// and tries again. After WSFailuresBeforePoll failed attempts in a row it
// switches to long-poll mode at once. Long-poll mode: polls follow each
// other without a pause; a failed poll waits a backoff (or Retry-After).
// The WebSocket is tried again every WSRetryInterval, and at once when a
// poll succeeds after a failure (connectivity is back, and the WebSocket
// may have failed only because the network was down).
func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	cfg := &s.c.cfg
	wsFails := 0       // consecutive failed WebSocket attempts
	var nextWSMs int64 // in long-poll mode: when to try the WebSocket again
	for ctx.Err() == nil {
		polling := wsFails >= cfg.WSFailuresBeforePoll
		var err error
		if !polling || cfg.Clock.NowMs() >= nextWSMs {
			var connected bool
			connected, err = s.runWS(ctx)
			if ctx.Err() != nil {
				return
			}
			if connected {
				wsFails = 0
			} else {
				wsFails++
			}
			if wsFails >= cfg.WSFailuresBeforePoll {
				nextWSMs = cfg.Clock.NowMs() + cfg.WSRetryInterval.Milliseconds()
				if polling {
					s.setErr(err) // the retry failed: keep polling
				} else {
					s.failed(err)
				}
				continue
			}
		} else {
			wasOnline := s.online
			if err = s.poll(ctx); err == nil {
				if !wasOnline {
					nextWSMs = 0
				}
				continue
			}
			if ctx.Err() != nil {
				return
			}
		}
		s.failed(err)
		d := s.bo.Next()
		if ra := retryAfterOf(err); ra > d {
			d = ra
		}
		if !sleep(ctx, d) {
			return
		}
	}
}

// failed records that the subscription is cut off.
func (s *Subscription) failed(err error) {
	s.online = false
	s.mu.Lock()
	s.transport = TransportNone
	s.mu.Unlock()
	s.setErr(err)
}

// setErr records a connection failure.
func (s *Subscription) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	if err != nil {
		s.c.log.Debug("playhead: subscription", "profile", s.profile, "err", err)
	}
}

// connected records that the node was reached over t; after being cut off
// it flushes the offline queue, since connectivity is back.
func (s *Subscription) connected(ctx context.Context, t Transport) {
	s.bo.Reset()
	wasOnline := s.online
	s.online = true
	s.mu.Lock()
	if s.transport != t {
		s.connects++
	}
	s.transport = t
	s.mu.Unlock()
	if !wasOnline && s.c.Queued() > 0 {
		if _, err := s.c.Flush(ctx); err != nil {
			s.c.log.Debug("playhead: flush on reconnect", "err", err)
		}
	}
}

// startAfter initialises the resume point from the node's HLC at the first
// contact (Subscribe).
func (s *Subscription) startAfter(h http.Header) {
	if s.haveAfter || h == nil {
		return
	}
	hlc, err := crdt.ParseHLC(h.Get(HeaderHLC))
	if err != nil || hlc == 0 {
		return
	}
	s.haveAfter = true
	s.mu.Lock()
	s.filter.Start(hlc)
	s.mu.Unlock()
}

// query returns after= when the resume point is known.
func (s *Subscription) query() url.Values {
	q := url.Values{}
	if s.haveAfter {
		q.Set("after", s.After().String())
	}
	return q
}

// runWS runs one WebSocket connection until it ends. connected reports
// whether the upgrade succeeded.
func (s *Subscription) runWS(ctx context.Context) (connected bool, err error) {
	c := s.c
	hdr := http.Header{}
	c.authorize(hdr)
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	conn, res, err := websocket.Dial(dctx, c.url(profilePath(s.profile, "events"), s.query()), &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: hdr,
	})
	cancel()
	if res != nil {
		c.observeHeader(res.Header)
		s.startAfter(res.Header)
	}
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// The node answered, but not with an upgrade: keep its error
			// (and its Retry-After).
			var body []byte
			if res.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(res.Body, 1024))
			}
			return false, fmt.Errorf("websocket upgrade refused: %w",
				c.apiError(&response{status: res.StatusCode, header: res.Header, body: body}))
		}
		return false, fmt.Errorf("%w: websocket: %w", ErrOffline, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	s.connected(ctx, TransportWebSocket)

	pctx, pcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.ping(pctx, conn)
	}()
	defer wg.Wait()
	defer pcancel()

	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return true, fmt.Errorf("%w: websocket: %w", ErrOffline, err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			c.log.Debug("playhead: undecodable push event", "err", err)
			continue
		}
		s.deliver(&ev)
	}
}

// ping checks the node is alive; a ping unanswered within PingInterval
// closes the connection, which ends the reader.
func (s *Subscription) ping(ctx context.Context, conn *websocket.Conn) {
	every := s.c.cfg.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					conn.CloseNow()
				}
				return
			}
		}
	}
}

// poll runs one long-poll.
func (s *Subscription) poll(ctx context.Context) error {
	c := s.c
	if !s.haveAfter {
		// No contact with the node yet: start from its last known HLC, or
		// from our best estimate of its clock.
		c.mu.Lock()
		start := c.serverHLC
		c.mu.Unlock()
		if start == 0 {
			start = crdt.NewHLC(c.NowMs(), 0)
		}
		s.haveAfter = true
		s.mu.Lock()
		s.filter.Start(start)
		s.mu.Unlock()
	}
	// after= is what to wait past (the newest seen); since= is where the
	// subscription resumes: a node that starts a new subscription for this
	// poll (the kept one is gone, or this is another node) answers every
	// live cursor above it, and this filter drops what it holds.
	q := url.Values{}
	s.mu.Lock()
	q.Set("after", s.filter.Newest().String())
	q.Set("since", s.filter.After().String())
	s.mu.Unlock()
	q.Set("wait", c.cfg.LongPollWait.String())
	q.Set("include", "cleared") // deletions too (API.md: /changes)
	if s.pollID != "" {
		q.Set("poll", s.pollID) // the node kept the last poll's subscription: what came in between
	}
	r, err := c.do(ctx, http.MethodGet, profilePath(s.profile, "changes"), q, nil, c.cfg.LongPollWait)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return c.apiError(r)
	}
	var ch api.Changes
	if err := r.decode(&ch); err != nil {
		return err
	}
	s.connected(ctx, TransportLongPoll)
	s.pollID = ch.Poll
	if ch.Cleared != nil {
		for _, ce := range *ch.Cleared {
			ev := &Event{Type: api.EventCleared, Entry: ce.Entry}
			if ce.Video != nil {
				ev.Video = *ce.Video
			}
			s.deliver(ev)
		}
	}
	for i := range ch.Cursors {
		s.deliver(&Event{Type: api.EventCursor, Cursor: &ch.Cursors[i]})
	}
	s.mu.Lock()
	s.filter.Advance(ch.HLC)
	s.mu.Unlock()
	return nil
}

// deliver passes ev to the handler unless the filter drops it.
func (s *Subscription) deliver(ev *Event) {
	if ev.Type == api.EventCursor {
		s.c.observeCursor(ev.Cursor)
	}
	if s.c.olderThanSeen(s.profile, ev) {
		return // the device was already shown a newer version (a read)
	}
	s.mu.Lock()
	ok := s.filter.Accept(ev)
	s.mu.Unlock()
	if ok {
		switch {
		case ev.Type == api.EventCursor:
			s.c.saw(s.profile, ev.Cursor)
		case ev.Type == api.EventCleared && ev.Entry == "":
			s.c.forget(s.profile, ev.Video)
		}
		s.h(*ev)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
