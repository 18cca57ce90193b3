package node

import (
	"testing"
	"time"
)

// Deleting a video deletes its metadata too: a later write that sends no
// title must not bring back the title the viewer deleted, neither on the
// cursor nor on the history entry of the same session.
func TestDeletedMetadataDoesNotReappear(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, hour, "tv", "s1", "title", "Secret Film", "series_id", "show"))
	e.clock.Advance(time.Second)
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=film", tok, nil), 204, "")
	e.clock.Advance(time.Second)

	// The same session keeps reporting, without metadata.
	c := e.mustPut(tok, "me", "film", upd(11*minute, hour, "tv", "s1"))
	if c.Title != "" || c.SeriesID != "" {
		t.Fatalf("write answer shows deleted metadata: %+v", c)
	}
	if got, ok := e.get(tok, "me", "film"); !ok || got.Title != "" || got.SeriesID != "" {
		t.Fatalf("read shows deleted metadata: %+v (found %v)", got, ok)
	}
	for _, it := range e.continueOf(tok, "me", "") {
		if it.Title != "" {
			t.Fatalf("continue watching shows deleted title: %+v", it)
		}
	}
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 || h.Entries[0].Title != "" {
		t.Fatalf("history shows deleted title: %+v", h.Entries)
	}
	if n := len(e.historyOf(tok, "me", "?q=Secret").Entries); n != 0 {
		t.Fatalf("search finds the deleted title in %d entries", n)
	}

	// A new title sent after the deletion shows.
	e.clock.Advance(time.Second)
	c = e.mustPut(tok, "me", "film", upd(12*minute, hour, "tv", "s1", "title", "Renamed"))
	if c.Title != "Renamed" {
		t.Fatalf("new title not shown: %+v", c)
	}
}

// Same for one deleted entry and for "delete all".
func TestDeletedEntryTitleDoesNotReappear(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, hour, "tv", "s1", "title", "Secret Film"))
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 {
		t.Fatalf("history: %+v", h)
	}
	e.clock.Advance(time.Second)
	want(t, e.do("DELETE", "/v1/profiles/me/history/"+h.Entries[0].ID, tok, nil), 204, "")
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "film", upd(11*minute, hour, "tv", "s1"))
	h = e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 || h.Entries[0].Title != "" {
		t.Fatalf("entry re-shown with its deleted title: %+v", h.Entries)
	}

	e.mustPut(tok, "me", "other", upd(10*minute, hour, "tv", "s2", "title", "Other"))
	e.clock.Advance(time.Second)
	want(t, e.do("DELETE", "/v1/profiles/me/history", tok, nil), 204, "")
	e.clock.Advance(time.Second)
	if c := e.mustPut(tok, "me", "other", upd(11*minute, hour, "tv", "s2")); c.Title != "" {
		t.Fatalf("cursor re-shown with title deleted by delete-all: %+v", c)
	}
}

// A session's new epoch must not lie below the session's last seq: a
// device's clock only moves forward, and accepting such a version would let
// an older write of the session outlive its tombstone (see
// crdt.Update.CheckSession). It is refused with 400 and changes nothing.
func TestNewEpochBelowSessionSeqRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e1 := e.hlcAt(0, 0)
	s1 := e.hlcAt(30*time.Second, 0)
	e.mustPut(tok, "me", "film", upd(10*minute, hour, "tv", "s1", "epoch", hs(e1), "seq", hs(s1)))
	before, _ := e.get(tok, "me", "film")

	e2 := e.hlcAt(10*time.Second, 0) // above e1, below s1
	r := e.do("PUT", "/v1/profiles/me/positions/film", tok, upd(2*minute, hour, "tv", "s1", "epoch", hs(e2), "seq", hs(e2)))
	want(t, r, 400, "bad_request")
	if after, _ := e.get(tok, "me", "film"); after != before {
		t.Fatalf("refused write changed the cursor:\n%+v\n%+v", before, after)
	}
	// A new epoch at or above the last seq is a seek and is honoured.
	c := e.mustPut(tok, "me", "film", upd(2*minute, hour, "tv", "s1", "epoch", hs(s1+1)))
	if c.PositionMs != 2*minute {
		t.Fatalf("seek in a new epoch not honoured: %+v", c)
	}
}

// ?replica=local is for operators: admin tokens only, one value.
func TestReplicaLocalNeedsAdmin(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, hour, "tv", "s1"))
	want(t, e.do("GET", "/v1/profiles/me/positions/film?replica=local", tok, nil), 403, "forbidden")
	admin := e.adminToken("acct-1")
	want(t, e.do("GET", "/v1/profiles/me/positions/film?replica=nearest", admin, nil), 400, "bad_request")
	if r := e.do("GET", "/v1/profiles/me/positions/film?replica=local", admin, nil); r.status != 200 {
		t.Fatalf("admin local read on a single node: %s", r)
	}
}
