package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/playhead/playhead/api"
)

// This file holds the viewer's controls over history: delete one entry, a
// video or everything, and the history_paused setting (docs/API.md
// "Endpoints"). Deletions are not queued offline: they fail with ErrOffline
// (or ErrRetryLater on 429/503), and the app decides whether to ask again.

// DeleteEntry deletes one history entry (DELETE …/history/{entry_id}): the
// entry's id is api.HistoryEntry.ID from History. The video's resume
// position stays. An entry that does not exist (or no longer does) is an
// *APIError with Status 404.
func (c *Client) DeleteEntry(ctx context.Context, profile, entryID string) error {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return err
	}
	if err := checkID(ErrInvalidArgument, "entry id", entryID); err != nil {
		return err
	}
	return c.deleteHistory(ctx, profilePath(profile, "history", entryID), nil)
}

// DeleteVideo deletes every history entry of video and its resume position
// (DELETE …/history?video=ID). Positions of the video reported before the
// call — queued offline ones too — stay deleted; a later one starts anew.
func (c *Client) DeleteVideo(ctx context.Context, profile, video string) error {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return err
	}
	if err := checkID(ErrInvalidArgument, "video", video); err != nil {
		return err
	}
	if err := c.deleteHistory(ctx, profilePath(profile, "history"), url.Values{"video": {video}}); err != nil {
		return err
	}
	c.forget(profile, video)
	return nil
}

// DeleteAllHistory deletes the profile's whole history and every resume
// position (DELETE …/history).
func (c *Client) DeleteAllHistory(ctx context.Context, profile string) error {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return err
	}
	if err := c.deleteHistory(ctx, profilePath(profile, "history"), nil); err != nil {
		return err
	}
	c.forget(profile, "")
	return nil
}

func (c *Client) deleteHistory(ctx context.Context, path string, q url.Values) error {
	r, err := c.do(ctx, http.MethodDelete, path, q, nil, 0)
	if err != nil {
		return err
	}
	if r.status != http.StatusNoContent && r.status != http.StatusOK {
		return c.apiError(r)
	}
	return nil
}

// HistoryPaused reads the profile's history_paused setting (GET
// …/settings): while it is true, playback still saves resume positions but
// adds no history entries.
func (c *Client) HistoryPaused(ctx context.Context, profile string) (bool, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return false, err
	}
	var s api.Settings
	if err := c.get(ctx, profilePath(profile, "settings"), nil, &s); err != nil {
		return false, err
	}
	return s.HistoryPaused, nil
}

// SetHistoryPaused sets history_paused (PUT …/settings) and returns the
// value now in force.
func (c *Client) SetHistoryPaused(ctx context.Context, profile string, paused bool) (bool, error) {
	if err := checkID(ErrInvalidArgument, "profile", profile); err != nil {
		return false, err
	}
	r, err := c.do(ctx, http.MethodPut, profilePath(profile, "settings"), nil, api.Settings{HistoryPaused: paused}, 0)
	if err != nil {
		return false, err
	}
	if r.status != http.StatusOK {
		return false, c.apiError(r)
	}
	var s api.Settings
	if err := r.decode(&s); err != nil {
		return false, err
	}
	return s.HistoryPaused, nil
}

// checkQueueDir refuses a QueuePath whose directory does not exist (or is
// not a directory): the queue would otherwise never be saved, silently.
func checkQueueDir(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: QueuePath %q: directory %s does not exist; create it first (os.MkdirAll) or leave QueuePath empty for a memory-only queue", ErrBadConfig, path, dir)
	case err != nil:
		return fmt.Errorf("%w: QueuePath %q: %v", ErrBadConfig, path, err)
	case !st.IsDir():
		return fmt.Errorf("%w: QueuePath %q: %s is not a directory", ErrBadConfig, path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%w: QueuePath %q is a directory; name a file in it", ErrBadConfig, path)
	}
	return nil
}
