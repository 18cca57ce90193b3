package node

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// wsWriteTimeout bounds one WebSocket write; a device that cannot take a
// message in that time is disconnected.
const wsWriteTimeout = 10 * time.Second

// serveWS runs a WebSocket push stream. Three goroutines serve it: this one
// writes events; a reader handles the device's messages (updates, answered
// with ack or error); a pinger checks the peer is alive. This one waits for
// the other two before returning, and the node waits for this one before
// closing the store (tracker), so no update is acknowledged after the
// store closed.
func (s *stream) serveWS(replay []crdt.Cursor) {
	n, c := s.n, s.call
	// Origin is not checked: the API authenticates with bearer tokens, never
	// cookies, so a cross-origin page cannot act for a viewer without
	// holding the viewer's token.
	conn, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{InsecureSkipVerify: true,
		Subprotocols: []string{wsSubprotocolMsgpack}})
	if err != nil {
		n.log.Debug("websocket accept failed", "request_id", c.reqID, "err", err)
		return
	}
	s.msgpack = conn.Subprotocol() == wsSubprotocolMsgpack
	conn.SetReadLimit(n.cfg.MaxBodyBytes)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer cancel(); s.wsRead(ctx, conn) }()
	go func() { defer wg.Done(); defer cancel(); s.wsPing(ctx, conn) }()

	code, reason := s.wsLoop(ctx, conn, replay)
	conn.Close(code, reason) // unblocks the reader
	cancel()
	wg.Wait()
}

// wsLoop writes the replay and then events until the stream ends; it
// returns the close code and reason.
func (s *stream) wsLoop(ctx context.Context, conn *websocket.Conn, replay []crdt.Cursor) (websocket.StatusCode, string) {
	n := s.n
	send := func(ev *gossip.Event, fromReplay bool) bool {
		_, data, ok := s.encode(ev, fromReplay)
		if !ok {
			return true
		}
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		defer cancel()
		if err := conn.Write(wctx, s.messageType(), data); err != nil {
			return false
		}
		n.metrics.pushSent.WithLabelValues(transportWS).Inc()
		return true
	}
	for _, ev := range s.replayEvents(replay) {
		if !send(ev, true) {
			return websocket.StatusGoingAway, "write failed"
		}
	}
	expiry := time.NewTimer(time.Until(s.call.p.exp))
	defer expiry.Stop()
	var evs []*Pushed
	for {
		select {
		case <-s.sub.Ready():
			evs = s.sub.Take(evs[:0])
			if s.msgpack {
				if !s.sendMsgpackEvents(ctx, conn, evs) {
					return websocket.StatusGoingAway, "write failed"
				}
				continue
			}
			for _, ev := range evs {
				if !send(&ev.Event, false) {
					return websocket.StatusGoingAway, "write failed"
				}
			}
		case <-s.sub.Done():
			if s.sub.Err() == ErrShuttingDown {
				return websocket.StatusGoingAway, "node shutting down; reconnect with after=" + s.after.String()
			}
			// Try Again Later (1013): reconnect with after=.
			return websocket.StatusTryAgainLater, "too slow; reconnect with after=" + s.after.String()
		case <-expiry.C:
			return websocket.StatusPolicyViolation, "token expired"
		case <-ctx.Done():
			return websocket.StatusNormalClosure, ""
		}
	}
}

// wsEventsMax bounds the events sent in one msgpack message.
const wsEventsMax = 64

// sendMsgpackEvents sends evs, up to wsEventsMax per message: one event as
// a map, several as one array message, so a busy profile costs its
// subscribers one write per burst, not per change. Each event is encoded
// once for all the streams it goes to (Pushed); an array message is the
// array header and its elements' encodings.
func (s *stream) sendMsgpackEvents(ctx context.Context, conn *websocket.Conn, evs []*Pushed) bool {
	pol := s.n.svc.Policy()
	enc := func(ev *gossip.Event) []byte {
		typ, v := eventValue(ev, pol)
		if typ == "" {
			return []byte{} // nothing to send: not nil, so it is kept
		}
		return encodeMsgpack(v)
	}
	var parts [][]byte
	var msg []byte
	for len(evs) > 0 {
		parts = parts[:0]
		for len(evs) > 0 && len(parts) < wsEventsMax {
			ev := evs[0]
			evs = evs[1:]
			if !s.admit(&ev.Event, false) {
				continue
			}
			if b := ev.encoded(enc); len(b) > 0 {
				parts = append(parts, b)
			}
		}
		if len(parts) == 0 {
			continue
		}
		if len(parts) == 1 {
			msg = parts[0]
		} else {
			msg = appendMsgpackArrayLen(msg[:0], len(parts))
			for _, p := range parts {
				msg = append(msg, p...)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		err := conn.Write(wctx, websocket.MessageBinary, msg)
		cancel()
		if err != nil {
			return false
		}
		s.n.metrics.pushSent.WithLabelValues(transportWS).Add(float64(len(parts)))
		if len(parts) == 1 {
			msg = nil // parts[0] is the shared encoding: never append to it
		}
	}
	return true
}

// wsPing pings the peer every interval; a peer that does not answer within
// an interval is closed.
func (s *stream) wsPing(ctx context.Context, conn *websocket.Conn) {
	every := s.n.cfg.WSPingInterval
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
				return
			}
		}
	}
}

// wsMessage is a message from the device. Only "update" is defined.
type wsMessage struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
	updateBody
}

// wsBatchMax bounds the device messages handled together.
const wsBatchMax = 256

// wsSubprotocolMsgpack is the WebSocket subprotocol in which every message
// is binary msgpack instead of JSON text: the same objects with the same
// keys, HLCs as unsigned integers, and a device message may be an array of
// updates, answered by one message holding the array of their answers in
// order. Devices that do not ask for it speak JSON.
const wsSubprotocolMsgpack = "playhead.v1.msgpack"

// wsIn is one message read from the device.
type wsIn struct {
	typ  websocket.MessageType
	data []byte
}

// wsItem is one update a device sent (a message, or an element of a msgpack
// array), parsed: its id, and the update or why it is refused.
type wsItem struct {
	id  *string
	u   crdt.Update
	err error
}

// messageType is the type of the messages this stream writes.
func (s *stream) messageType() websocket.MessageType {
	if s.msgpack {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// wsRead handles the device's messages until the connection ends. Each
// update is answered with an ack (applied or stale, with the cursor) or an
// error, in the order the messages came; the connection stays up after
// errors. A device that sends several updates without waiting for their
// acks (replaying a queue) has them merged as one batch: one store write
// and one WAL sync for all of them, as POST …/positions does.
func (s *stream) wsRead(ctx context.Context, conn *websocket.Conn) {
	in := make(chan wsIn, wsBatchMax)
	go func() {
		// Ends when the connection does (serveWS closes it) or ctx ends.
		defer close(in)
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			select {
			case in <- wsIn{typ, data}:
			case <-ctx.Done():
				return
			}
		}
	}()
	batch := make([]wsIn, 0, wsBatchMax)
	for m := range in {
		batch = append(batch[:0], m)
	drain:
		for len(batch) < wsBatchMax {
			select {
			case m, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		// Parse every message into its updates; an array message (msgpack)
		// is answered by one array.
		var items []wsItem
		sizes := make([]int, len(batch)) // items per message; -1: a single one
		for i, m := range batch {
			its, array := s.wsParseMessage(m)
			items = append(items, its...)
			sizes[i] = len(its)
			if !array {
				sizes[i] = -1
			}
		}
		replies := s.wsHandleBatch(ctx, items)
		k := 0
		for _, n := range sizes {
			var out any
			if n < 0 {
				out, k = replies[k], k+1
			} else {
				out, k = replies[k:k+n], k+n
			}
			var b []byte
			if s.msgpack {
				b = encodeMsgpack(out)
			} else {
				b, _ = json.Marshal(out)
			}
			wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := conn.Write(wctx, s.messageType(), b)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// wsParseMessage parses one device message into its updates, and says
// whether it was an array (msgpack only).
func (s *stream) wsParseMessage(m wsIn) ([]wsItem, bool) {
	if !s.msgpack {
		if m.typ != websocket.MessageText {
			return []wsItem{{err: errBadRequest("send JSON text messages")}}, false
		}
		id, u, err := s.wsParse(m.data)
		return []wsItem{{id, u, err}}, false
	}
	if m.typ != websocket.MessageBinary {
		return []wsItem{{err: errBadRequest("this connection speaks %s: send binary msgpack messages", wsSubprotocolMsgpack)}}, false
	}
	msgs, array, err := decodeMsgpackUpdates(m.data, MaxBatchUpdates)
	if err != nil {
		return []wsItem{{err: err}}, false
	}
	items := make([]wsItem, len(msgs))
	for i := range msgs {
		id, u, err := s.wsCheck(&msgs[i])
		items[i] = wsItem{id, u, err}
	}
	if !array && len(items) == 0 {
		return []wsItem{{err: errBadRequest("empty message")}}, false
	}
	return items, array
}

// wsHandleBatch answers parsed updates, in order. The valid ones are merged
// with one Put; if that Put is refused as a whole (one bad update fails a
// batch), each is put on its own, so every update gets the answer it would
// have had alone.
func (s *stream) wsHandleBatch(ctx context.Context, items []wsItem) []any {
	n := s.n
	replies := make([]any, len(items))
	var ups []crdt.Update
	var at []int // the item index of each of ups
	for i, it := range items {
		if it.err != nil {
			replies[i] = wsError(it.id, it.err)
			continue
		}
		ups = append(ups, it.u)
		at = append(at, i)
	}
	if len(ups) == 0 {
		return replies
	}
	res, err := n.svc.Put(ctx, s.call.ref, ups)
	if err != nil && len(ups) > 1 && serviceError(err).status < 500 {
		for j, u := range ups {
			replies[at[j]] = s.wsPut(ctx, items[at[j]].id, []crdt.Update{u})
		}
		return replies
	}
	if err != nil {
		for _, i := range at {
			replies[i] = s.wsPutError(items[i].id, err)
		}
		return replies
	}
	n.countResults(res)
	for j, i := range at {
		replies[i] = api.Ack{Type: api.EventAck, ID: items[i].id, Applied: res[j].Applied, Cursor: cursorPtr(res[j].Cursor, res[j].Found, n.svc.Policy())}
	}
	return replies
}

// wsParse checks one JSON device message.
func (s *stream) wsParse(data []byte) (*string, crdt.Update, error) {
	var m wsMessage
	if err := unmarshal(data, &m); err != nil {
		return nil, crdt.Update{}, err
	}
	id, err := wsMessageID(m.ID)
	if err != nil {
		return nil, crdt.Update{}, err
	}
	return s.wsCheck(&wsUpdate{Type: m.Type, ID: id, updateBody: m.updateBody})
}

// wsCheck checks one device message: an update of this device's profile,
// within its rate limit.
func (s *stream) wsCheck(m *wsUpdate) (*string, crdt.Update, error) {
	id := m.ID
	if id != nil && len(*id) > maxMsgIDLen {
		return nil, crdt.Update{}, errBadRequest("id must be a string of at most %d bytes", maxMsgIDLen)
	}
	if m.Type != "update" {
		return id, crdt.Update{}, errBadRequest("unknown message type %q; devices send {\"type\": \"update\", …}", truncate(m.Type))
	}
	u, err := m.update("", "")
	if err != nil {
		return id, crdt.Update{}, err
	}
	if err := s.n.limitDevices(s.call.p.account, u.Device); err != nil {
		return id, crdt.Update{}, err
	}
	return id, u, nil
}

// wsPut puts one update and returns its ack or error.
func (s *stream) wsPut(ctx context.Context, id *string, ups []crdt.Update) any {
	n := s.n
	res, err := n.svc.Put(ctx, s.call.ref, ups)
	if err != nil {
		return s.wsPutError(id, err)
	}
	n.countResults(res)
	return api.Ack{Type: api.EventAck, ID: id, Applied: res[0].Applied, Cursor: cursorPtr(res[0].Cursor, res[0].Found, n.svc.Policy())}
}

func (s *stream) wsPutError(id *string, err error) any {
	e := serviceError(err)
	if e.status >= 500 {
		s.n.log.Warn("websocket update failed", "request_id", s.call.reqID, "route", s.call.r.Pattern, "err", err)
	}
	return wsError(id, e)
}

// wsMessageID validates the optional id a device puts on a message: a
// string of at most 128 bytes, echoed in the reply.
func wsMessageID(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil || len(id) > maxMsgIDLen {
		return nil, errBadRequest("id must be a string of at most %d bytes", maxMsgIDLen)
	}
	return &id, nil
}

func wsError(id *string, err error) api.ErrorEvent {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = serviceError(err)
	}
	return api.ErrorEvent{Type: api.EventError, ID: id, Error: api.ErrorDetail{Code: ae.code, Message: ae.msg}}
}
