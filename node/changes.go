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

// includeCleared is the value of ?include= that asks /changes for the
// history deletions too.
const includeCleared = "cleared"

// GET /v1/profiles/{profile}/changes?after=HLC&wait=25s[&include=cleared]:
// the cursors whose updated_hlc > after, at once if any, else as soon as one
// comes or when wait ends. Answers {"cursors": [...], "hlc": H} with H =
// max(after, newest updated_hlc returned): the coordinator stamps
// updated_hlc in commit order per profile, so polling with after=H never
// skips a change.
//
// With include=cleared (an extension: a poll without it is answered as
// before) the answer also carries "cleared": the history deletions since
// after, as the push stream's cleared events, to apply before the cursors:
// a "delete all history" whose register is above after (found in the
// profile, so a device that was away learns of it), and any deletion — all,
// one video, one entry — committed while the poll waits, or since the
// previous poll when it names that poll's kept subscription (poll=ID,
// changes_keep.go). H then also covers the delete-all register.
//
// since=HLC (optional, at or below after) is the device's resume point:
// it holds, or does not need, every change stamped at or below it, but not
// necessarily every one up to after — changes reach a device out of
// updated_hlc order. A poll that starts a new subscription (no poll=, or
// the kept one is gone) answers the cursors above since, not only those
// above after, and widens the node's push catch-up to it; the device drops
// what it holds. Live events are answered whatever their updated_hlc: one
// stamped below after may be a change the device never had.
func (n *Node) changes(c *call) error {
	after, err := queryHLC(c.r, "after")
	if err != nil {
		return err
	}
	since, err := queryHLC(c.r, "since")
	if err != nil {
		return err
	}
	if !c.r.URL.Query().Has("since") || since > after {
		since = after
	}
	q := c.r.URL.Query()
	withCleared := false
	if q.Has("include") {
		if v := q.Get("include"); v != includeCleared {
			return errBadRequest("include=%q: the only value is include=cleared", truncate(v))
		}
		withCleared = true
	}
	wait := n.cfg.LongPollWait
	if q.Has("wait") {
		if wait, err = parseWait(q.Get("wait"), n.cfg.LongPollMax); err != nil {
			return err
		}
	}
	// Subscribe before reading, so that nothing committed in between is
	// missed: it is either in the read or in the subscription. A poll
	// that names the previous poll's kept subscription takes it over
	// (changes_keep.go), with what it heard since.
	var ch pollResult
	var sub *Subscription
	if withCleared {
		sub = n.polls.take(q.Get("poll"), c.ref)
	}
	floor := after
	if sub != nil {
		ch.cleared = drainCleared(sub)
	} else if sub, err = n.hub.Subscribe(c.ref); err != nil {
		return errUnavailable("node is shutting down; retry on another node", err)
	} else {
		floor = since
		if pr, ok := n.svc.(pushResumer); ok && c.r.URL.Query().Has("since") {
			pr.ResumePush(c.ref, since)
		}
	}
	kept := false
	defer func() {
		if !kept {
			sub.Close()
		}
	}()
	if withCleared {
		if ch.cleared == nil {
			ch.cleared = []api.ClearedEvent{}
		}
		prof, err := n.svc.Profile(c.r.Context(), c.ref)
		if err != nil {
			return err
		}
		if prof.ClearedAt > after {
			ch.cleared = append(ch.cleared, api.ClearedEvent{Type: api.EventCleared})
			ch.hlc = prof.ClearedAt
		}
	}
	// Two owners' copies, merged, as a push stream's replay reads (events.go).
	cursors, err := n.svc.Cursors(gossip.WithReadQuorum(c.r.Context(), 2), c.ref)
	if err != nil {
		return err
	}
	ch.cursors = newerThan(cursors, floor)
	if len(ch.cursors) == 0 && len(ch.cleared) == 0 && wait > 0 {
		n.awaitChanges(c.r, sub, since, wait, withCleared, &ch)
	}
	if withCleared && c.r.Context().Err() == nil {
		if ch.poll = n.polls.keep(c.ref, sub); ch.poll != "" {
			kept = true
		}
	}
	n.writeChanges(c.w, ch, after, withCleared)
	return nil
}

// pollResult is what one long-poll answers.
type pollResult struct {
	cursors []crdt.Cursor
	cleared []api.ClearedEvent // nil unless include=cleared
	hlc     crdt.HLC           // the delete-all register, if reported
	poll    string             // the kept subscription's id, if kept
}

// awaitChanges waits for the first change above floor (a cursor, or a
// deletion when withCleared), then collects what else is already queued.
// A deletion drops the cursors collected before it that it covers, so that
// applying the answer's deletions before its cursors leaves what the
// profile holds.
func (n *Node) awaitChanges(r *http.Request, sub *Subscription, floor crdt.HLC, wait time.Duration, withCleared bool, ch *pollResult) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-sub.Ready():
			for _, ev := range sub.Take(nil) {
				switch {
				case ev.Type == gossip.EventCursor && ev.Cursor.UpdatedHLC > floor:
					ch.cursors = append(ch.cursors, ev.Cursor)
				case ev.Type == gossip.EventCleared && withCleared:
					ch.cleared = append(ch.cleared, clearedJSON(&ev.Event))
					if ev.Entry == "" {
						kept := ch.cursors[:0]
						for _, c := range ch.cursors {
							if ev.Video != "" && c.Video != ev.Video {
								kept = append(kept, c)
							}
						}
						ch.cursors = kept
					}
				}
			}
			if (len(ch.cursors) > 0 || len(ch.cleared) > 0) && sub.Pending() == 0 {
				return
			}
		case <-sub.Done(): // dropped or shutting down: answer what we have
			return
		case <-t.C:
			return
		case <-r.Context().Done():
			return
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

func (n *Node) writeChanges(w http.ResponseWriter, ch pollResult, after crdt.HLC, withCleared bool) {
	// One cursor per video (the newest), oldest first.
	latest := make(map[string]crdt.Cursor, len(ch.cursors))
	for _, c := range ch.cursors {
		if old, ok := latest[c.Video]; !ok || old.UpdatedHLC < c.UpdatedHLC {
			latest[c.Video] = c
		}
	}
	pol := n.svc.Policy()
	out := make([]api.Cursor, 0, len(latest))
	hlc := max(after, ch.hlc)
	for _, c := range latest {
		out = append(out, toCursorJSON(c, pol))
		hlc = max(hlc, c.UpdatedHLC)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedHLC < out[j].UpdatedHLC })
	if sent := len(out) + len(ch.cleared); sent > 0 {
		n.metrics.pushSent.WithLabelValues(transportLongPoll).Add(float64(sent))
	}
	body := api.Changes{Cursors: out, HLC: hlc}
	if withCleared {
		body.Cleared = &ch.cleared
		body.Poll = ch.poll
	}
	writeJSON(w, http.StatusOK, body)
}
