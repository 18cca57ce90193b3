package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// HeaderHLC is the response header that carries the node's HLC.
const HeaderHLC = "Playhead-HLC"

// maxResponseBytes bounds what the SDK reads of one answer.
const maxResponseBytes = 8 << 20

// response is a node's answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// profilePath returns /v1/profiles/{profile} followed by the escaped
// segments.
func profilePath(profile string, segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1/profiles/")
	b.WriteString(url.PathEscape(profile))
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// url returns the absolute URL of path with query.
func (c *Client) url(path string, query url.Values) string {
	u := strings.TrimSuffix(c.cfg.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// do sends one request and reads the answer. body (if not nil) goes as
// JSON. The request gets RequestTimeout plus extra. Every answer's
// Playhead-HLC is observed. A request that gets no answer fails with
// ErrOffline; any answer, error statuses included, is returned.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, extra time.Duration) (*response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+extra)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	c.authorize(req.Header)
	req.Header.Set("Accept", "application/json")
	if h, ok := ctx.Value(headersKey{}).([2]string); ok {
		req.Header.Set(h[0], h[1])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrOffline, method, path, err)
	}
	defer res.Body.Close()
	c.observeHeader(res.Header)
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: reading the answer: %w", ErrOffline, method, path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}, nil
}

// authorize sets the bearer token.
func (c *Client) authorize(h http.Header) {
	if tok := c.token(); tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
}

// decode reads a 2xx answer's JSON into v.
func (r *response) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("%w: status %d: %v", ErrProtocol, r.status, err)
	}
	return nil
}

// writeError is apiError for an answer to a write: on 429 and 503 the
// Client also holds writes back for the Retry-After wait.
func (c *Client) writeError(r *response) error {
	err := c.apiError(r)
	if ra := retryAfterOf(err); ra > 0 {
		c.hold(ra)
	}
	return err
}

// apiError turns an error answer into an *APIError. On 429 and 503 it
// carries the Retry-After wait, and the error wraps ErrRetryLater.
func (c *Client) apiError(r *response) error {
	e := &APIError{Status: r.status}
	var body api.ErrorBody
	if json.Unmarshal(r.body, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code, e.Message = "", strings.TrimSpace(string(truncateBytes(r.body, 200)))
	}
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		e.RetryAfter = c.retryAfter(r.header.Get("Retry-After"))
		return fmt.Errorf("%w: %w", ErrRetryLater, e)
	}
	return e
}

// retryAfter parses a Retry-After value: seconds or an HTTP date. Missing
// or unparsable: DefaultRetryAfter.
func (c *Client) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return c.cfg.DefaultRetryAfter
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 86400 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Duration(t.UnixMilli()-c.cfg.Clock.NowMs()) * time.Millisecond; d > 0 {
			return d
		}
		return 0
	}
	return c.cfg.DefaultRetryAfter
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// observeHeader keeps the device's HLC, and its estimate of the node's
// physical clock, in step with the node's Playhead-HLC.
func (c *Client) observeHeader(h http.Header) {
	v := h.Get(HeaderHLC)
	if v == "" {
		return
	}
	hlc, err := crdt.ParseHLC(v)
	if err != nil || hlc == 0 {
		return
	}
	diff := hlc.Physical() - c.cfg.Clock.NowMs()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock.Load().Observe(hlc)
	c.serverHLC = max(c.serverHLC, hlc)
	c.seenHLC = max(c.seenHLC, hlc)
	if d := diff - c.offsetMs; d > c.cfg.ClockSyncThreshold.Milliseconds() || -d > c.cfg.ClockSyncThreshold.Milliseconds() {
		c.offsetMs = diff
	}
}

// observeCursor keeps the device's HLC above every version it has seen, so
// its next epoch beats them.
func (c *Client) observeCursor(cur *Cursor) {
	if cur == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clk := c.clock.Load()
	clk.Observe(cur.Seq)
	clk.Observe(cur.Epoch)
	clk.Observe(cur.UpdatedHLC)
	c.seenHLC = max(c.seenHLC, cur.Seq, cur.Epoch, cur.UpdatedHLC)
}

// permanent reports whether the node refused a write for good: 400, 403,
// 413. Retrying it can never succeed.
func permanent(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

// retryAfterOf returns the Retry-After wait an error carries, else 0.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
