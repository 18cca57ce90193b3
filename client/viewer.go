package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/playhead/playhead/api"
)

// This file holds the viewer's controls (docs/API.md "Viewer controls"):
// hide from continue watching, mark watched or unwatched, export.

// Hide takes video (and the next-episode row it opens) off the profile's
// continue watching, on every device, until a position report made after
// the hide. The resume position stays readable. Hiding twice is harmless;
// after an ErrRetryLater (503) the hide may or may not have happened, and
// retrying is safe.
func (c *Client) Hide(ctx context.Context, profile, video string) error {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return err
	}
	if err := checkID(ErrInvalidArgument, "video", video); err != nil {
		return err
	}
	r, err := c.do(ctx, http.MethodDelete, profilePath(profile, "continue-watching", video), nil, nil, 0)
	if err != nil {
		return err
	}
	if r.status != http.StatusNoContent {
		return c.writeError(r)
	}
	return nil
}

// MarkOptions are the optional parts of a mark.
type MarkOptions struct {
	// DurationMs is the video's duration; required when the video has no
	// resume position yet, else the cursor's is kept.
	DurationMs int64
	// Device is recorded as the cursor's device.
	Device string
}

// MarkWatched marks video watched (the cursor becomes completed: resume
// at 0, off continue watching, next episode shown) or, with watched false,
// unwatched (position 0, completion cleared). It takes the video over like
// a new session; history is not written. It returns the cursor now stored.
func (c *Client) MarkWatched(ctx context.Context, profile, video string, watched bool, opt MarkOptions) (*Cursor, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return nil, err
	}
	if err := checkID(ErrInvalidArgument, "video", video); err != nil {
		return nil, err
	}
	if opt.DurationMs < 0 {
		return nil, fmt.Errorf("%w: duration_ms must be > 0", ErrInvalidArgument)
	}
	body := api.MarkRequest{Watched: &watched, Device: opt.Device}
	if opt.DurationMs > 0 {
		body.DurationMs = &opt.DurationMs
	}
	r, err := c.do(ctx, http.MethodPut, profilePath(profile, "positions", video, "watched"), nil, body, 0)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, c.writeError(r)
	}
	var res api.WriteResult
	if err := r.decode(&res); err != nil {
		return nil, err
	}
	if res.Cursor != nil {
		c.observeCursor(res.Cursor)
		c.saw(profile, res.Cursor)
	}
	return res.Cursor, nil
}

// maxExportLine is the longest export line the SDK reads.
const maxExportLine = 1 << 20

// Export streams everything stored for the profile that a viewer can see
// (settings, every cursor, every history entry) and calls fn for each line,
// in order, holding one line at a time. An error from fn stops the export
// and is returned. An export the node cut short (no "end" line) fails with
// ErrProtocol: export again.
func (c *Client) Export(ctx context.Context, profile string, fn func(api.ExportLine) error) error {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return err
	}
	path := profilePath(profile, "export")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, nil), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	c.authorize(req.Header)
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrOffline, path, err)
	}
	defer res.Body.Close()
	c.observeHeader(res.Header)
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
		return c.apiError(&response{status: res.StatusCode, header: res.Header, body: data})
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 4096), maxExportLine)
	ended := false
	for sc.Scan() {
		var l api.ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%w: export line: %v", ErrProtocol, err)
		}
		if l.Type == api.ExportEnd {
			ended = true
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrOffline, path, err)
	}
	if !ended {
		return fmt.Errorf("%w: the export was cut short (no end line); export again", ErrProtocol)
	}
	return nil
}
