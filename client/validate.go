package client

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// The device API's wire types are package api's; the SDK names the two
// every caller handles, a cursor and a push event, itself.

// Cursor is the resume cursor of one video as the API returns it
// (API.md "Cursor"): a Result's cursor, a push event's.
type Cursor = api.Cursor

// Event is one push event of a profile, as the WebSocket carries it and a
// Handler gets it (API.md "Push events"); see api.Event for its types.
type Event = api.Event

// ValidateUpdate checks what the API checks of an update before it is sent
// or queued: ids of 1–128 bytes of printable ASCII without '/', a duration
// above zero, a position in [0, duration], a known state, seq not below
// epoch. An update it refuses would be refused by the node with 400, so the
// SDK never queues one.
func ValidateUpdate(u crdt.Update) error {
	for _, f := range [...]struct{ name, v string }{
		{"video", u.Video}, {"device", u.Device}, {"session", u.Session},
	} {
		if err := checkID(ErrInvalidUpdate, f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"series_id", u.SeriesID}, {"next_video", u.NextVideo},
	} {
		if f.v != "" {
			if err := checkID(ErrInvalidUpdate, f.name, f.v); err != nil {
				return err
			}
		}
	}
	if len(u.Title) > api.MaxTitleLen || !utf8.ValidString(u.Title) {
		return fmt.Errorf("%w: title must be valid UTF-8 of at most %d bytes", ErrInvalidUpdate, api.MaxTitleLen)
	}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidUpdate, strings.TrimPrefix(err.Error(), "crdt: "))
	}
	return nil
}

// updateOf converts a wire update back (pathVideo names the video when the
// body does not) and checks it with ValidateUpdate: what the SDK takes back
// from its queue file.
func updateOf(b api.UpdateBody, pathVideo string) (crdt.Update, error) {
	u, err := b.Update(pathVideo)
	if err != nil {
		return crdt.Update{}, fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
	}
	return u, ValidateUpdate(u)
}

// checkID reports whether s is an API id: 1–128 bytes of printable ASCII
// (0x20–0x7E) without '/'.
// The error wraps base.
func checkID(base error, what, s string) error {
	if s == "" || len(s) > api.MaxIDLen {
		return fmt.Errorf("%w: %s must be 1-%d bytes, got %d", base, what, api.MaxIDLen, len(s))
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%w: %s %q is not allowed (it cannot appear as a URL path segment)", base, what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '/' {
			return fmt.Errorf("%w: %s has byte 0x%02x; ids are printable ASCII without '/'", base, what, c)
		}
	}
	return nil
}

// versionOf returns the version an update carries.
func versionOf(u crdt.Update) crdt.Version {
	return crdt.Version{Epoch: u.Epoch, Seq: u.Seq, Session: u.Session}
}
