package node

import (
	"net/http"
	"sort"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// Transports of push delivery (metric label values).
const (
	transportWS       = "ws"
	transportSSE      = "sse"
	transportLongPoll = "longpoll"
)

// GET /v1/profiles/{profile}/changes?after=HLC&wait=25s: the cursors whose
// updated_hlc > after, at once if any, else as soon as one comes or when
// wait ends. Answers {"cursors": [...], "hlc": H} with H = max(after, newest
// updated_hlc returned): the coordinator stamps updated_hlc in commit order
// per profile, so polling with after=H never skips a change.
func (n *Node) changes(c *call) error {
	after, err := queryHLC(c.r, "after")
	if err != nil {
		return err
	}
	wait := n.cfg.LongPollWait
	if q := c.r.URL.Query(); q.Has("wait") {
		if wait, err = parseWait(q.Get("wait"), n.cfg.LongPollMax); err != nil {
			return err
		}
	}
	// Subscribe before reading, so that nothing committed in between is
	// missed: it is either in the read or in the subscription.
	sub, err := n.hub.Subscribe(c.ref)
	if err != nil {
		return errUnavailable("node is shutting down; retry on another node", err)
	}
	defer sub.Close()
	// Two owners' copies, merged, as a push stream's replay reads (events.go).
	cursors, err := n.svc.Cursors(gossip.WithReadQuorum(c.r.Context(), 2), c.ref)
	if err != nil {
		return err
	}
	found := newerThan(cursors, after)
	if len(found) == 0 && wait > 0 {
		found = n.awaitCursors(c.r, sub, after, wait)
	}
	n.writeChanges(c.w, found, after)
	return nil
}

// awaitCursors waits for the first cursor event above after, then collects
// what else is already queued.
func (n *Node) awaitCursors(r *http.Request, sub *Subscription, after crdt.HLC, wait time.Duration) []crdt.Cursor {
	t := time.NewTimer(wait)
	defer t.Stop()
	var got []crdt.Cursor
	for {
		select {
		case ev := <-sub.Events():
			if ev.Type == gossip.EventCursor && ev.Cursor.UpdatedHLC > after {
				got = append(got, ev.Cursor)
			}
			if len(got) > 0 && len(sub.Events()) == 0 {
				return got
			}
		case <-sub.Done(): // dropped or shutting down: answer what we have
			return got
		case <-t.C:
			return got
		case <-r.Context().Done():
			return got
		}
	}
}

// newerThan returns the cursors with updated_hlc > after.
func newerThan(cursors []crdt.Cursor, after crdt.HLC) []crdt.Cursor {
	var out []crdt.Cursor
	for _, c := range cursors {
		if c.UpdatedHLC > after {
			out = append(out, c)
		}
	}
	return out
}

func (n *Node) writeChanges(w http.ResponseWriter, cursors []crdt.Cursor, after crdt.HLC) {
	// One cursor per video (the newest), oldest first.
	latest := make(map[string]crdt.Cursor, len(cursors))
	for _, c := range cursors {
		if old, ok := latest[c.Video]; !ok || old.UpdatedHLC < c.UpdatedHLC {
			latest[c.Video] = c
		}
	}
	pol := n.svc.Policy()
	out := make([]api.Cursor, 0, len(latest))
	hlc := after
	for _, c := range latest {
		out = append(out, toCursorJSON(c, pol))
		hlc = max(hlc, c.UpdatedHLC)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedHLC < out[j].UpdatedHLC })
	if len(out) > 0 {
		n.metrics.pushSent.WithLabelValues(transportLongPoll).Add(float64(len(out)))
	}
	writeJSON(w, http.StatusOK, api.Changes{Cursors: out, HLC: hlc})
}
