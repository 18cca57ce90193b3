package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// This file holds the reads: resume cursor, continue watching, history.

// Resume returns the cursor of video: where to start playback
// (Cursor.ResumeMs). It returns nil and no error when the profile has no
// cursor for video (404).
func (c *Client) Resume(ctx context.Context, profile, video string) (*Cursor, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return nil, err
	}
	if err := checkID(ErrInvalidArgument, "video", video); err != nil {
		return nil, err
	}
	// An answer older than a version that reached the device while the
	// read was in flight is read again, once.
	for attempt := 0; ; attempt++ {
		seen := c.seenOf(profile, video)
		rctx := ctx
		if !seen.IsZero() {
			rctx = withHeader(ctx, seenHeader, formatSeen(seen))
		}
		r, err := c.do(rctx, http.MethodGet, profilePath(profile, "positions", video), nil, nil, 0)
		if err != nil {
			return nil, err
		}
		var cur *Cursor
		switch r.status {
		case http.StatusOK:
			cur = new(Cursor)
			if err := r.decode(cur); err != nil {
				return nil, err
			}
			c.observeCursor(cur)
		case http.StatusNotFound:
		default:
			return nil, c.apiError(r)
		}
		now := c.seenOf(profile, video)
		var got crdt.Version
		if cur != nil {
			got = cur.Version()
		}
		if got.Less(now) && seen.Less(now) && attempt == 0 {
			continue
		}
		c.saw(profile, cur)
		return cur, nil
	}
}

// ContinueWatching returns the profile's "continue watching" row, newest
// first; limit 0 takes the node's default (20), at most 50.
func (c *Client) ContinueWatching(ctx context.Context, profile string, limit int) ([]Cursor, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return nil, err
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.ContinueWatchingResponse
	if err := c.get(ctx, profilePath(profile, "continue-watching"), q, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// HistoryQuery selects a page of history. Zero fields are left out.
type HistoryQuery struct {
	Limit    int
	Page     string // api.HistoryPage.NextPage of the previous page
	From, To time.Time
	Q        string // matches the video id and the title
}

// History returns one page of the profile's history, newest first.
func (c *Client) History(ctx context.Context, profile string, hq HistoryQuery) (api.HistoryPage, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return api.HistoryPage{}, err
	}
	q := url.Values{}
	if hq.Limit > 0 {
		q.Set("limit", strconv.Itoa(hq.Limit))
	}
	if hq.Page != "" {
		q.Set("page", hq.Page)
	}
	if !hq.From.IsZero() {
		q.Set("from", hq.From.UTC().Format(time.RFC3339Nano))
	}
	if !hq.To.IsZero() {
		q.Set("to", hq.To.UTC().Format(time.RFC3339Nano))
	}
	if hq.Q != "" {
		q.Set("q", hq.Q)
	}
	var out api.HistoryPage
	err := c.get(ctx, profilePath(profile, "history"), q, &out)
	return out, err
}

// get reads a 200 JSON answer into v.
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	r, err := c.do(ctx, http.MethodGet, path, q, nil, 0)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return c.apiError(r)
	}
	return r.decode(v)
}
