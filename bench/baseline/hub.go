package baseline

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// pushBuffer is how many pushes a stream may fall behind before it is
// closed (the device reconnects), as playhead's push_buffer.
const pushBuffer = 256

// hub fans Redis pub/sub out to SSE streams over one Redis connection:
// the first stream of a profile SUBSCRIBEs its channel, the last one
// UNSUBSCRIBEs, and one goroutine dispatches messages. (A SUBSCRIBE per
// stream would cost a Redis connection per open device.)
type hub struct {
	ps *redis.PubSub

	mu   sync.Mutex
	subs map[string]map[*stream]struct{} // channel → streams; guarded by mu
}

// stream is one SSE subscriber.
type stream struct {
	ch   chan string   // cursor JSON
	gone chan struct{} // closed when the stream fell behind
}

func newHub(rdb *redis.Client) *hub {
	h := &hub{ps: rdb.Subscribe(context.Background()), subs: map[string]map[*stream]struct{}{}}
	go h.run(h.ps.Channel(redis.WithChannelSize(1024)))
	return h
}

func (h *hub) run(msgs <-chan *redis.Message) {
	for m := range msgs {
		h.mu.Lock()
		for s := range h.subs[m.Channel] {
			select {
			case s.ch <- m.Payload:
			default:
				delete(h.subs[m.Channel], s)
				close(s.gone)
			}
		}
		h.mu.Unlock()
	}
}

// subscribe registers a stream on channel; it is subscribed in Redis when
// this returns.
func (h *hub) subscribe(ctx context.Context, channel string) (*stream, error) {
	s := &stream{ch: make(chan string, pushBuffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs[channel]) == 0 {
		if err := h.ps.Subscribe(ctx, channel); err != nil {
			return nil, err
		}
		h.subs[channel] = map[*stream]struct{}{}
	}
	h.subs[channel][s] = struct{}{}
	return s, nil
}

func (h *hub) unsubscribe(channel string, s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[channel][s]; !ok {
		return // dropped as slow
	}
	delete(h.subs[channel], s)
	if len(h.subs[channel]) == 0 {
		delete(h.subs, channel)
		h.ps.Unsubscribe(context.Background(), channel)
	}
}

func (h *hub) close() error { return h.ps.Close() }
