package node

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

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
	conn, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		n.log.Debug("websocket accept failed", "request_id", c.reqID, "err", err)
		return
	}
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
		if err := conn.Write(wctx, websocket.MessageText, data); err != nil {
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
	for {
		select {
		case ev := <-s.sub.Events():
			if !send(ev, false) {
				return websocket.StatusGoingAway, "write failed"
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

// wsRead handles the device's messages until the connection ends. Each
// update is answered with an ack (applied or stale, with the cursor) or an
// error; the connection stays up after errors.
func (s *stream) wsRead(ctx context.Context, conn *websocket.Conn) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var reply any
		if typ != websocket.MessageText {
			reply = wsError(nil, errBadRequest("send JSON text messages"))
		} else {
			reply = s.wsHandle(ctx, data)
		}
		b, _ := json.Marshal(reply)
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		err = conn.Write(wctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			return
		}
	}
}

// wsHandle answers one device message.
func (s *stream) wsHandle(ctx context.Context, data []byte) any {
	var m wsMessage
	if err := unmarshal(data, &m); err != nil {
		return wsError(nil, err)
	}
	id, err := wsMessageID(m.ID)
	if err != nil {
		return wsError(nil, err)
	}
	if m.Type != "update" {
		return wsError(id, errBadRequest("unknown message type %q; devices send {\"type\": \"update\", …}", truncate(m.Type)))
	}
	u, err := m.update("", "")
	if err != nil {
		return wsError(id, err)
	}
	n := s.n
	if err := n.limitDevices(s.call.p.account, u.Device); err != nil {
		return wsError(id, err)
	}
	res, err := n.svc.Put(ctx, s.call.ref, []crdt.Update{u})
	if err != nil {
		e := serviceError(err)
		if e.status >= 500 {
			n.log.Warn("websocket update failed", "request_id", s.call.reqID, "route", s.call.r.Pattern, "err", err)
		}
		return wsError(id, e)
	}
	n.countResults(res)
	return ackJSON{Type: evAck, ID: id, Applied: res[0].Applied, Cursor: cursorPtr(res[0].Cursor, res[0].Found, n.svc.Policy())}
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

func wsError(id *string, err error) errorEventJSON {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = serviceError(err)
	}
	return errorEventJSON{Type: evError, ID: id, Error: errorDetail{Code: ae.code, Message: ae.msg}}
}
