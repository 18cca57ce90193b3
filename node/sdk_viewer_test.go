package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/client"
)

// The SDK's viewer controls against a real node: hide, mark watched and
// unwatched, export; and the hidden push reaches a subscribed device.
func TestSDKViewerControls(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Clock = nil })
	tok := e.token("acct-1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(client.Config{BaseURL: e.srv.URL, Token: tok, Device: "tv",
		QueuePath: filepath.Join(t.TempDir(), "queue"), RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pushed := make(chan client.Event, 16)
	sub, err := c.Subscribe(ctx, "me", func(ev client.Event) { pushed <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(200 * time.Millisecond)

	e.mustPut(tok, "me", "film", upd(10*minute, 100*minute, "tv", "s1"))
	if err := c.Hide(ctx, "me", "film"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-pushed:
			got = ev.Type == api.EventHidden && ev.Video == "film"
		case <-deadline:
			t.Fatal("no hidden event reached the SDK's handler")
		}
	}
	if row, err := c.ContinueWatching(ctx, "me", 20); err != nil || len(row) != 0 {
		t.Fatalf("row after Hide: %v %v", row, err)
	}

	cur, err := c.MarkWatched(ctx, "me", "ep-1", true, client.MarkOptions{DurationMs: 100 * minute})
	if err != nil || cur == nil || !cur.Completed || cur.ResumeMs != 0 {
		t.Fatalf("MarkWatched: %+v %v", cur, err)
	}
	cur, err = c.MarkWatched(ctx, "me", "ep-1", false, client.MarkOptions{})
	if err != nil || cur == nil || cur.Completed || cur.PositionMs != 0 {
		t.Fatalf("MarkWatched(false): %+v %v", cur, err)
	}
	if _, err := c.MarkWatched(ctx, "me", "never", true, client.MarkOptions{}); !errors.As(err, new(*client.APIError)) {
		t.Fatalf("mark without a duration: %v, want the node's 400", err)
	}

	var types []string
	if err := c.Export(ctx, "me", func(l api.ExportLine) error { types = append(types, l.Type); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(types) != 5 || types[0] != "settings" || types[len(types)-1] != "end" {
		t.Fatalf("export lines %v, want settings, 2 cursors, 1 entry, end", types)
	}
}
