package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// apiError is an error answered to the device: status, code and a message
// that says what to fix.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter int // seconds; set on 429 and 503
	cause      error
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.cause }

func errBadRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errUnauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: api.CodeUnauthorized, msg: msg}
}

func errForbidden(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: api.CodeForbidden, msg: msg}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: api.CodeNotFound, msg: fmt.Sprintf(format, args...)}
}

func errTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge,
		msg: fmt.Sprintf("request body is over %d bytes; send fewer updates per batch", limit)}
}

func errRateLimited(retryAfter int) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: api.CodeRateLimited, retryAfter: retryAfter,
		msg: fmt.Sprintf("too many requests; retry after %d s", retryAfter)}
}

func errUnavailable(msg string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: api.CodeUnavailable, msg: msg, retryAfter: 1, cause: cause}
}

// serviceError maps an error of gossip.Service to what the device gets.
// Validation errors say what to fix; anything unexpected is 503 (retrying is
// safe: writes are idempotent by version) and logged by the caller.
func serviceError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, crdt.ErrClockSkew), errors.Is(err, crdt.ErrBadPosition), errors.Is(err, crdt.ErrBadState),
		errors.Is(err, crdt.ErrBadVersion), errors.Is(err, crdt.ErrEpochBehind):
		msg := updateMessage(err)
		var ue *gossip.UpdateError
		if errors.As(err, &ue) {
			msg = fmt.Sprintf("updates[%d] (video %q): %s", ue.Index, ue.Video, msg)
		}
		return &apiError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: msg, cause: err}
	case errors.Is(err, gossip.ErrNeedDuration):
		return &apiError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: "duration_ms is required: the video has no resume position yet", cause: err}
	case errors.Is(err, gossip.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: api.CodeNotFound, msg: "not found", cause: err}
	case errors.Is(err, gossip.ErrUnavailable):
		return errUnavailable("not enough replicas reachable; retry (nothing is lost by retrying)", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable("request cancelled; retry", err)
	}
	return errUnavailable("internal error; retry", err)
}

// skewDetail finds the "N ms ahead (allowed M ms)" of crdt.ErrClockSkew.
var skewDetail = regexp.MustCompile(`(\d+) ms ahead \(allowed (\d+) ms\)`)

// updateMessage says in the API's words (field names of docs/API.md, no
// package prefixes) why an update was refused.
func updateMessage(err error) string {
	switch {
	case errors.Is(err, crdt.ErrClockSkew):
		ahead := "too far"
		if m := skewDetail.FindStringSubmatch(err.Error()); m != nil {
			ahead = m[1] + " ms"
		}
		return "epoch or seq is " + ahead + " ahead of the node's clock (max_clock_skew); fix the device clock (keep it in step with the Playhead-HLC header) or leave epoch and seq out and let the node stamp them"
	case errors.Is(err, crdt.ErrBadPosition):
		return "position_ms must lie in [0, duration_ms] and duration_ms must be > 0"
	case errors.Is(err, crdt.ErrBadState):
		return "state must be playing, paused, stopped or completed"
	case errors.Is(err, crdt.ErrBadVersion):
		return "seq must not be below epoch"
	case errors.Is(err, crdt.ErrEpochBehind):
		return "epoch lies below the last seq of this session: start a new epoch from a clock past every seq the session sent, or leave epoch out and let the node stamp it"
	}
	return err.Error()
}

// singleUpdate turns a refusal of the only update of a request into a
// plain refusal: a single write's message names no batch index.
func singleUpdate(err error) error {
	var ue *gossip.UpdateError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// writeError answers e as JSON, with Retry-After when it has one.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.status, api.ErrorBody{Error: api.ErrorDetail{Code: e.code, Message: e.msg}})
}
