package node

import (
	"context"
	"sync"
)

// tracker owns every goroutine and long-lived stream the node starts
// outside the http.Server's own bookkeeping (the sweep, WebSocket streams,
// which the server forgets once hijacked, and SSE streams), so that
// shutdown can stop them and wait for them before closing the store — the
// nats-server startGoRoutine pattern.
type tracker struct {
	mu      sync.Mutex
	running bool // guarded by mu; false once stop is called
	wg      sync.WaitGroup
}

func newTracker() *tracker { return &tracker{running: true} }

// goTracked runs f in a tracked goroutine; it returns false (and does not
// run f) once the tracker is stopped.
func (t *tracker) goTracked(f func()) bool {
	if !t.enter() {
		return false
	}
	go func() {
		defer t.leave()
		f()
	}()
	return true
}

// enter registers work the caller does itself (a stream in a request
// goroutine); false once stopped. Each true enter needs one leave.
func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) leave() { t.wg.Done() }

// stop refuses new work.
func (t *tracker) stop() {
	t.mu.Lock()
	t.running = false
	t.mu.Unlock()
}

// wait waits for all tracked work, or until ctx ends; it reports whether
// everything finished.
func (t *tracker) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
