package node

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/gossip"
)

// Kept long-polls. A poll with include=cleared leaves its hub subscription
// open for pollKeep after it answers, under an id it returns ("poll"); the
// device's next poll passes it back (poll=ID) and gets the deletions
// committed between the two polls from that subscription's buffer — the
// node keeps no log of deletions of one video or entry, so without this
// a deletion made between two polls would never reach a long-polling
// device. A poll that comes later than pollKeep, lands on another node, or
// finds its subscription dropped (more than PushBuffer events queued,
// cursors of one video counting once)
// starts anew, as a first poll does.

// pollKeep is how long a poll's subscription outlives its answer.
const pollKeep = 30 * time.Second

// maxKeptPolls bounds the kept subscriptions of one node; beyond it polls
// are not kept (their devices may miss a deletion between polls).
const maxKeptPolls = 10_000

// keptPolls holds the subscriptions of answered polls. Safe for concurrent use.
type keptPolls struct {
	mu   sync.Mutex
	subs map[string]*keptPoll // guarded by mu
}

type keptPoll struct {
	ref   gossip.Ref
	sub   *Subscription
	timer *time.Timer
}

// take returns the kept subscription id names for ref and forgets it; nil
// if there is none (expired, never here, another profile's, or dropped).
func (k *keptPolls) take(id string, ref gossip.Ref) *Subscription {
	if id == "" {
		return nil
	}
	k.mu.Lock()
	p, ok := k.subs[id]
	if ok && p.ref == ref {
		delete(k.subs, id)
	}
	k.mu.Unlock()
	if !ok || p.ref != ref || !p.timer.Stop() {
		return nil
	}
	if p.sub.ended() {
		p.sub.Close()
		return nil
	}
	return p.sub
}

// keep holds sub for the next poll and returns its id; "" (and sub
// closed) when the node holds too many already.
func (k *keptPolls) keep(ref gossip.Ref, sub *Subscription) string {
	var b [12]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.subs == nil {
		k.subs = map[string]*keptPoll{}
	}
	if len(k.subs) >= maxKeptPolls {
		sub.Close()
		return ""
	}
	k.subs[id] = &keptPoll{ref: ref, sub: sub, timer: time.AfterFunc(pollKeep, func() {
		k.mu.Lock()
		delete(k.subs, id)
		k.mu.Unlock()
		sub.Close()
	})}
	return id
}

// closeAll ends every kept subscription (shutdown).
func (k *keptPolls) closeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, p := range k.subs {
		p.timer.Stop()
		p.sub.Close()
		delete(k.subs, id)
	}
}

// drainCleared takes the cleared events already buffered in sub (those
// committed since the previous poll answered) without waiting; cursor
// events are dropped, as the read that follows covers them.
func drainCleared(sub *Subscription) []api.ClearedEvent {
	var out []api.ClearedEvent
	for _, ev := range sub.Take(nil) {
		if ev.Type == gossip.EventCleared {
			out = append(out, clearedJSON(&ev.Event))
		}
	}
	return out
}

func clearedJSON(ev *gossip.Event) api.ClearedEvent {
	ce := api.ClearedEvent{Type: api.EventCleared, Entry: ev.Entry}
	if ev.Video != "" {
		v := ev.Video
		ce.Video = &v
	}
	return ce
}
