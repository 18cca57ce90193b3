package node

import (
	"net/http"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// TestSeenHeader: a resume read may carry Playhead-Seen, the largest
// version of the cursor the device has seen; a malformed one is a 400 that
// names the header, and a valid one is served (on one node every version
// a device can have seen is here).
func TestSeenHeader(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	cur := e.mustPut(tok, "me", "ep-1", upd(1000, 60000, "tv", "s-1"))
	good := cur.Epoch + " " + cur.Seq + " " + cur.Session
	r := e.do("GET", "/v1/profiles/me/positions/ep-1", tok, nil, "Playhead-Seen", good)
	want(t, r, http.StatusOK, "")
	for _, bad := range []string{"1 2", "x 2 s", "1 y s", "1 2 a/b", "  "} {
		r := e.do("GET", "/v1/profiles/me/positions/ep-1", tok, nil, "Playhead-Seen", bad)
		if bad == "  " { // blank: as if absent
			want(t, r, http.StatusOK, "")
			continue
		}
		want(t, r, http.StatusBadRequest, "bad_request")
	}
	v, err := parseSeen(formatSeen(crdt.Version{Epoch: 5, Seq: 7, Session: "a session"}))
	if err != nil || v != (crdt.Version{Epoch: 5, Seq: 7, Session: "a session"}) {
		t.Fatalf("round trip: %+v %v", v, err)
	}
}
