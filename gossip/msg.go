package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// MsgType names a replication message. FORMAT: a wire enum, append only.
type MsgType uint8

// The replication messages between Cores (DESIGN.md §5, docs/DESIGN.md §7).
const (
	// MsgForward: a request (Op) for the partition's coordinator; the
	// answer goes to Origin as MsgResult. Exec: run it here, do not route.
	MsgForward MsgType = iota + 1
	// MsgResult: the answer to a forwarded request (ReqID of the origin).
	MsgResult
	// MsgReplicate: records for an owner to merge and persist; answered by
	// MsgAck with the same ReqID once durable (ReqID 0: no answer wanted).
	MsgReplicate
	// MsgAck: the records of MsgReplicate ReqID are durable at the sender.
	MsgAck
	// MsgDigest: the sender's bucket digests of partition P.
	MsgDigest
	// MsgBuckets: the sender's records of the buckets in Buckets (a bit
	// set) of partition P. Reply asks the receiver to send its own records
	// of those buckets back; Handoff marks the answer to MsgPull.
	MsgBuckets
	// MsgPull: a new owner asks an old one for all of partition P.
	MsgPull
	// MsgInterest: the sender has subscribers for Refs for LeaseMs.
	// Marks, when as long as Refs, say what the sender's subscribers were
	// pushed of each (push.go): the partition's coordinator answers a
	// mark that differs from its own cursors with MsgEvents (catch-up).
	MsgInterest
	// MsgEvents: changes merged by the sender, for the receiver's
	// subscribers. A catch-up that carries every live cursor of a profile
	// changed since its mark's Since also sets Refs and Marks to that
	// profile and mark (the receiver then resets what it noted of it).
	MsgEvents
	// MsgProfileRecords: a quorum read asks an owner for all its records
	// of the profile Refs[0]; answered by MsgProfileRecordsReply (ReqID).
	MsgProfileRecords
	// MsgProfileRecordsReply: the sender's records of the profile Refs[0].
	MsgProfileRecordsReply
	// Append new types here only: the values are on the wire.
)

// OpKind names a request a Core serves. FORMAT: a wire enum, append only.
type OpKind uint8

// Requests, one per gossip.Service method that touches a profile.
const (
	OpPut OpKind = iota + 1
	OpCursor
	OpCursors
	OpHistory
	OpProfile
	OpDeleteEntry
	OpDeleteVideo
	OpDeleteAll
	OpSetPaused
	OpHide
	OpMark
	OpRow
	OpExport
	// Append new kinds here only: the values are on the wire.
)

func (k OpKind) isRead() bool {
	return (k >= OpCursor && k <= OpProfile) || k == OpRow || k == OpExport
}

// Op is one request for a profile. FORMAT: as Msg.
type Op struct {
	Kind   OpKind
	Ref    Ref
	Ups    []crdt.Update `msgpack:",omitempty"`
	Video  string        `msgpack:",omitempty"`
	Entry  string        `msgpack:",omitempty"`
	Paused bool          `msgpack:",omitempty"`
	// ReadQuorum: how many owners a read consults (0: CoreConfig.ReadQuorum).
	ReadQuorum int `msgpack:",omitempty"`
	// Local reads this node's replica instead of the coordinator's (an
	// operator's check; never forwarded).
	Local bool `msgpack:",omitempty"`
	// Seen, for a read of one video's cursor (OpCursor): the largest
	// version of it the device has seen (pushed, read or acknowledged).
	// The answer is never older: the coordinator reads every live owner
	// when its own copy is below Seen, and answers ErrUnavailable when
	// no reachable owner has it (session consistency; seen.go).
	Seen crdt.Version `msgpack:",omitempty"`
	// Mark, for OpMark: what to mark (Video is Mark.Video).
	Mark *Mark `msgpack:",omitempty"`
	// Export, for OpExport: which page.
	Export *ExportReq `msgpack:",omitempty"`
}

// ExportReq names one page of an export (Service.ExportPage).
type ExportReq struct {
	Kind  crdt.Kind
	After string `msgpack:",omitempty"`
	Limit int    `msgpack:",omitempty"`
}

// Result is the answer to an Op. FORMAT: as Msg.
type Result struct {
	Writes  []WriteResult `msgpack:",omitempty"`
	Cursor  crdt.Cursor
	Found   bool          `msgpack:",omitempty"`
	Cursors []crdt.Cursor `msgpack:",omitempty"`
	Videos  []string      `msgpack:",omitempty"` // Cursors[i].Video (not in the cursor encoding)
	History []HistoryItem `msgpack:",omitempty"`
	Profile crdt.Profile
	// HLC is the answering coordinator's clock. The node that took the
	// request observes it, so its Playhead-HLC header — which devices
	// follow — is past every change the answer reflects (a delete done
	// through another node included).
	HLC crdt.HLC `msgpack:",omitempty"`
	// Hidden, for OpRow: the profile's hide registers.
	Hidden []HiddenVideo `msgpack:",omitempty"`
	// Page, for OpExport (its cursors' videos travel in Videos).
	Page *ExportPage `msgpack:",omitempty"`
}

// KeyValue is one stored record in its storage encoding. FORMAT: as Msg.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// Msg is one replication message; which fields are set depends on Type.
// FORMAT: a msgpack map by field name (so are its structs): changing field
// order/names/types breaks mixed-version clusters; see msg_golden_test.go.
type Msg struct {
	Type    MsgType
	ReqID   uint64      `msgpack:",omitempty"`
	Origin  ring.NodeID `msgpack:",omitempty"`
	Exec    bool        `msgpack:",omitempty"`
	Op      *Op         `msgpack:",omitempty"`
	Result  *Result     `msgpack:",omitempty"`
	ErrCode string      `msgpack:",omitempty"`
	ErrText string      `msgpack:",omitempty"`
	Records []KeyValue  `msgpack:",omitempty"`
	P       uint16      `msgpack:",omitempty"`
	Digest  []uint64    `msgpack:",omitempty"`
	Buckets uint64      `msgpack:",omitempty"`
	Reply   bool        `msgpack:",omitempty"`
	Handoff bool        `msgpack:",omitempty"`
	Refs    []Ref       `msgpack:",omitempty"`
	LeaseMs int64       `msgpack:",omitempty"`
	Events  []Event     `msgpack:",omitempty"`
	// Added after wire v1's first release (older peers skip it): keep new
	// fields at the end and optional.
	Marks []InterestMark `msgpack:",omitempty"`
}

// InterestMark is what an interested node was pushed of one profile: Sum
// is pushSum over the newest UpdatedHLC of each video whose cursor events
// it received with an UpdatedHLC above Since. FORMAT: an array; see Msg.
type InterestMark struct {
	_msgpack struct{} `msgpack:",as_array"`
	Since    crdt.HLC
	Sum      uint64
}

// MaxFrame is the largest frame a Core accepts.
const MaxFrame = 8 << 20

// frameMagic starts every frame; its last byte is the format version.
var frameMagic = []byte{'p', 'h', 'f', 1}

// EncodeFrame encodes messages for one peer as a frame.
func EncodeFrame(msgs []Msg) ([]byte, error) {
	var b bytes.Buffer
	b.Write(frameMagic)
	enc := msgpack.NewEncoder(&b)
	if err := enc.Encode(msgs); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrBadFrame is returned for bytes that are not a frame.
var ErrBadFrame = errors.New("gossip: bad frame")

// DecodeFrame decodes a frame from a peer. Peers are authenticated by the
// cluster key, but a frame is still checked: size, magic, and a fresh
// decoder (never msgpack's pooled one, which keeps large buffers).
func DecodeFrame(b []byte) ([]Msg, error) {
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrBadFrame, len(b), MaxFrame)
	}
	if !bytes.HasPrefix(b, frameMagic) {
		return nil, fmt.Errorf("%w: unknown magic", ErrBadFrame)
	}
	body := b[len(frameMagic):]
	if rest, err := checkMsgpack(body, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	} else if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(rest))
	}
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	var msgs []Msg
	if err := dec.Decode(&msgs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, r.Len())
	}
	for i := range msgs {
		fixVideos(&msgs[i])
	}
	return msgs, nil
}

// fixVideos restores the cursor videos that the cursor encoding leaves out
// (they are the record's key).
func fixVideos(m *Msg) {
	for i := range m.Events {
		e := &m.Events[i]
		e.Cursor.Video = e.Video
		if !e.Superseded.Version.IsZero() {
			e.Superseded.Video = e.Video
		}
	}
	if r := m.Result; r != nil {
		for i := range r.Cursors {
			if i < len(r.Videos) {
				r.Cursors[i].Video = r.Videos[i]
			}
		}
		if r.Page != nil {
			for i := range r.Page.Cursors {
				if j := len(r.Cursors) + i; j < len(r.Videos) {
					r.Page.Cursors[i].Video = r.Videos[j]
				}
			}
		}
	}
}

// encodeRecords encodes records for a peer. Encoding cannot fail for a record this node stored: the store wrote it
// with the same encoder, and keys from peers and devices are validated
// (msgcheck.go, storage.Key limits) before they reach the store. A record
// that did fail would be skipped, not sent half; anti-entropy would find
// the difference and count nothing, so the skip is safe.
func encodeRecords(puts []storage.Put) []KeyValue {
	out := make([]KeyValue, 0, len(puts))
	for _, p := range puts {
		kb, err := storage.EncodeKey(p.Key)
		if err != nil {
			continue
		}
		vb, err := storage.EncodeValue(p.Record)
		if err != nil {
			continue
		}
		out = append(out, KeyValue{Key: kb, Value: vb})
	}
	return out
}

func decodeRecord(kv KeyValue) (storage.Put, error) {
	k, err := storage.DecodeKey(kv.Key)
	if err != nil {
		return storage.Put{}, err
	}
	rec, err := storage.DecodeValue(k.Kind, k.ID, kv.Value)
	if err != nil {
		return storage.Put{}, err
	}
	return storage.Put{Key: k, Record: rec}, nil
}

// Error codes carried by MsgResult, so that the origin answers the device
// exactly as the coordinator would have.
var errCodes = []struct {
	code string
	err  error
}{
	{"bad_position", crdt.ErrBadPosition},
	{"bad_state", crdt.ErrBadState},
	{"bad_version", crdt.ErrBadVersion},
	{"epoch_behind", crdt.ErrEpochBehind},
	{"clock_skew", crdt.ErrClockSkew},
	{"bad_hlc", crdt.ErrBadHLC},
	{"not_found", ErrNotFound},
	{"need_duration", ErrNeedDuration},
	{"unavailable", ErrUnavailable},
}

func errToCode(err error) (string, string) {
	for _, c := range errCodes {
		if errors.Is(err, c.err) {
			return c.code, err.Error()
		}
	}
	return "unavailable", err.Error()
}

func codeToErr(code, text string) error {
	// An update's refusal keeps its index and video across the wire.
	var idx int
	var video string
	if n, _ := fmt.Sscanf(text, "update %d (video %q): ", &idx, &video); n == 2 {
		if prefix := fmt.Sprintf("update %d (video %q): ", idx, video); strings.HasPrefix(text, prefix) {
			return &UpdateError{Index: idx, Video: video, Err: codeToErr(code, text[len(prefix):])}
		}
	}
	for _, c := range errCodes {
		if c.code == code {
			if text == "" || text == c.err.Error() {
				return c.err
			}
			return fmt.Errorf("%w (%s)", c.err, text)
		}
	}
	return fmt.Errorf("%w (%s)", ErrUnavailable, text)
}
