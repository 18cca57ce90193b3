package node

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// Limits of GET …/history.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 200
)

// historyQuery is a parsed GET …/history request.
type historyQuery struct {
	limit    int
	after    *pageKey // from page: list what comes after this item
	from, to time.Time
	hasFrom  bool
	hasTo    bool
	q        string // lower case
}

// pageKey is a position in the history order (last_at desc, id asc). The
// page token is base64url (no padding) of 8 bytes big-endian last_at HLC
// followed by the entry id.
type pageKey struct {
	lastAt crdt.HLC
	id     string
}

func (k pageKey) token() string {
	b := make([]byte, 8, 8+len(k.id))
	binary.BigEndian.PutUint64(b, uint64(k.lastAt))
	return base64.RawURLEncoding.EncodeToString(append(b, k.id...))
}

func parsePageToken(s string) (*pageKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || !api.ValidID(string(b[8:])) {
		return nil, errBadRequest("page=%q is not a page token from next_page", truncate(s))
	}
	return &pageKey{lastAt: crdt.HLC(binary.BigEndian.Uint64(b)), id: string(b[8:])}, nil
}

func parseHistoryQuery(r *http.Request) (historyQuery, error) {
	var hq historyQuery
	var err error
	if hq.limit, err = queryLimit(r, "limit", defaultHistoryLimit, maxHistoryLimit); err != nil {
		return hq, err
	}
	q := r.URL.Query()
	if q.Has("page") {
		if hq.after, err = parsePageToken(q.Get("page")); err != nil {
			return hq, err
		}
	}
	if q.Has("from") {
		if hq.from, err = parseTime(q.Get("from")); err != nil {
			return hq, errBadRequest("from=%q: must be an RFC 3339 time like 2026-11-22T18:00:00Z", truncate(q.Get("from")))
		}
		hq.hasFrom = true
	}
	if q.Has("to") {
		if hq.to, err = parseTime(q.Get("to")); err != nil {
			return hq, errBadRequest("to=%q: must be an RFC 3339 time like 2026-11-22T18:00:00Z", truncate(q.Get("to")))
		}
		hq.hasTo = true
	}
	if hq.hasFrom && hq.hasTo && hq.to.Before(hq.from) {
		return hq, errBadRequest("to (%s) is before from (%s)", q.Get("to"), q.Get("from"))
	}
	if s := q.Get("q"); len(s) > maxQueryLen {
		return hq, errBadRequest("q is %d bytes; at most %d", len(s), maxQueryLen)
	} else {
		hq.q = strings.ToLower(s)
	}
	return hq, nil
}

// matches reports whether an entry passes the filters (not the page).
func (hq *historyQuery) matches(it gossip.HistoryItem) bool {
	t := it.Entry.LastAt.Time()
	if hq.hasFrom && t.Before(hq.from) {
		return false
	}
	if hq.hasTo && !t.Before(hq.to) {
		return false
	}
	if hq.q != "" && !strings.Contains(strings.ToLower(it.Entry.Video), hq.q) &&
		!strings.Contains(strings.ToLower(it.Entry.Title.Value), hq.q) {
		return false
	}
	return true
}

// historyLess is the listing order: newest last_at first, then id.
func historyLess(a, b pageKey) bool {
	if a.lastAt != b.lastAt {
		return a.lastAt > b.lastAt
	}
	return a.id < b.id
}

// GET /v1/profiles/{profile}/history?limit&page&from&to&q.
func (n *Node) history(c *call) error {
	hq, err := parseHistoryQuery(c.r)
	if err != nil {
		return err
	}
	items, err := n.svc.History(c.r.Context(), c.ref)
	if err != nil {
		return err
	}
	page, next := historyPage(items, hq)
	entries := make([]api.HistoryEntry, len(page))
	for i, it := range page {
		entries[i] = toEntryJSON(it)
	}
	writeJSON(c.w, http.StatusOK, api.HistoryPage{Entries: entries, NextPage: next})
	return nil
}

// historyPage filters, orders and pages the entries; next is nil when no
// entry follows the page.
func historyPage(items []gossip.HistoryItem, hq historyQuery) (page []gossip.HistoryItem, next *string) {
	keep := items[:0:0]
	for _, it := range items {
		if !hq.matches(it) {
			continue
		}
		if hq.after != nil && !historyLess(*hq.after, pageKey{it.Entry.LastAt, it.ID}) {
			continue
		}
		keep = append(keep, it)
	}
	sort.Slice(keep, func(i, j int) bool {
		return historyLess(pageKey{keep[i].Entry.LastAt, keep[i].ID}, pageKey{keep[j].Entry.LastAt, keep[j].ID})
	})
	if len(keep) > hq.limit {
		last := keep[hq.limit-1]
		tok := pageKey{last.Entry.LastAt, last.ID}.token()
		return keep[:hq.limit], &tok
	}
	return keep, nil
}

// DELETE /v1/profiles/{profile}/history/{entry_id}: 204, 404 if no visible
// entry has that id.
func (n *Node) deleteEntry(c *call) error {
	id := c.r.PathValue("entry_id")
	if err := checkID("entry_id", id); err != nil {
		return err
	}
	if err := n.svc.DeleteEntry(c.r.Context(), c.ref, id); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// DELETE /v1/profiles/{profile}/history[?video=ID]: 204. With video, that
// video's entries and cursor; without, the whole history and every cursor.
func (n *Node) deleteHistory(c *call) error {
	q := c.r.URL.Query()
	if q.Has("video") {
		video := q.Get("video")
		if err := checkID("video", video); err != nil {
			return err
		}
		if err := n.svc.DeleteVideo(c.r.Context(), c.ref, video); err != nil {
			return err
		}
	} else if err := n.svc.DeleteAll(c.r.Context(), c.ref); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
