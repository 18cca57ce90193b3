package node

import (
	"fmt"
	"net/http"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// PUT /v1/profiles/{profile}/positions/{video}: report a position.
// 200 {"applied": true, "cursor"}; 409 stale_write with the current cursor
// (null when none is visible).
func (n *Node) putPosition(c *call) error {
	video := c.r.PathValue("video")
	if err := checkID("video", video); err != nil {
		return err
	}
	body, err := readBody(c.w, c.r, n.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	u, err := decodeUpdate(body, video)
	if err != nil {
		return err
	}
	if err := n.limitDevices(c.p.account, u.Device); err != nil {
		return err
	}
	res, err := n.put(c.r, c.ref, []crdt.Update{u})
	if err != nil {
		return singleUpdate(err)
	}
	r := &res[0]
	pol := n.svc.Policy()
	// The answers are api.StaleBody and api.WriteResult, written by hand
	// (fastjson.go).
	if !r.Applied {
		writeFast(c.w, http.StatusConflict, func(dst []byte) []byte {
			return appendStaleBody(dst, staleMessage(r.Refused, pol), foundCursor(r), pol)
		})
		return nil
	}
	writeFast(c.w, http.StatusOK, func(dst []byte) []byte {
		return appendWriteResult(dst, true, foundCursor(r), pol)
	})
	return nil
}

// foundCursor is the result's cursor, nil (JSON null) when none is visible.
func foundCursor(r *gossip.WriteResult) *crdt.Cursor {
	if !r.Found {
		return nil
	}
	return &r.Cursor
}

// staleMessage says why a write was refused (409 stale_write).
func staleMessage(why gossip.Refusal, pol crdt.Policy) string {
	switch why {
	case gossip.RefusedDeleted:
		return "stale write: the update's seq lies at or below a deletion of this video's history (or of the whole history); nothing changed; start a new session"
	case gossip.RefusedExpired:
		return fmt.Sprintf("stale write: the update's seq is older than cursor_ttl (%v), so it would be expired on arrival; nothing changed; send a current epoch and seq or leave them out", pol.CursorTTL)
	}
	return "stale write: a larger version (epoch, seq, session) is stored; nothing changed; resume from the cursor"
}

// POST /v1/profiles/{profile}/positions: a batch of at most 500 updates,
// validated all or nothing; 200 with one result per update, in order, even
// when some were stale.
func (n *Node) postPositions(c *call) error {
	body, err := readBody(c.w, c.r, n.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	ups, err := decodeBatch(body)
	if err != nil {
		return err
	}
	devices := make([]string, len(ups))
	for i, u := range ups {
		devices[i] = u.Device
	}
	if err := n.limitDevices(c.p.account, devices...); err != nil {
		return err
	}
	var res []gossip.WriteResult
	if len(ups) > 0 {
		if res, err = n.put(c.r, c.ref, ups); err != nil {
			return err
		}
	}
	pol := n.svc.Policy()
	// api.BatchResponse, written by hand (fastjson.go).
	writeFast(c.w, http.StatusOK, func(dst []byte) []byte {
		dst = append(dst, `{"results":[`...)
		for i := range res {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendWriteResult(dst, res[i].Applied, foundCursor(&res[i]), pol)
		}
		return append(dst, "]}"...)
	})
	return nil
}

// put applies updates through the service and counts the outcomes.
func (n *Node) put(r *http.Request, ref gossip.Ref, ups []crdt.Update) ([]gossip.WriteResult, error) {
	res, err := n.svc.Put(r.Context(), ref, ups)
	if err != nil {
		return nil, err
	}
	n.countResults(res)
	return res, nil
}

func (n *Node) countResults(res []gossip.WriteResult) {
	applied := 0
	for _, r := range res {
		if r.Applied {
			applied++
		}
	}
	if applied > 0 {
		n.metrics.updates.WithLabelValues("applied").Add(float64(applied))
	}
	if stale := len(res) - applied; stale > 0 {
		n.metrics.updates.WithLabelValues("stale").Add(float64(stale))
	}
}

// GET /v1/profiles/{profile}/positions/{video}: the cursor, 404 if none.
func (n *Node) getPosition(c *call) error {
	video := c.r.PathValue("video")
	if err := checkID("video", video); err != nil {
		return err
	}
	ctx := c.r.Context()
	replica := ""
	if c.r.URL.RawQuery != "" { // parsing an empty query still allocates
		replica = c.r.URL.Query().Get("replica")
	}
	switch replica {
	case "":
		// Two owners' copies, merged: with write quorum 2 of 3 every
		// acknowledged write and delete is in one of them, so a delete
		// sticks even when the coordinator's own copy lacks it (a node cut
		// off from the others, or back from a crash before its hints; found
		// by the e2e suite, docs/E2E.md). Playhead-Seen may widen it.
		ctx = gossip.WithReadQuorum(ctx, ReadQuorum)
	case "local":
		// Operators: read this node's own replica (admin tokens only).
		if !c.p.admin {
			return errForbidden("replica=local needs an admin token")
		}
		ctx = gossip.WithLocalReplica(ctx)
	default:
		return errBadRequest("replica=%q: the only value is local", truncate(replica))
	}
	if h := c.r.Header.Get(seenHeader); h != "" {
		seen, err := parseSeen(h)
		if err != nil {
			return err
		}
		ctx = gossip.WithSeen(ctx, seen)
	}
	cur, ok, err := n.svc.Cursor(ctx, c.ref, video)
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound("no position for video %q in this profile", truncate(video))
	}
	pol := n.svc.Policy()
	writeFast(c.w, http.StatusOK, func(dst []byte) []byte { return appendCursorJSON(dst, &cur, pol) })
	return nil
}

// ReadQuorum is how many owners' copies a device's cursor read (a resume
// read, continue-watching) merges: 2, so that with write quorum 2 of RF 3
// every acknowledged write and delete is seen (capped at the partition's
// owners: 1 on a single node). A node that reaches fewer owners answers
// 503 rather than a copy that may lack an acknowledged delete.
const ReadQuorum = 2
