package crdt

import "fmt"

// Kind names the type of a stored and replicated record.
//
// Wire enum: stored in keys on disk and sent between nodes. Append only;
// never renumber (storage/testdata/golden/keys.hex pins the numbers).
type Kind uint8

const (
	KindProfile Kind = 1 // per-profile registers; key id is empty
	KindCursor  Kind = 2 // resume cursor; key id is the video
	KindEntry   Kind = 3 // history entry; key id is EntryID(video, session)
	KindHide    Kind = 4 // hidden-from-continue-watching register; key id is the video
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindProfile:
		return "profile"
	case KindCursor:
		return "cursor"
	case KindEntry:
		return "entry"
	case KindHide:
		return "hide"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindProfile && k <= KindHide }

// Record is one stored value of any kind: exactly the field named by Kind is
// meaningful. It is comparable with ==.
type Record struct {
	Kind    Kind
	Cursor  Cursor
	Entry   Entry
	Profile Profile
	Hide    Hide
}

// MergeRecord joins two states of the same key. Both must have the same
// Kind; merging different kinds is a programming error and panics.
func MergeRecord(a, b Record) Record {
	if a.Kind != b.Kind {
		panic(fmt.Sprintf("crdt: merging %v with %v", a.Kind, b.Kind))
	}
	switch a.Kind {
	case KindCursor:
		return Record{Kind: a.Kind, Cursor: MergeCursor(a.Cursor, b.Cursor)}
	case KindEntry:
		return Record{Kind: a.Kind, Entry: MergeEntry(a.Entry, b.Entry)}
	case KindProfile:
		return Record{Kind: a.Kind, Profile: MergeProfile(a.Profile, b.Profile)}
	case KindHide:
		return Record{Kind: a.Kind, Hide: MergeHide(a.Hide, b.Hide)}
	}
	panic(fmt.Sprintf("crdt: merging unknown %v", a.Kind))
}

// Purgeable reports whether the record can be dropped from storage at nowMs
// without any deleted or expired data coming back.
func (r Record) Purgeable(p Profile, pol Policy, nowMs int64) bool {
	switch r.Kind {
	case KindCursor:
		return r.Cursor.Purgeable(pol, nowMs)
	case KindEntry:
		// An entry wiped by the profile's cleared_at keeps only its session
		// memory; it can go once that memory has expired too.
		// (Scrub may already have moved the point into the tombstone.)
		if newest := MaxVersion(r.Entry.Rec, r.Entry.Deleted); !newest.IsZero() && newest.Seq <= p.ClearedAt {
			return r.Entry.Session.Seq.Physical()+pol.CursorTTL.Milliseconds() < nowMs
		}
		return r.Entry.Purgeable(pol, nowMs)
	case KindHide:
		return r.Hide.Purgeable(pol, nowMs)
	}
	return false // profile registers are never purged
}
