package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors returned by this package. Test with errors.Is; the wrapped text
// says what happened.
var (
	// ErrInvalidUpdate reports an update the API would refuse with 400
	// (bad id, position outside [0, duration], seq below epoch, …). It is
	// neither sent nor queued.
	ErrInvalidUpdate = errors.New("client: invalid update")
	// ErrInvalidArgument reports a bad profile or video id, or a nil
	// handler, passed to a Client method.
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrOffline reports that the node could not be reached (network error,
	// timeout, cancelled request, 5xx). Writes are queued; reads fail.
	ErrOffline = errors.New("client: node unreachable")
	// ErrRetryLater reports that the node asked to wait (429 or 503 with
	// Retry-After) and the wait has not ended. Writes are queued.
	ErrRetryLater = errors.New("client: node asked to retry later")
	// ErrCorruptQueue reports a queue file that cannot be read back (torn,
	// truncated or not a queue file). The queue starts empty; the error is
	// for logging only.
	ErrCorruptQueue = errors.New("client: offline queue file is corrupt")
	// ErrQueueFull reports that the queue was at its limit and dropped its
	// oldest update to take a new one.
	ErrQueueFull = errors.New("client: offline queue full, oldest update dropped")
	// ErrBadConfig reports a Config that cannot work.
	ErrBadConfig = errors.New("client: bad config")
	// ErrProtocol reports an answer that does not follow API.md.
	ErrProtocol = errors.New("client: unexpected answer from node")
)

// APIError is an error answer of the node: its HTTP status and the body's
// code (an api.Code* constant) and message.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the Retry-After header's wait (429, 503), else 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("client: node answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether retrying the same request later may succeed:
// 401 (after a token refresh), 408, 429 and every 5xx.
func (e *APIError) Temporary() bool {
	switch {
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusRequestTimeout,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}
