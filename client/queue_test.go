package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// upd builds an update of video in session with version (epoch, seq) in
// milliseconds after baseMs.
func upd(video, session string, epochMs, seqMs, pos int64) crdt.Update {
	return crdt.Update{
		Video: video, Device: "tv", Session: session, PositionMs: pos, DurationMs: 3_600_000,
		State: crdt.StatePlaying, Epoch: crdt.NewHLC(baseMs+epochMs, 0), Seq: crdt.NewHLC(baseMs+seqMs, 0),
	}
}

func mustQueue(t *testing.T, s QueueStorage, limit int) *Queue {
	t.Helper()
	q, err := NewQueue(s, limit)
	if err != nil {
		t.Fatalf("NewQueue: %v", err)
	}
	return q
}

// TestQueueCoalesces: one update per (profile, video, session), the one
// with the largest version, whatever the order of arrival; metadata sent
// only with an older update survives the coalescing.
func TestQueueCoalesces(t *testing.T) {
	q := mustQueue(t, nil, 0)
	first := upd("ep-1", "s1", 0, 0, 0)
	first.Title, first.SeriesID = "Pilot", "show"
	adds := []struct {
		profile string
		u       crdt.Update
	}{
		{"kid", first},
		{"kid", upd("ep-1", "s1", 0, 10_000, 10_000)},
		{"kid", upd("ep-1", "s1", 0, 30_000, 30_000)},
		{"kid", upd("ep-1", "s1", 0, 20_000, 20_000)}, // late and older: ignored
		{"kid", upd("ep-1", "s2", 5_000, 5_000, 99)},  // another session: kept apart
		{"kid", upd("ep-2", "s1", 0, 40_000, 7)},      // another video
		{"mom", upd("ep-1", "s1", 0, 1_000, 1)},       // another profile
	}
	for _, a := range adds {
		if err := q.Add(a.profile, a.u); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 4 {
		t.Fatalf("Len = %d, want 4: %+v", q.Len(), q.Items())
	}
	var got crdt.Update
	for _, p := range q.Items() {
		if p.Profile == "kid" && p.Update.Video == "ep-1" && p.Update.Session == "s1" {
			got = p.Update
		}
	}
	if got.PositionMs != 30_000 || got.Seq != crdt.NewHLC(baseMs+30_000, 0) {
		t.Fatalf("kept %+v, want the largest version (pos 30000)", got)
	}
	if got.Title != "Pilot" || got.SeriesID != "show" {
		t.Fatalf("metadata of the first update lost: %+v", got)
	}
}

// TestQueueOrder: Items and Next return true version order, and Next
// takes the profile of the oldest update.
func TestQueueOrder(t *testing.T) {
	q := mustQueue(t, nil, 0)
	q.Add("kid", upd("ep-3", "s3", 50_000, 60_000, 3))
	q.Add("mom", upd("ep-9", "m1", 1_000, 1_000, 9))
	q.Add("kid", upd("ep-1", "s1", 10_000, 70_000, 1))
	q.Add("kid", upd("ep-2", "s2", 20_000, 20_000, 2))
	var order []string
	for _, p := range q.Items() {
		order = append(order, p.Profile+"/"+p.Update.Video)
	}
	if want := "[mom/ep-9 kid/ep-1 kid/ep-2 kid/ep-3]"; fmt.Sprint(order) != want {
		t.Fatalf("Items order %v, want %s", order, want)
	}
	profile, batch := q.Next(0)
	if profile != "mom" || len(batch) != 1 {
		t.Fatalf("Next = %s %d, want mom's single update", profile, len(batch))
	}
	q.Remove(profile, batch)
	profile, batch = q.Next(0)
	if profile != "kid" || len(batch) != 3 {
		t.Fatalf("Next = %s %d, want kid's 3 updates", profile, len(batch))
	}
	for i := 1; i < len(batch); i++ {
		if !versionOf(batch[i-1]).Less(versionOf(batch[i])) {
			t.Fatalf("batch not in version order at %d", i)
		}
	}
}

// TestQueueChunks: more than api.MaxBatch updates drain in chunks of at most
// api.MaxBatch, each in version order and after the previous one.
func TestQueueChunks(t *testing.T) {
	q := mustQueue(t, nil, 0)
	const n = 1203
	for i := n - 1; i >= 0; i-- { // added newest first
		q.Add("kid", upd("ep-1", fmt.Sprintf("s%04d", i), int64(i)*10, int64(i)*10, int64(i)))
	}
	var sizes []int
	var last crdt.Version
	for q.Len() > 0 {
		_, batch := q.Next(api.MaxBatch)
		sizes = append(sizes, len(batch))
		for _, u := range batch {
			if !last.Less(versionOf(u)) {
				t.Fatalf("version %v not after %v", versionOf(u), last)
			}
			last = versionOf(u)
		}
		if err := q.Remove("kid", batch); err != nil {
			t.Fatal(err)
		}
		if len(sizes) > 10 {
			t.Fatal("queue does not drain")
		}
	}
	if fmt.Sprint(sizes) != "[500 500 203]" {
		t.Fatalf("chunks %v, want [500 500 203]", sizes)
	}
}

// TestQueueRemoveKeepsNewer: an update queued again while its batch was
// in flight stays.
func TestQueueRemoveKeepsNewer(t *testing.T) {
	q := mustQueue(t, nil, 0)
	q.Add("kid", upd("ep-1", "s1", 0, 1000, 1))
	_, batch := q.Next(0)
	q.Add("kid", upd("ep-1", "s1", 0, 2000, 2)) // while the batch was in flight
	q.Remove("kid", batch)
	items := q.Items()
	if len(items) != 1 || items[0].Update.PositionMs != 2 {
		t.Fatalf("after Remove: %+v, want the newer update", items)
	}
}

// TestQueueLimit: beyond the limit the oldest update goes.
func TestQueueLimit(t *testing.T) {
	q := mustQueue(t, nil, 3)
	for i := 0; i < 5; i++ {
		err := q.Add("kid", upd(fmt.Sprintf("ep-%d", i), "s1", int64(i), int64(i), 0))
		if want := i >= 3; errors.Is(err, ErrQueueFull) != want {
			t.Fatalf("add %d: err %v", i, err)
		}
	}
	var videos []string
	for _, p := range q.Items() {
		videos = append(videos, p.Update.Video)
	}
	if fmt.Sprint(videos) != "[ep-2 ep-3 ep-4]" {
		t.Fatalf("kept %v", videos)
	}
}

// TestQueuePersists: a new Queue on the same file (the app restarted) holds
// what the old one held, metadata and all.
func TestQueuePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue")
	q := mustQueue(t, &FileStorage{Path: path}, 0)
	u := upd("ep-1", "s1", 0, 1000, 1)
	u.Title, u.NextVideo, u.State = "Pilot — “quoted”", "ep-2", crdt.StatePaused
	q.Add("kid", u)
	q.Add("kid", upd("ep-2", "s2", 500, 2000, 2))
	mom := upd("ep-3", "s3", 100, 100, 3)
	q.Add("mom", mom)
	q.Remove("mom", []crdt.Update{mom})

	q2 := mustQueue(t, &FileStorage{Path: path}, 0)
	if !reflect.DeepEqual(q.Items(), q2.Items()) {
		t.Fatalf("after restart:\n%+v\nwant\n%+v", q2.Items(), q.Items())
	}
	if q2.Len() != 2 {
		t.Fatalf("Len after restart = %d, want 2", q2.Len())
	}
}

// TestQueueCorruptFile: a torn, truncated, altered or foreign file gives an
// empty, usable queue and an error wrapping ErrCorruptQueue; the next save
// replaces the file.
func TestQueueCorruptFile(t *testing.T) {
	good := &MemStorage{}
	q := mustQueue(t, good, 0)
	q.Add("kid", upd("ep-1", "s1", 0, 1000, 1))
	q.Add("kid", upd("ep-2", "s1", 0, 2000, 2))
	valid, _ := good.Load()
	flipped := append([]byte(nil), valid...)
	flipped[len(flipped)-5] ^= 0x01 // still JSON-ish, wrong checksum
	cases := map[string][]byte{
		"truncated":    valid[:len(valid)/2],
		"header only":  valid[:len(queueMagic)+3],
		"flipped byte": flipped,
		"garbage":      []byte("\x00\x01\x02 not a queue"),
		"other json":   []byte(`[{"profile":"kid"}]`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "queue")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			q, err := NewQueue(&FileStorage{Path: path}, 0)
			if !errors.Is(err, ErrCorruptQueue) {
				t.Fatalf("err = %v, want ErrCorruptQueue", err)
			}
			if q == nil || q.Len() != 0 {
				t.Fatalf("want an empty queue, got %v", q)
			}
			if err := q.Add("kid", upd("ep-5", "s5", 0, 5, 5)); err != nil {
				t.Fatalf("Add after a corrupt load: %v", err)
			}
			q2 := mustQueue(t, &FileStorage{Path: path}, 0)
			if q2.Len() != 1 {
				t.Fatalf("after the rewrite: Len %d, want 1", q2.Len())
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		q := mustQueue(t, &FileStorage{Path: filepath.Join(t.TempDir(), "none")}, 0)
		if q.Len() != 0 {
			t.Fatal("not empty")
		}
	})
}

// TestQueueAtomicSave: a crash between writing the new file and renaming
// it leaves the old queue whole, and no temporary file is left behind by
// a save that completes.
func TestQueueAtomicSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "queue")
	fs := &FileStorage{Path: path}
	q := mustQueue(t, fs, 0)
	q.Add("kid", upd("ep-1", "s1", 0, 1000, 1))
	before, _ := os.ReadFile(path)

	crash := errors.New("power lost")
	var tmpSeen string
	fs.beforeRename = func(tmp string) error {
		tmpSeen = tmp
		if data, err := os.ReadFile(tmp); err != nil || len(data) == 0 {
			t.Errorf("temporary file not written before the rename: %v", err)
		}
		return crash
	}
	if err := q.Add("kid", upd("ep-2", "s1", 0, 2000, 2)); !errors.Is(err, crash) {
		t.Fatalf("Add with a crash: err %v", err)
	}
	if filepath.Dir(tmpSeen) != dir {
		t.Fatalf("temporary file %s is not in the queue's directory (rename would not be atomic)", tmpSeen)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatal("the queue file changed although the save crashed before the rename")
	}
	if q2 := mustQueue(t, &FileStorage{Path: path}, 0); q2.Len() != 1 {
		t.Fatalf("old queue after the crash: Len %d, want 1", q2.Len())
	}

	fs.beforeRename = nil
	if err := q.Add("kid", upd("ep-3", "s1", 0, 3000, 3)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "queue" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only the queue file", names)
	}
	if q3 := mustQueue(t, &FileStorage{Path: path}, 0); q3.Len() != 3 {
		t.Fatalf("after a good save: Len %d, want 3", q3.Len())
	}
}

// TestQueueSaveFailureKeepsMemory: a failed save (full disk) still queues
// the update in memory and says so.
func TestQueueSaveFailureKeepsMemory(t *testing.T) {
	m := &MemStorage{}
	q := mustQueue(t, m, 0)
	m.FailSaves(true)
	if err := q.Add("kid", upd("ep-1", "s1", 0, 1, 1)); err == nil {
		t.Fatal("no error from a failed save")
	}
	if q.Len() != 1 {
		t.Fatal("update lost from memory")
	}
}
