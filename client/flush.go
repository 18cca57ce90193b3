package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// This file holds Flush: the offline queue replayed in batches.

// FlushResult counts what a Flush did.
type FlushResult struct {
	// Sent counts updates the node answered for; Applied and Stale split
	// them (a retried write counts as applied).
	Sent, Applied, Stale int
	// Dropped counts updates the node refused for good (logged).
	Dropped int
	// Batches counts the POST requests made.
	Batches int
	// Restamped counts queued updates given a new version because the
	// node refused this device's clock as too far ahead (see Flush).
	Restamped int
	// Remaining is the queue's length afterwards.
	Remaining int
}

// Flush replays the offline queue: per profile, in true version order, in
// batches of at most api.MaxBatch (POST …/positions) — one batch unless more
// than api.MaxBatch updates wait. It stops at the first batch that gets no
// answer (ErrOffline) or a 429/503 (ErrRetryLater, and it holds back until
// Retry-After has passed); what was not delivered stays queued. Call it
// when connectivity returns; Report and Subscribe call it too.
//
// A batch the node refuses as a whole (400, 413) is retried one update at
// a time, so one bad update cannot block the queue; updates refused for
// good (400, 403, 413) are dropped and logged. Any other failure stops the
// flush and keeps the updates.
//
// A refusal for clock skew (APIError.ClockSkew) restarts the Client's HLC
// from the node's clock and re-stamps the queued updates the old clock
// stamped from the future (see Client.Report); the flush then goes on with
// them. It does so at most once per Flush: updates refused for clock skew
// again are dropped like any refused update, never retried in a loop.
func (c *Client) Flush(ctx context.Context) (FlushResult, error) {
	return c.flush(ctx, nil, true)
}

// errRestamped tells flush that sendEach reset the clock and re-stamped
// the queue: read the queue again.
var errRestamped = errors.New("client: queue re-stamped")

// watch asks flush for the fate of one update (Report's, via the queue).
type watch struct {
	profile string
	u       crdt.Update
	done    bool
	res     Result
	dropped error
}

func (w *watch) matches(profile string, u crdt.Update) bool {
	return w != nil && w.profile == profile && w.u.Video == u.Video && versionOf(w.u) == versionOf(u)
}

// flush is Flush, watching w's update (may be nil). mayReset allows one
// clock reset on a clock-skew refusal.
func (c *Client) flush(ctx context.Context, w *watch, mayReset bool) (fr FlushResult, err error) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	defer func() { fr.Remaining = c.Queued() }()
	for {
		c.mu.Lock()
		held := c.heldLocked()
		profile, batch := c.queue.Next(api.MaxBatch)
		c.mu.Unlock()
		if len(batch) == 0 {
			return fr, nil
		}
		if held > 0 {
			return fr, fmt.Errorf("%w (for another %v)", ErrRetryLater, held)
		}
		fr.Batches++
		results, err := c.postBatch(ctx, profile, batch)
		var ae *APIError
		switch {
		case err == nil:
			c.settle(profile, batch, results, &fr, w)
		case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge):
			if mayReset && ae.ClockSkew() {
				mayReset = false
				if c.resetForFlush(err, &fr, w) > 0 {
					continue // send the re-stamped queue
				}
				// Nothing re-stamped: the same batch would be refused
				// again. Find out which updates the node takes.
			}
			c.log.Warn("playhead: batch refused; sending its updates one by one", "profile", profile, "err", err)
			err := c.sendEach(ctx, profile, batch, &fr, w, &mayReset)
			switch {
			case errors.Is(err, errRestamped):
			case err != nil:
				return fr, err
			}
		case permanent(err): // 403: this token may not write the profile
			c.log.Warn("playhead: queued updates refused for good; dropped", "profile", profile, "count", len(batch), "err", err)
			c.drop(profile, batch, err, &fr, w)
		default:
			return fr, err
		}
	}
}

// resetForFlush recovers from a clock-skew refusal (cause) during a flush
// and returns how many queued updates it re-stamped.
func (c *Client) resetForFlush(cause error, fr *FlushResult, w *watch) int {
	r := c.recoverClockSkew(cause)
	fr.Restamped += len(r.moved)
	w.follow(r)
	return len(r.moved)
}

// postBatch sends one batch and returns its results.
func (c *Client) postBatch(ctx context.Context, profile string, batch []crdt.Update) ([]api.WriteResult, error) {
	req := api.BatchRequest{Updates: make([]api.UpdateBody, len(batch))}
	for i, u := range batch {
		req.Updates[i] = api.NewUpdateBody(u, true)
	}
	r, err := c.do(ctx, http.MethodPost, profilePath(profile, "positions"), nil, req, 0)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, c.writeError(r)
	}
	var br api.BatchResponse
	if err := r.decode(&br); err != nil {
		return nil, err
	}
	if len(br.Results) != len(batch) {
		return nil, fmt.Errorf("%w: %d results for %d updates", ErrProtocol, len(br.Results), len(batch))
	}
	return br.Results, nil
}

// settle removes a delivered batch from the queue and counts it.
func (c *Client) settle(profile string, batch []crdt.Update, results []api.WriteResult, fr *FlushResult, w *watch) {
	for i, u := range batch {
		r := results[i]
		c.observeCursor(r.Cursor)
		c.saw(profile, r.Cursor)
		o := outcomeOf(u, r)
		fr.Sent++
		if o == Applied {
			fr.Applied++
		} else {
			fr.Stale++
		}
		if w.matches(profile, u) {
			w.done, w.res = true, Result{Outcome: o, Cursor: r.Cursor}
		}
	}
	c.remove(profile, batch)
}

// sendEach sends a batch one update at a time (PUT), after the node
// refused it as a whole. It stops at the first failure that is not for
// good. On a clock-skew refusal, if *mayReset, it resets the clock (once);
// if that re-stamped queued updates, it returns errRestamped (the rest of
// the batch has new versions).
func (c *Client) sendEach(ctx context.Context, profile string, batch []crdt.Update, fr *FlushResult, w *watch, mayReset *bool) error {
	for _, u := range batch {
		res, err := c.put(ctx, profile, u)
		if err != nil && *mayReset && isClockSkew(err) {
			*mayReset = false
			if c.resetForFlush(err, fr, w) > 0 {
				c.mu.Lock()
				kept := c.queue.Has(profile, u) // not re-stamped
				c.mu.Unlock()
				if kept { // the same version would be refused again
					c.log.Warn("playhead: queued update refused for good; dropped", "profile", profile, "video", u.Video, "err", err)
					c.drop(profile, []crdt.Update{u}, err, fr, w)
				}
				return errRestamped
			}
			// Nothing re-stamped: u is dropped below.
		}
		switch {
		case err == nil:
			fr.Sent++
			if res.Outcome == Applied {
				fr.Applied++
			} else {
				fr.Stale++
			}
			if w.matches(profile, u) {
				w.done, w.res = true, res
			}
			c.remove(profile, []crdt.Update{u})
		case permanent(err):
			c.log.Warn("playhead: queued update refused for good; dropped", "profile", profile, "video", u.Video, "err", err)
			c.drop(profile, []crdt.Update{u}, err, fr, w)
		default:
			return err
		}
	}
	return nil
}

func (c *Client) drop(profile string, ups []crdt.Update, err error, fr *FlushResult, w *watch) {
	fr.Dropped += len(ups)
	for _, u := range ups {
		if w.matches(profile, u) {
			w.dropped = err
		}
	}
	c.remove(profile, ups)
}

func (c *Client) remove(profile string, ups []crdt.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.queue.Remove(profile, ups); err != nil {
		c.log.Warn("playhead: offline queue", "err", err)
	}
}
