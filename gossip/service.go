package gossip

import (
	"context"
	"errors"
	"fmt"

	"github.com/playhead/playhead/crdt"
)

// Ref names one profile of one account: the shard key. FORMAT: as Msg.
type Ref struct {
	Account string
	Profile string
}

// Errors returned by a Service.
var (
	// ErrUnavailable: not enough replicas reachable to make the write durable
	// or to answer the read. Nothing is lost by retrying (HTTP 503).
	ErrUnavailable = errors.New("gossip: not enough replicas reachable")
	// ErrNotFound: the named record does not exist (HTTP 404).
	ErrNotFound = errors.New("gossip: not found")
)

// Refusal says why an update was not applied.
//
// FORMAT (wire enum): sent between nodes in WriteResult. Append only.
type Refusal uint8

const (
	// RefusedStale: a larger version (epoch, seq, session) is stored.
	RefusedStale Refusal = 1
	// RefusedDeleted: the update's seq lies at or below a deletion of the
	// video's history (or of the whole history).
	RefusedDeleted Refusal = 2
	// RefusedExpired: the update's seq is older than cursor_ttl: it would be
	// expired on arrival.
	RefusedExpired Refusal = 3
)

// UpdateError is a refusal of one update of a batch: Index and Video name
// it, Err is the reason (crdt.ErrBadPosition, crdt.ErrClockSkew, …).
type UpdateError struct {
	Index int
	Video string
	Err   error
}

func (e *UpdateError) Error() string {
	return fmt.Sprintf("update %d (video %q): %v", e.Index, e.Video, e.Err)
}

func (e *UpdateError) Unwrap() error { return e.Err }

// WriteResult is the outcome of one update. FORMAT: as Msg.
type WriteResult struct {
	// Applied: the update's version is now the video's visible cursor. False
	// for a stale write (a larger version is stored), which changed nothing.
	Applied bool
	// Cursor is the video's visible cursor after the write; Found is false
	// when no cursor is visible (e.g. the write lies at or below a deletion).
	Cursor crdt.Cursor
	Found  bool
	// Refused says why a write was not applied (0 when applied).
	Refused Refusal `msgpack:",omitempty"`
}

// HistoryItem is one visible history entry with its id. FORMAT: as Msg.
type HistoryItem struct {
	ID    string
	Entry crdt.Entry
}

// EventType names a push event. FORMAT: a wire enum, append only.
type EventType uint8

const (
	// EventCursor: a cursor of the profile advanced; Cursor holds it.
	EventCursor EventType = 1
	// EventTakeover: another session took the video over. Cursor holds the
	// new cursor; Superseded the previous cursor (its session and device).
	EventTakeover EventType = 2
	// EventCleared: history was deleted: Video names the video, or is empty
	// when the whole history (and every cursor) was cleared or when one entry
	// was deleted (then Entry names it).
	EventCleared EventType = 3
	// EventHidden: Video was hidden from "continue watching".
	EventHidden EventType = 4
)

// Event is a change pushed to the devices of a profile. FORMAT: as Msg.
type Event struct {
	Ref        Ref
	Type       EventType
	Cursor     crdt.Cursor
	Superseded crdt.Cursor
	Video      string
	Entry      string
}

// Notifier receives the events of merged changes. Notify is called after the
// change is durable, in the order the changes of each profile were applied,
// from the goroutine that made the change or one that made a later change of
// the same profile; it must not block (a
// slow device must not stall writers) and must be safe for concurrent use.
type Notifier interface {
	Notify(events []Event)
}

// Service is what the node's API asks of the storage and replication layer.
// Implementations are safe for concurrent use.
type Service interface {
	// Put validates, stamps and applies a batch of updates to one profile:
	// all or nothing for validation (a bad update fails the batch with an
	// error wrapping crdt.ErrBadPosition, crdt.ErrBadState,
	// crdt.ErrBadVersion or crdt.ErrClockSkew, and nothing is written); then
	// each update is merged and made durable on the write quorum.
	Put(ctx context.Context, ref Ref, ups []crdt.Update) ([]WriteResult, error)
	// Cursor returns the visible cursor of one video; ok false if none.
	Cursor(ctx context.Context, ref Ref, video string) (c crdt.Cursor, ok bool, err error)
	// Cursors returns every visible cursor of the profile, in no set order.
	Cursors(ctx context.Context, ref Ref) ([]crdt.Cursor, error)
	// History returns every visible history entry, in no set order.
	History(ctx context.Context, ref Ref) ([]HistoryItem, error)
	// DeleteEntry deletes one visible history entry; ErrNotFound if there is
	// no visible entry with that id.
	DeleteEntry(ctx context.Context, ref Ref, id string) error
	// DeleteVideo deletes every history entry of the video and its cursor.
	DeleteVideo(ctx context.Context, ref Ref, video string) error
	// DeleteAll deletes the profile's whole history and every cursor.
	DeleteAll(ctx context.Context, ref Ref) error
	// Profile returns the profile registers (history_paused, cleared_at).
	Profile(ctx context.Context, ref Ref) (crdt.Profile, error)
	// SetHistoryPaused writes the history_paused register.
	SetHistoryPaused(ctx context.Context, ref Ref, paused bool) (crdt.Profile, error)
	// Hide takes a video (and the next-episode row it opens) off "continue
	// watching" until a position report made after the hide; the cursor and
	// history stay. Idempotent.
	Hide(ctx context.Context, ref Ref, video string) error
	// Mark marks a video watched or unwatched (rules_viewer.go); the
	// result is the video's cursor after the write. ErrNeedDuration when
	// the video has no cursor and m.DurationMs is 0.
	Mark(ctx context.Context, ref Ref, m Mark) (WriteResult, error)
	// Row returns every visible cursor and every hide register of the
	// profile: what "continue watching" is built from.
	Row(ctx context.Context, ref Ref) (Row, error)
	// ExportPage returns the profile's visible records of kind
	// (crdt.KindCursor or crdt.KindEntry) whose key id is above after, at
	// most limit (capped at MaxExportPage), for an export in pages of
	// bounded memory. Each page is read at its own moment.
	ExportPage(ctx context.Context, ref Ref, kind crdt.Kind, after string, limit int) (ExportPage, error)
	// Now returns a fresh timestamp of the node's HLC (for the Playhead-HLC
	// header and long-poll watermarks).
	Now() crdt.HLC
	// Policy returns the thresholds and retention in force.
	Policy() crdt.Policy
}

// Clock supplies physical time in milliseconds since the Unix epoch.
// Production uses the wall clock; the simulator a virtual one.
type Clock interface {
	NowMs() int64
}
