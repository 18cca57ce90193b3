package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// DefaultQueueLimit is the most updates the offline queue holds.
const DefaultQueueLimit = 10_000

// Queue is the offline queue: the updates not yet delivered, kept across
// app restarts. It is a plain data structure — no goroutines, no clock —
// that saves itself through a QueueStorage after every change.
//
// Coalescing: per (profile, video, session) only the update with the
// largest version is kept. The cursor is a max-register and a history entry
// is one per session, so the newest update of each session carries all
// that replaying the older ones would leave on the node; metadata the
// newest leaves out is carried over from the ones it replaces.
//
// Draining: Next returns one profile's updates in true version order (the
// order they happened), at most api.MaxBatch; after the node answered, Remove
// drops what was delivered. An update queued again meanwhile with a larger
// version stays.
//
// Not safe for concurrent use (Client serializes calls).
type Queue struct {
	store QueueStorage
	limit int
	// items holds the queued updates.
	// Invariant: at most one per key, the one with the largest version.
	items map[queueKey]crdt.Update
}

type queueKey struct{ profile, video, session string }

// Pending is one queued update and the profile it belongs to.
type Pending struct {
	Profile string
	Update  crdt.Update
}

// NewQueue loads the queue from store (nil: memory only) and returns it.
// limit bounds its length (<= 0: DefaultQueueLimit). A store that cannot be
// read, or holds a torn or foreign file, yields an empty, usable queue and
// an error wrapping ErrCorruptQueue (or the read error) that the caller may
// log and otherwise ignore; the next save replaces the bad file.
func NewQueue(store QueueStorage, limit int) (*Queue, error) {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	q := &Queue{store: store, limit: limit, items: map[queueKey]crdt.Update{}}
	if store == nil {
		return q, nil
	}
	data, err := store.Load()
	if err != nil {
		return q, fmt.Errorf("client: reading the offline queue: %w", err)
	}
	if len(data) == 0 {
		return q, nil
	}
	items, err := decodeQueue(data)
	if err != nil {
		return q, err
	}
	for _, p := range items {
		q.put(p.Profile, p.Update)
	}
	q.trim()
	return q, nil
}

// Len returns the number of queued updates.
func (q *Queue) Len() int { return len(q.items) }

// Add queues u for profile and saves the queue. u is kept unless an update
// of the same (profile, video, session) with an equal or larger version is
// queued already. The error reports a failed save (u is queued in memory
// all the same) or, with ErrQueueFull, that the oldest update was dropped
// to make room: something to log.
func (q *Queue) Add(profile string, u crdt.Update) error {
	if !q.put(profile, u) {
		return nil
	}
	full := q.trim()
	err := q.save()
	if full && err == nil {
		err = ErrQueueFull
	}
	return err
}

// Next returns the next batch to send: the profile of the oldest queued
// update and that profile's updates in version order, at most n (<= 0 or
// above api.MaxBatch: api.MaxBatch). It does not remove them.
func (q *Queue) Next(n int) (profile string, batch []crdt.Update) {
	if n <= 0 || n > api.MaxBatch {
		n = api.MaxBatch
	}
	all := q.Items()
	if len(all) == 0 {
		return "", nil
	}
	profile = all[0].Profile
	for _, p := range all {
		if p.Profile != profile {
			continue
		}
		batch = append(batch, p.Update)
		if len(batch) == n {
			break
		}
	}
	return profile, batch
}

// Remove drops delivered updates of profile — each one only if the queued
// update of its (video, session) has the same version (a larger one queued
// since stays) — and saves the queue.
func (q *Queue) Remove(profile string, delivered []crdt.Update) error {
	changed := false
	for _, u := range delivered {
		k := queueKey{profile, u.Video, u.Session}
		if cur, ok := q.items[k]; ok && versionOf(cur) == versionOf(u) {
			delete(q.items, k)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return q.save()
}

// Has reports whether exactly u (same version) is queued for profile.
func (q *Queue) Has(profile string, u crdt.Update) bool {
	cur, ok := q.items[queueKey{profile, u.Video, u.Session}]
	return ok && versionOf(cur) == versionOf(u)
}

// replace puts each of ups in place of the queued update with the same
// key (profile, video, session), whatever their versions, and saves the
// queue. Used to re-stamp the queue after a clock-skew refusal (see
// recoverClockSkew).
func (q *Queue) replace(ups []Pending) error {
	if len(ups) == 0 {
		return nil
	}
	for _, p := range ups {
		q.items[queueKey{p.Profile, p.Update.Video, p.Update.Session}] = p.Update
	}
	return q.save()
}

// Items returns every queued update in true order: by version, then
// profile and video (a total order, so the output is deterministic).
func (q *Queue) Items() []Pending {
	out := make([]Pending, 0, len(q.items))
	for k, u := range q.items {
		out = append(out, Pending{Profile: k.profile, Update: u})
	}
	sort.Slice(out, func(i, j int) bool { return pendingLess(out[i], out[j]) })
	return out
}

func pendingLess(a, b Pending) bool {
	if c := versionOf(a.Update).Compare(versionOf(b.Update)); c != 0 {
		return c < 0
	}
	if a.Profile != b.Profile {
		return a.Profile < b.Profile
	}
	return a.Update.Video < b.Update.Video
}

// put coalesces u into the queue; it reports whether anything changed.
func (q *Queue) put(profile string, u crdt.Update) bool {
	k := queueKey{profile, u.Video, u.Session}
	if old, ok := q.items[k]; ok {
		if !versionOf(old).Less(versionOf(u)) {
			return false
		}
		// Metadata goes out with a session's first update only: keep what
		// the replaced update carried and u leaves out.
		if u.Title == "" {
			u.Title = old.Title
		}
		if u.SeriesID == "" {
			u.SeriesID = old.SeriesID
		}
		if u.NextVideo == "" {
			u.NextVideo = old.NextVideo
		}
	}
	q.items[k] = u
	return true
}

// trim drops the oldest updates beyond the limit; it reports whether it
// dropped any.
func (q *Queue) trim() bool {
	if len(q.items) <= q.limit {
		return false
	}
	all := q.Items()
	for _, p := range all[:len(all)-q.limit] {
		delete(q.items, queueKey{p.Profile, p.Update.Video, p.Update.Session})
	}
	return true
}

func (q *Queue) save() error {
	if q.store == nil {
		return nil
	}
	if err := q.store.Save(encodeQueue(q.Items())); err != nil {
		return fmt.Errorf("client: saving the offline queue: %w", err)
	}
	return nil
}

// The queue file: a header line, then the JSON of the items.
//
//	playhead-queue 1 <crc32c of the JSON, 8 hex digits> <length of the JSON>\n
//	[{"profile": "…", "update": {…api.UpdateBody with video…}}, …]
//
// The checksum and length catch a torn or truncated file even when what
// survived happens to be valid JSON.
const queueMagic = "playhead-queue 1"

var crc32c = crc32.MakeTable(crc32.Castagnoli)

type queueItemJSON struct {
	Profile string         `json:"profile"`
	Update  api.UpdateBody `json:"update"`
}

func encodeQueue(items []Pending) []byte {
	js := make([]queueItemJSON, len(items))
	for i, p := range items {
		js[i] = queueItemJSON{Profile: p.Profile, Update: api.NewUpdateBody(p.Update, true)}
	}
	body, err := json.Marshal(js)
	if err != nil { // strings and integers only: cannot happen
		panic("client: encoding the offline queue: " + err.Error())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %08x %d\n", queueMagic, crc32.Checksum(body, crc32c), len(body))
	b.Write(body)
	return b.Bytes()
}

func decodeQueue(data []byte) ([]Pending, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", ErrCorruptQueue)
	}
	head, body := bytes.Fields(data[:nl]), data[nl+1:]
	if len(head) != 4 || string(head[0])+" "+string(head[1]) != queueMagic {
		return nil, fmt.Errorf("%w: not a playhead queue file (version 1)", ErrCorruptQueue)
	}
	sum, err1 := strconv.ParseUint(string(head[2]), 16, 32)
	n, err2 := strconv.Atoi(string(head[3]))
	switch {
	case err1 != nil || err2 != nil:
		return nil, fmt.Errorf("%w: bad header", ErrCorruptQueue)
	case n != len(body):
		return nil, fmt.Errorf("%w: %d bytes of %d (torn write)", ErrCorruptQueue, len(body), n)
	case uint32(sum) != crc32.Checksum(body, crc32c):
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptQueue)
	}
	var js []queueItemJSON
	if err := json.Unmarshal(body, &js); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptQueue, err)
	}
	out := make([]Pending, 0, len(js))
	for _, j := range js {
		u, err := updateOf(j.Update, "")
		if err != nil || checkID(ErrCorruptQueue, "profile", j.Profile) != nil {
			continue // one bad item does not spoil the others
		}
		out = append(out, Pending{Profile: j.Profile, Update: u})
	}
	return out, nil
}
