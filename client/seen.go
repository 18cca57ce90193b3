package client

import (
	"context"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// Session-consistent reads, the device's side. The client remembers the
// largest version of each cursor it has seen — read, pushed, or answered
// to its own writes — and sends it with a resume read (Playhead-Seen): the
// node then never answers an older one (503 while no reachable replica
// has it; the read is retried like any 503). An answer older than what
// reached the device while the read was in flight is read again, and a
// push older than what the device has seen is dropped, so the app never
// sees a position go back.

// seenHeader is the request header of the version a resume read must not
// go below: "<epoch> <seq> <session>".
const seenHeader = "Playhead-Seen"

type seenKey struct{ profile, video string }

// saw records that the device was shown cur (nil: nothing).
func (c *Client) saw(profile string, cur *Cursor) {
	if cur == nil || cur.Video == "" {
		return
	}
	v := cur.Version()
	c.mu.Lock()
	defer c.mu.Unlock()
	k := seenKey{profile, cur.Video}
	if c.seen == nil {
		c.seen = map[seenKey]crdt.Version{}
	}
	if c.seen[k].Less(v) {
		c.seen[k] = v
	}
}

// seenOf returns the largest version of the video's cursor seen.
func (c *Client) seenOf(profile, video string) crdt.Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[seenKey{profile, video}]
}

// forget drops what was seen of video ("" for every video of the
// profile) after a delete: a later cursor may carry a smaller version.
func (c *Client) forget(profile, video string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.seen {
		if k.profile == profile && (video == "" || k.video == video) {
			delete(c.seen, k)
		}
	}
}

// olderThanSeen reports whether a pushed cursor is below what the device
// has already seen of its video (outside the stream too).
func (c *Client) olderThanSeen(profile string, ev *Event) bool {
	if ev.Type != api.EventCursor || ev.Cursor == nil {
		return false
	}
	return ev.Cursor.Version().Less(c.seenOf(profile, ev.Cursor.Video))
}

type headersKey struct{}

// withHeader adds a request header to the requests made with ctx.
func withHeader(ctx context.Context, name, value string) context.Context {
	return context.WithValue(ctx, headersKey{}, [2]string{name, value})
}

func formatSeen(v crdt.Version) string {
	return v.Epoch.String() + " " + v.Seq.String() + " " + v.Session
}
