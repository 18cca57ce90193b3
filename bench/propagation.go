package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The propagation workload: writers PUT to the watched profiles; one other
// device per profile holds a push stream open. Each write registers its
// version's seq before it is sent; the subscriber that receives the cursor
// push with that seq records now − send time. Every applied write must push
// exactly once, so Delivered/Applied shows pushes lost or coalesced.

func sentKey(profile string, seq uint64) string { return profile + "/" + strconv.FormatUint(seq, 10) }

func (r *runner) opPropagate(ctx context.Context, w *worker, intended time.Time) outcome {
	p, v := w.prof.Next(), w.vid.Next()
	u := r.newUpdate(w, p, 1+w.rng.IntN(r.cfg.DevicesPerProfile), v) // device 0 is the subscriber
	key := sentKey(profileID(p), u.version)
	r.sent.Store(key, intended)
	w.buf = append(appendUpdate(append(w.buf[:0], '{'), u, false), '}')
	st, _, err := r.do(ctx, http.MethodPut, profileID(p), positionPath(p, v), w.buf, false)
	o := writeOutcome(err, st, 1)
	if o.kind != "" {
		r.sent.Delete(key) // stale or failed: nothing to push
	} else if r.inWindow(intended) {
		r.applied.Add(1)
	}
	return o
}

// pushEvent is the part of a push the subscriber reads.
type pushEvent struct {
	Type   string `json:"type"`
	Cursor struct {
		Seq json.Number `json:"seq"`
	} `json:"cursor"`
}

// onPush matches one pushed message of profile against the writes sent.
func (r *runner) onPush(shard int, profile string, msg []byte) {
	now := time.Now()
	var ev pushEvent
	if json.Unmarshal(msg, &ev) != nil || ev.Type != "cursor" {
		return
	}
	seq, err := strconv.ParseUint(string(ev.Cursor.Seq), 10, 64)
	if err != nil {
		return
	}
	t, ok := r.sent.LoadAndDelete(sentKey(profile, seq))
	if !ok || !r.inWindow(t.(time.Time)) {
		return
	}
	r.delivered.Add(1)
	r.lat.record(shard, now.Sub(t.(time.Time)))
}

// startSubscribers opens one push stream per watched profile and returns
// once all are open.
func (r *runner) startSubscribers(ctx context.Context, wg *sync.WaitGroup) error {
	ready := make(chan error, r.cfg.Subscribers)
	for i := range r.cfg.Subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.subscribe(ctx, i, ready)
		}()
	}
	for range r.cfg.Subscribers {
		if err := <-ready; err != nil {
			return fmt.Errorf("bench: subscribe (%s): %w", r.cfg.Push, err)
		}
	}
	return nil
}

// subscribe holds profile p's push stream until ctx ends; it sends exactly
// one value on ready (nil once the stream is open).
func (r *runner) subscribe(ctx context.Context, p int, ready chan<- error) {
	prof := profileID(p)
	if r.cfg.Push == "ws" {
		c, err := r.dialWS(ctx, prof, "")
		ready <- err
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			r.onPush(p, prof, msg)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+"/v1/profiles/"+prof+"/events", nil)
	if err != nil {
		ready <- err
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.token(prof))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req) // no timeout: the stream lives for the run
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	ready <- err
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:")); ok {
			r.onPush(p, prof, bytes.TrimSpace(line))
		}
	}
}

// awaitPushes waits, after the last write, until every applied write in
// the window was delivered or a second has passed without progress.
func (r *runner) awaitPushes() {
	last, idle := r.delivered.Load(), 0
	for idle < 20 && r.delivered.Load() < r.applied.Load() {
		time.Sleep(50 * time.Millisecond)
		if d := r.delivered.Load(); d != last {
			last, idle = d, 0
		} else {
			idle++
		}
	}
}
