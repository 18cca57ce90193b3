package node

import (
	"net/http"
	"sort"
	"strings"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// GET /v1/profiles/{profile}/events: the push stream. A WebSocket when the
// request asks to upgrade, Server-Sent Events when it accepts
// text/event-stream, else 400.
//
// after=HLC (or, for SSE, a Last-Event-ID header) is the device's resume
// point: it holds, or does not need, every change stamped at or below it.
// The stream first sends every live cursor with updated_hlc > after, and
// the node's push catch-up widens to it (pushResumer), so a device that
// reconnects misses nothing; it drops what it already holds. The
// token may come in ?access_token= on this endpoint only, because browsers
// cannot set headers on a WebSocket.
//
// Each event goes to every stream of the profile; a takeover event names the
// superseded session, and only its devices need to act on it. A stream
// behind the profile's changes gets only the newest cursor of each video
// (Hub). omit_device=ID leaves out the live cursor events written by device
// ID (the device's own writes, whose answers it holds); the replay keeps
// them.
func (n *Node) events(c *call) error {
	ws := headerHasToken(c.r.Header, "Upgrade", "websocket")
	sse := strings.Contains(c.r.Header.Get("Accept"), "text/event-stream")
	if !ws && !sse {
		return errBadRequest("open the stream as a WebSocket (Upgrade: websocket) or as Server-Sent Events (Accept: text/event-stream); long-poll is GET …/changes")
	}
	after, err := queryHLC(c.r, "after")
	if err != nil {
		return err
	}
	hasAfter := c.r.URL.Query().Has("after")
	if !hasAfter && !ws {
		if id := c.r.Header.Get("Last-Event-ID"); id != "" {
			h, err := crdt.ParseHLC(id)
			if err != nil {
				return errBadRequest("Last-Event-ID %q is not an HLC", truncate(id))
			}
			after, hasAfter = h, true
		}
	}
	if ws {
		if err := checkWebSocketHandshake(c.r); err != nil {
			return err
		}
	}
	var opts SubscribeOptions
	if q := c.r.URL.Query(); q.Has("omit_device") {
		opts.OmitDevice = q.Get("omit_device")
		if err := checkID("omit_device", opts.OmitDevice); err != nil {
			return err
		}
	}
	if !n.tracker.enter() {
		return errUnavailable("node is shutting down; reconnect to another node", ErrShuttingDown)
	}
	defer n.tracker.leave()
	// Subscribe before reading the replay, so nothing committed in between
	// is missed.
	sub, err := n.hub.SubscribeWith(c.ref, opts)
	if err != nil {
		return errUnavailable("node is shutting down; reconnect to another node", err)
	}
	defer sub.Close()
	resume := after
	if !hasAfter {
		resume = api.ResumePointAt(n.svc.Now())
	} else if pr, ok := n.svc.(pushResumer); ok {
		// After subscribing: what the node's core noted as pushed before
		// this stream existed says nothing of what its device holds.
		pr.ResumePush(c.ref, after)
	}
	var replay []crdt.Cursor
	if hasAfter {
		// Two owners' copies, merged: the node's hub may already have
		// counted a change as pushed (while this device was away), so a
		// replay served by one lagging replica would lose it for good
		// (found by the simulator; gossip.WithReadQuorum).
		cursors, err := n.svc.Cursors(gossip.WithReadQuorum(c.r.Context(), 2), c.ref)
		if err != nil {
			return err
		}
		replay = newerThan(cursors, after)
		sort.Slice(replay, func(i, j int) bool { return replay[i].UpdatedHLC < replay[j].UpdatedHLC })
	}
	if rw, ok := c.w.(*respWriter); ok {
		rw.stream = true
	}
	st := &stream{n: n, call: c, sub: sub, after: resume, floor: after, seen: map[string]crdt.HLC{}, sent: map[string]crdt.Version{}}
	if ws {
		st.serveWS(replay)
	} else {
		st.serveSSE(replay)
	}
	return nil
}

// pushResumer is a Service whose push catch-up must hear of a stream that
// resumes (gossip/driver.Driver: gossip.Core.ResumePush). A single node
// has nothing to catch up: every change is in its own store.
type pushResumer interface {
	ResumePush(ref gossip.Ref, since crdt.HLC)
}

// stream is the transport-independent state of one push stream.
type stream struct {
	n    *Node
	call *call
	sub  *Subscription
	// after is the stream's resume point, the after= to reconnect with
	// (SSE event ids, the closing message): the request's after, or the
	// node's HLC at subscribing held back by api.ResumeHoldBack. It does
	// not follow the cursors sent: they leave in arrival order, not in
	// updated_hlc order, so the newest sent is no proof that every older
	// change was (DESIGN.md §7, push guarantee).
	after crdt.HLC
	// seen is the newest updated_hlc sent per video in the replay, to skip
	// events the replay already carried.
	seen map[string]crdt.HLC
	// floor is the request's after (or Last-Event-ID): the device holds
	// every cursor change up to it, so no cursor at or below it is sent
	// again — a late push of an older change (a replica's repair, a
	// catch-up) would take the device back.
	floor crdt.HLC
	// sent is the largest cursor version sent per video: a stream never
	// sends a video's cursor older than one it sent before. A deletion of
	// the video (or of the whole history) forgets it.
	sent map[string]crdt.Version
	// msgpack: the WebSocket negotiated wsSubprotocolMsgpack.
	msgpack bool
}

// replayEvents turns replayed cursors into events and notes them as seen.
func (s *stream) replayEvents(replay []crdt.Cursor) []*gossip.Event {
	evs := make([]*gossip.Event, len(replay))
	for i, c := range replay {
		evs[i] = &gossip.Event{Ref: s.call.ref, Type: gossip.EventCursor, Cursor: c, Video: c.Video}
		s.seen[c.Video] = max(s.seen[c.Video], c.UpdatedHLC)
	}
	return evs
}

// encode returns the type and JSON of an event to send, or ok false to skip
// it (a cursor the replay already sent).
func (s *stream) encode(ev *gossip.Event, fromReplay bool) (typ string, data []byte, ok bool) {
	if !s.admit(ev, fromReplay) {
		return "", nil, false
	}
	if s.msgpack {
		typ, v := eventValue(ev, s.n.svc.Policy())
		if typ == "" {
			return "", nil, false
		}
		return typ, encodeMsgpack(v), true
	}
	typ, data = encodeEvent(ev, s.n.svc.Policy())
	return typ, data, typ != ""
}

// encodeValue is encode for a live event, returning its message unencoded.
func (s *stream) encodeValue(ev *gossip.Event) (typ string, v any, ok bool) {
	if !s.admit(ev, false) {
		return "", nil, false
	}
	typ, v = eventValue(ev, s.n.svc.Policy())
	return typ, v, typ != ""
}

// admit says whether the stream sends ev.
func (s *stream) admit(ev *gossip.Event, fromReplay bool) bool {
	if ev.Ref != s.call.ref { // cannot happen (the hub routes by Ref); isolation is not negotiable
		return false
	}
	switch ev.Type {
	case gossip.EventCursor:
		if !fromReplay && (ev.Cursor.UpdatedHLC <= s.seen[ev.Cursor.Video] || ev.Cursor.UpdatedHLC <= s.floor) {
			return false
		}
		if v, ok := s.sent[ev.Cursor.Video]; ok && !v.Less(ev.Cursor.Version) {
			return false // older than (or the same as) what this stream sent
		}
		s.sent[ev.Cursor.Video] = ev.Cursor.Version
	case gossip.EventCleared:
		switch {
		case ev.Entry != "": // one entry: the cursor stays
		case ev.Video == "":
			clear(s.sent)
		default:
			delete(s.sent, ev.Video)
		}
	}
	return true
}

// endMessage says why the hub ended a subscription, for the device.
func (s *stream) endMessage() (code, msg string) {
	if s.sub.Err() == ErrShuttingDown {
		return api.CodeUnavailable, "node shutting down; reconnect with after=" + s.after.String()
	}
	return api.CodeUnavailable, "too slow to keep up; reconnect with after=" + s.after.String()
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkWebSocketHandshake rejects a malformed upgrade with a JSON 400
// before the WebSocket library would answer it in plain text.
func checkWebSocketHandshake(r *http.Request) error {
	switch {
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return errBadRequest("WebSocket upgrade without Connection: Upgrade")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return errBadRequest("WebSocket version must be 13")
	case r.Header.Get("Sec-WebSocket-Key") == "":
		return errBadRequest("WebSocket upgrade without Sec-WebSocket-Key")
	}
	return nil
}
