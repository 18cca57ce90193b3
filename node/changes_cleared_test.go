package node

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
)

type tChanges struct {
	Cursors []tCursor           `json:"cursors"`
	Cleared *[]api.ClearedEvent `json:"cleared"`
	HLC     string              `json:"hlc"`
}

// A long-polling device learns of a delete-all that happened while it was
// away, once: the watermark moves past it.
func TestChangesClearedCatchUp(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	first := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1"))
	want(t, e.do("DELETE", "/v1/profiles/me/history", tok, nil), 204, "")

	// Without include=cleared the answer is as before: no field.
	r := e.do("GET", "/v1/profiles/me/changes?wait=0&after="+first.UpdatedHLC, tok, nil)
	want(t, r, 200, "")
	var ch tChanges
	r.decode(t, &ch)
	if ch.Cleared != nil || len(ch.Cursors) != 0 || ch.HLC != first.UpdatedHLC {
		t.Fatalf("plain poll after a delete: %s", r.body)
	}
	r = e.do("GET", "/v1/profiles/me/changes?wait=0&include=cleared&after="+first.UpdatedHLC, tok, nil)
	r.decode(t, &ch)
	if ch.Cleared == nil || len(*ch.Cleared) != 1 || (*ch.Cleared)[0].Video != nil || (*ch.Cleared)[0].Type != "cleared" {
		t.Fatalf("poll with include=cleared: %s", r.body)
	}
	if mustHLC(ch.HLC) <= first.updated() {
		t.Fatalf("watermark %s did not move past the deletion", ch.HLC)
	}
	// From the new watermark the deletion is not reported again.
	r = e.do("GET", "/v1/profiles/me/changes?wait=0&include=cleared&after="+ch.HLC, tok, nil)
	var again tChanges
	r.decode(t, &again)
	if again.Cleared == nil || len(*again.Cleared) != 0 || again.HLC != ch.HLC {
		t.Fatalf("second poll: %s", r.body)
	}
	// A write after the deletion comes after it.
	later := e.mustPut(tok, "me", "ep-2", upd(1000, 2580000, "tv", "s2"))
	r = e.do("GET", "/v1/profiles/me/changes?wait=0&include=cleared&after="+ch.HLC, tok, nil)
	r.decode(t, &again)
	if len(again.Cursors) != 1 || again.Cursors[0].Video != "ep-2" || again.HLC != later.UpdatedHLC {
		t.Fatalf("write after the deletion: %s", r.body)
	}
	want(t, e.do("GET", "/v1/profiles/me/changes?include=everything", tok, nil), 400, "bad_request")
}

// A waiting poll answers a deletion of one video within the push deadline.
func TestChangesClearedLive(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	c := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1"))
	done := make(chan []byte, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/profiles/me/changes?include=cleared&wait=10s&after="+c.UpdatedHLC, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			done <- []byte(err.Error())
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- b
	}()
	time.Sleep(100 * time.Millisecond) // the poll is waiting
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=ep-1", tok, nil), 204, "")
	var body []byte
	select {
	case body = <-done:
	case <-time.After(deliveryDeadline):
		t.Fatal("the waiting poll did not answer the deletion within 1 s")
	}
	r := &resp{status: 200, body: body}
	var ch tChanges
	r.decode(t, &ch)
	if ch.Cleared == nil || len(*ch.Cleared) != 1 || (*ch.Cleared)[0].Video == nil || *(*ch.Cleared)[0].Video != "ep-1" {
		t.Fatalf("live deletion: %s", body)
	}
}

type tChangesPoll struct {
	Cleared []api.ClearedEvent `json:"cleared"`
	HLC     string             `json:"hlc"`
	Poll    string             `json:"poll"`
}

// A deletion committed between two polls reaches the device through the
// subscription the node kept for it (poll=ID); without the id it would not.
func TestChangesKeptPollHearsDeletionBetweenPolls(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	c := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1"))
	e.mustPut(tok, "me", "ep-2", upd(754000, 2580000, "tv", "s2"))
	var first tChangesPoll
	e.do("GET", "/v1/profiles/me/changes?include=cleared&wait=0&after="+c.UpdatedHLC, tok, nil).decode(t, &first)
	if first.Poll == "" {
		t.Fatalf("no poll id in %+v", first)
	}
	// Between the polls: one video deleted, then one entry.
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=ep-1", tok, nil), 204, "")
	page := e.historyOf(tok, "me", "")
	want(t, e.do("DELETE", "/v1/profiles/me/history/"+page.Entries[0].ID, tok, nil), 204, "")

	// Another profile's poll cannot take this subscription.
	var other tChangesPoll
	e.do("GET", "/v1/profiles/other/changes?include=cleared&wait=0&poll="+first.Poll, tok, nil).decode(t, &other)
	if len(other.Cleared) != 0 {
		t.Fatalf("another profile got this one's deletions: %+v", other)
	}
	// Without the id the deletions are not replayed (the documented limit).
	var fresh tChangesPoll
	e.do("GET", "/v1/profiles/me/changes?include=cleared&wait=0&after="+first.HLC, tok, nil).decode(t, &fresh)
	if len(fresh.Cleared) != 0 {
		t.Fatalf("a fresh poll: %+v", fresh)
	}
	var second tChangesPoll
	e.do("GET", "/v1/profiles/me/changes?include=cleared&wait=0&after="+first.HLC+"&poll="+first.Poll, tok, nil).decode(t, &second)
	if len(second.Cleared) != 2 || second.Cleared[0].Video == nil || *second.Cleared[0].Video != "ep-1" || second.Cleared[1].Entry != page.Entries[0].ID {
		t.Fatalf("the kept poll: %+v", second.Cleared)
	}
	if second.Poll == "" || second.Poll == first.Poll {
		t.Fatalf("next poll id %q (first %q)", second.Poll, first.Poll)
	}
	// An id is good once.
	var again tChangesPoll
	e.do("GET", "/v1/profiles/me/changes?include=cleared&wait=0&after="+first.HLC+"&poll="+first.Poll, tok, nil).decode(t, &again)
	if len(again.Cleared) != 0 {
		t.Fatalf("a used poll id replayed: %+v", again.Cleared)
	}
}
