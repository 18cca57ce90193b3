package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// This file holds Report: one update to the node, or to the offline queue.

// Outcome says what became of a reported update.
type Outcome uint8

// Outcomes of Report.
const (
	// Applied: the node stored the update durably (or had stored it
	// already: a retried write). Result.Cursor is the merged cursor.
	Applied Outcome = iota + 1
	// Queued: not delivered now; the update is in the offline queue and
	// goes out with the next Flush (or the next Report that reaches the
	// node, or a Subscribe reconnect). Result.Cause says why.
	Queued
	// Stale: the node holds a larger version (another session moved the
	// cursor on). Result.Cursor is the current cursor — jump to it, or if
	// the viewer insists, SeekTo (a new epoch wins). Cursor is nil when the
	// update lies at or below a deletion of the video's history.
	Stale
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Queued:
		return "queued"
	case Stale:
		return "stale"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result is the outcome of one Report.
type Result struct {
	Outcome Outcome
	// Cursor is the node's cursor after the write (Applied, Stale).
	Cursor *Cursor
	// RetryAfter is the wait the node asked for (Queued after 429/503).
	RetryAfter time.Duration
	// Cause is why the update was queued: it wraps ErrOffline,
	// ErrRetryLater or an *APIError (401: refresh the token).
	Cause error
}

// Report sends one update of profile (PUT …/positions/{video}) and says
// what became of it. Offline — no answer, 429, 503, any 5xx, 401, any
// status the API does not define — or while a Retry-After lasts, or while
// older updates wait in the queue (so that the node gets them in true
// order), the update joins the offline queue; Report then returns Queued,
// not an error.
//
// A 409 whose cursor carries exactly this update's version is a retried
// write that had succeeded: Applied. Any other 409 is Stale.
//
// A 400 for clock skew (APIError.ClockSkew: the device clock ran ahead of
// the node's by more than max_clock_skew) is not final at once: the Client
// restarts its HLC from the node's clock, re-stamps the queued updates that
// the old clock stamped from the future, and sends the update once more
// with a fresh version (Result.Cursor then carries that version, not u's).
// If the node refuses it again, or re-stamping leaves it as it was, it is
// dropped; it is never retried in a loop. Trackers made with
// Client.NewTracker stamp from the new clock.
//
// The error is non-nil only when the update was refused for good and is
// dropped: ErrInvalidArgument, ErrInvalidUpdate, or an *APIError for 400,
// 403 or 413.
func (c *Client) Report(ctx context.Context, profile string, u crdt.Update) (Result, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return Result{}, err
	}
	if err := ValidateUpdate(u); err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	held := c.heldLocked()
	backlog := c.queue.Len() > 0
	if held > 0 || backlog {
		c.enqueueLocked(profile, u)
	}
	c.mu.Unlock()
	if held > 0 {
		return Result{Outcome: Queued, RetryAfter: held,
			Cause: fmt.Errorf("%w (for another %v)", ErrRetryLater, held)}, nil
	}
	if backlog {
		return c.reportViaQueue(ctx, profile, u, true)
	}
	res, err := c.put(ctx, profile, u)
	if err == nil {
		return res, nil
	}
	if isClockSkew(err) {
		return c.reportRestamped(ctx, profile, u, err)
	}
	return c.queueOrDrop(profile, u, err)
}

// queueOrDrop ends a Report whose update did not get through: dropped
// (the error) when refused for good, else queued.
func (c *Client) queueOrDrop(profile string, u crdt.Update, err error) (Result, error) {
	if permanent(err) {
		return Result{}, err
	}
	c.mu.Lock()
	c.enqueueLocked(profile, u)
	c.mu.Unlock()
	c.log.Debug("playhead: update queued", "video", u.Video, "err", err)
	return Result{Outcome: Queued, RetryAfter: retryAfterOf(err), Cause: err}, nil
}

// reportRestamped ends a Report whose update the node refused for clock
// skew (cause): it resets the HLC, re-stamps the queue and u, and sends u
// once more — after the queue if anything waits there, so that the node
// gets the updates in order. A second refusal drops u (no loop: the flush
// it goes through may not reset the clock again).
func (c *Client) reportRestamped(ctx context.Context, profile string, u crdt.Update, cause error) (Result, error) {
	r := c.recoverClockSkew(cause)
	u, changed := r.restamp(u)
	if !changed { // in step with the node as far as the device knows: the
		return Result{}, cause // same version would be refused again
	}
	c.mu.Lock()
	backlog := c.queue.Len() > 0
	if backlog {
		c.enqueueLocked(profile, u)
	}
	c.mu.Unlock()
	if backlog {
		return c.reportViaQueue(ctx, profile, u, false)
	}
	res, err := c.put(ctx, profile, u)
	if err == nil {
		return res, nil
	}
	return c.queueOrDrop(profile, u, err)
}

// reportViaQueue flushes the queue, which holds u, and reports u's fate.
// mayReset allows the flush one clock reset (see Flush).
func (c *Client) reportViaQueue(ctx context.Context, profile string, u crdt.Update, mayReset bool) (Result, error) {
	w := &watch{profile: profile, u: u}
	_, err := c.flush(ctx, w, mayReset)
	switch {
	case w.done:
		return w.res, nil
	case w.dropped != nil:
		return Result{}, w.dropped
	}
	if err == nil { // superseded in the queue by a larger version
		err = errors.New("client: a newer update of this session is queued")
	}
	return Result{Outcome: Queued, RetryAfter: retryAfterOf(err), Cause: err}, nil
}

// put sends one update. The error is nil for 200 and 409.
func (c *Client) put(ctx context.Context, profile string, u crdt.Update) (Result, error) {
	r, err := c.do(ctx, http.MethodPut, profilePath(profile, "positions", u.Video), nil, api.NewUpdateBody(u, false), 0)
	if err != nil {
		return Result{}, err
	}
	switch r.status {
	case http.StatusOK:
		var wr api.WriteResult
		if err := r.decode(&wr); err != nil {
			return Result{}, err
		}
		c.observeCursor(wr.Cursor)
		c.saw(profile, wr.Cursor)
		return Result{Outcome: Applied, Cursor: wr.Cursor}, nil
	case http.StatusConflict:
		var sb api.StaleBody
		if err := r.decode(&sb); err != nil {
			return Result{}, err
		}
		c.observeCursor(sb.Cursor)
		c.saw(profile, sb.Cursor)
		return Result{Outcome: outcomeOf(u, api.WriteResult{Applied: sb.Applied, Cursor: sb.Cursor}), Cursor: sb.Cursor}, nil
	}
	return Result{}, c.writeError(r)
}

// outcomeOf classifies the node's answer to u: applied, or stale unless
// the cursor is u itself (a retry of a write that had succeeded).
func outcomeOf(u crdt.Update, wr api.WriteResult) Outcome {
	if wr.Applied || (wr.Cursor != nil && wr.Cursor.Version() == versionOf(u)) {
		return Applied
	}
	return Stale
}

// enqueueLocked adds u to the queue; what cannot be returned is logged.
func (c *Client) enqueueLocked(profile string, u crdt.Update) {
	if err := c.queue.Add(profile, u); err != nil {
		c.log.Warn("playhead: offline queue", "err", err)
	}
}

// hold makes writes wait d (Retry-After).
func (c *Client) hold(d time.Duration) {
	until := c.cfg.Clock.NowMs() + d.Milliseconds()
	c.mu.Lock()
	c.holdUntilMs = max(c.holdUntilMs, until)
	c.mu.Unlock()
}

// heldLocked returns how long writes must still wait, or 0.
func (c *Client) heldLocked() time.Duration {
	if rem := c.holdUntilMs - c.cfg.Clock.NowMs(); rem > 0 {
		return time.Duration(rem) * time.Millisecond
	}
	return 0
}
