package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/playhead/playhead/client"
)

// The Go SDK's history controls against a real node: delete one entry, a
// video, everything; read and set history_paused.
func TestSDKHistoryControls(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Clock = nil })
	tok := e.token("acct-1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(client.Config{BaseURL: e.srv.URL, Token: tok, Device: "tv", RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	play := func(video, session string, pos int64) {
		t.Helper()
		tr := c.NewTracker(client.TrackerConfig{Session: session, Video: video})
		u, _ := tr.Start(c.NowMs(), pos, 2*hour)
		if res, err := c.Report(ctx, "me", u); err != nil || res.Outcome != client.Applied {
			t.Fatalf("report %s: %+v %v", video, res, err)
		}
	}
	play("a", "s-a1", 600_000)
	play("b", "s-b1", 600_000)
	play("c", "s-c1", 600_000)
	play("a", "s-a2", 900_000) // a second entry of video a

	page, err := c.History(ctx, "me", client.HistoryQuery{})
	if err != nil || len(page.Entries) != 4 {
		t.Fatalf("history: %+v %v", page, err)
	}
	// One entry: gone from history; the video's cursor stays.
	var bEntry string
	for _, en := range page.Entries {
		if en.Video == "b" {
			bEntry = en.ID
		}
	}
	if err := c.DeleteEntry(ctx, "me", bEntry); err != nil {
		t.Fatal(err)
	}
	var ae *client.APIError
	if err := c.DeleteEntry(ctx, "me", bEntry); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("deleting it again: %v, want a 404 APIError", err)
	}
	if cur, _ := c.Resume(ctx, "me", "b"); cur == nil {
		t.Fatal("deleting an entry removed the cursor")
	}
	// A video: both its entries and its cursor.
	if err := c.DeleteVideo(ctx, "me", "a"); err != nil {
		t.Fatal(err)
	}
	if cur, err := c.Resume(ctx, "me", "a"); cur != nil || err != nil {
		t.Fatalf("cursor of a deleted video: %+v %v", cur, err)
	}
	page, _ = c.History(ctx, "me", client.HistoryQuery{})
	if len(page.Entries) != 1 || page.Entries[0].Video != "c" {
		t.Fatalf("history after deleting b's entry and video a: %+v", page.Entries)
	}
	// Everything.
	if err := c.DeleteAllHistory(ctx, "me"); err != nil {
		t.Fatal(err)
	}
	page, _ = c.History(ctx, "me", client.HistoryQuery{})
	row, _ := c.ContinueWatching(ctx, "me", 0)
	if len(page.Entries) != 0 || len(row) != 0 {
		t.Fatalf("after delete all: history %+v, row %+v", page.Entries, row)
	}
	// history_paused: read, set, read back; a paused profile adds no entry.
	if p, err := c.HistoryPaused(ctx, "me"); err != nil || p {
		t.Fatalf("history_paused at first: %v %v", p, err)
	}
	if p, err := c.SetHistoryPaused(ctx, "me", true); err != nil || !p {
		t.Fatalf("set history_paused: %v %v", p, err)
	}
	if p, err := c.HistoryPaused(ctx, "me"); err != nil || !p {
		t.Fatalf("history_paused read back: %v %v", p, err)
	}
	play("d", "s-d1", 600_000)
	if page, _ = c.History(ctx, "me", client.HistoryQuery{}); len(page.Entries) != 0 {
		t.Fatalf("a paused history got entries: %+v", page.Entries)
	}
	// Bad ids never reach the node.
	if err := c.DeleteVideo(ctx, "me", "a/b"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("bad video id: %v", err)
	}
}

// A device on long-poll hears deletions: the one committed while its poll
// waits, and a delete-all committed while it was away.
func TestSDKLongPollHearsCleared(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Clock = nil })
	tok := e.token("acct-1")
	// This node refuses WebSockets, so the SDK falls back to long-poll.
	h := e.n.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerHasToken(r.Header, "Upgrade", "websocket") {
			http.Error(w, "no websockets here", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	newDev := func(device string) *client.Client {
		c, err := client.New(client.Config{BaseURL: srv.URL, Token: tok, Device: device, RequestTimeout: 2 * time.Second,
			WSFailuresBeforePoll: 1, BackoffBase: 10 * time.Millisecond, BackoffCap: 50 * time.Millisecond, LongPollWait: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tv, phone := newDev("tv"), newDev("phone")
	tr := tv.NewTracker(client.TrackerConfig{Session: "s1", Video: "ep-1"})
	u, _ := tr.Start(tv.NowMs(), 600_000, 2*hour)
	if _, err := tv.Report(ctx, "me", u); err != nil {
		t.Fatal(err)
	}
	events := make(chan client.Event, 16)
	sub, err := phone.Subscribe(ctx, "me", func(ev client.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next := func(what string) client.Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Type == "cleared" {
					return ev
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("no cleared event for %s (transport %q, err %v)", what, sub.Transport(), sub.Err())
			}
		}
	}
	for sub.Transport() != client.TransportLongPoll {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("never fell back to long-poll")
		}
	}
	time.Sleep(100 * time.Millisecond) // the poll is waiting
	if err := tv.DeleteVideo(ctx, "me", "ep-1"); err != nil {
		t.Fatal(err)
	}
	if ev := next("a video"); ev.Video != "ep-1" {
		t.Fatalf("cleared event %+v, want video ep-1", ev)
	}
	// Away: the subscription is closed; the history is deleted; a new
	// subscription from the old watermark hears it.
	after := sub.After()
	sub.Close()
	if err := tv.DeleteAllHistory(ctx, "me"); err != nil {
		t.Fatal(err)
	}
	sub, err = phone.SubscribeAfter(ctx, "me", after, func(ev client.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	if ev := next("delete all, while away"); ev.Video != "" {
		t.Fatalf("cleared event %+v, want the whole history", ev)
	}
}

func TestSDKRefusesQueuePathInMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := client.New(client.Config{BaseURL: "http://127.0.0.1:1", Device: "tv", QueuePath: filepath.Join(dir, "nope", "queue")})
	if !errors.Is(err, client.ErrBadConfig) {
		t.Fatalf("queue in a missing directory: %v, want ErrBadConfig", err)
	}
	if _, err := client.New(client.Config{BaseURL: "http://127.0.0.1:1", Device: "tv", QueuePath: dir}); !errors.Is(err, client.ErrBadConfig) {
		t.Fatalf("queue path that is a directory: %v, want ErrBadConfig", err)
	}
	if _, err := client.New(client.Config{BaseURL: "http://127.0.0.1:1", Device: "tv", QueuePath: filepath.Join(dir, "queue")}); err != nil {
		t.Fatal(err)
	}
}
