package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/playhead/playhead/client"
	"github.com/playhead/playhead/crdt"
)

// The device SDK against a real node (wall clock on both sides): the TV
// reports through a Tracker, the phone hears the push and resumes at the
// same second; a seek backwards on the phone wins over the TV's later
// position; an update queued while the node was unreachable is delivered by
// Flush once it is back.
func TestSDKAgainstNode(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Clock = nil })
	tok := e.token("acct-1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	newDevice := func(device, base string, queue ...string) *client.Client {
		q := filepath.Join(t.TempDir(), "queue")
		if len(queue) > 0 {
			q = queue[0]
		}
		c, err := client.New(client.Config{BaseURL: base, Token: tok, Device: device,
			QueuePath: q, RequestTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tv, phone := newDevice("tv", e.srv.URL), newDevice("phone", e.srv.URL)

	pushed := make(chan client.Event, 16)
	sub, err := phone.Subscribe(ctx, "me", func(ev client.Event) { pushed <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(200 * time.Millisecond) // let the subscription connect

	up := func(u crdt.Update, ok bool) crdt.Update {
		t.Helper()
		if !ok {
			t.Fatal("tracker produced no update")
		}
		return u
	}
	report := func(c *client.Client, u crdt.Update) client.Result {
		t.Helper()
		res, err := c.Report(ctx, "me", u)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	trTV := tv.NewTracker(client.TrackerConfig{Session: "s-tv", Video: "film", Meta: client.Metadata{Title: "Film"}})
	report(tv, up(trTV.Start(tv.NowMs(), 0, 2*hour)))
	if res := report(tv, up(trTV.Pause(tv.NowMs(), 754_000))); res.Outcome != client.Applied {
		t.Fatalf("pause: %+v", res)
	}

	deadline := time.After(time.Second)
	for got := false; !got; {
		select {
		case ev := <-pushed:
			got = ev.Type == "cursor" && ev.Cursor != nil && ev.Cursor.PositionMs == 754_000
		case <-deadline:
			t.Fatal("the phone heard no push of the TV's pause within 1 s")
		}
	}
	cur, err := phone.Resume(ctx, "me", "film")
	if err != nil || cur == nil || cur.ResumeMs != 754_000 {
		t.Fatalf("phone resume: %+v, %v", cur, err)
	}

	// The TV plays on; then the phone takes over and seeks back. The TV's
	// next heartbeat, in its superseded session, cannot drag the position
	// forward again.
	report(tv, up(trTV.Play(tv.NowMs(), 754_000)))
	trPhone := phone.NewTracker(client.TrackerConfig{Session: "s-phone", Video: "film"})
	report(phone, up(trPhone.Start(phone.NowMs(), cur.ResumeMs, 2*hour)))
	report(phone, up(trPhone.SeekTo(phone.NowMs(), 600_000)))
	hb := up(trTV.Observe(tv.NowMs()+11_000, 765_000, crdt.StatePlaying))
	if res := report(tv, hb); res.Outcome != client.Stale {
		t.Fatalf("superseded TV heartbeat: %+v, want stale", res)
	}
	if cur, _ = tv.Resume(ctx, "me", "film"); cur == nil || cur.PositionMs != 600_000 || cur.Session != "s-phone" {
		t.Fatalf("after the phone's seek back: %+v", cur)
	}

	// Offline: the laptop reports while the node is unreachable; the update
	// waits in its queue and Flush delivers it.
	queue := filepath.Join(t.TempDir(), "laptop-queue")
	laptop := newDevice("laptop", "http://127.0.0.1:1", queue) // nothing listens there
	trL := laptop.NewTracker(client.TrackerConfig{Session: "s-laptop", Video: "doc"})
	if res := report(laptop, up(trL.Start(laptop.NowMs(), 5_000, hour))); res.Outcome != client.Queued {
		t.Fatalf("offline report: %+v", res)
	}
	if laptop.Queued() != 1 {
		t.Fatalf("queued %d", laptop.Queued())
	}
	// The app restarts, now online: the queue file survived and is replayed.
	back := newDevice("laptop", e.srv.URL, queue)
	if back.Queued() != 1 {
		t.Fatalf("queue after restart: %d", back.Queued())
	}
	if _, err := back.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if back.Queued() != 0 {
		t.Fatalf("still queued after flush: %d", back.Queued())
	}
	if cur, _ := phone.Resume(ctx, "me", "doc"); cur == nil || cur.PositionMs != 5_000 || cur.Device != "laptop" {
		t.Fatalf("replayed offline update: %+v", cur)
	}
}
