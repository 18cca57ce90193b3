package node

import (
	"bufio"
	"encoding/json"
	"net/http"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// The viewer's controls (docs/API.md "Viewer controls"): hide a title from
// "continue watching", mark it watched or unwatched, export the profile.

// viewerRoutes registers the viewer's controls on mux (called by
// buildHandler, the one place that builds the mux).
func (n *Node) viewerRoutes(mux *http.ServeMux) {
	mux.Handle("DELETE /v1/profiles/{profile}/continue-watching/{video}", n.profile(limitAccount, n.hideFromRow))
	mux.Handle("PUT /v1/profiles/{profile}/positions/{video}/watched", n.profile(limitAccount, n.markWatched))
	mux.Handle("GET /v1/profiles/{profile}/export", n.profile(limitAccount, n.export))
}

// DELETE /v1/profiles/{profile}/continue-watching/{video}: 204. The video
// and the next-episode row it opens leave "continue watching" until a
// position report made after the hide. Idempotent.
func (n *Node) hideFromRow(c *call) error {
	video := c.r.PathValue("video")
	if err := checkID("video", video); err != nil {
		return err
	}
	if err := n.svc.Hide(c.r.Context(), c.ref, video); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// PUT /v1/profiles/{profile}/positions/{video}/watched:
// {"watched": bool, "duration_ms"?, "device"?} → 200 {"applied": true,
// "cursor"}.
func (n *Node) markWatched(c *call) error {
	video := c.r.PathValue("video")
	if err := checkID("video", video); err != nil {
		return err
	}
	body, err := readBody(c.w, c.r, n.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	var b api.MarkRequest
	if err := unmarshal(body, &b); err != nil {
		return err
	}
	if b.Watched == nil {
		return errBadRequest("watched is required: true or false")
	}
	m := gossip.Mark{Video: video, Watched: *b.Watched, Device: b.Device}
	if b.DurationMs != nil {
		if *b.DurationMs <= 0 {
			return errBadRequest("duration_ms must be > 0")
		}
		m.DurationMs = *b.DurationMs
	}
	if b.Device != "" {
		if err := checkID("device", b.Device); err != nil {
			return err
		}
	}
	res, err := n.svc.Mark(c.r.Context(), c.ref, m)
	if err != nil {
		return err
	}
	n.countResults([]gossip.WriteResult{res})
	writeJSON(c.w, http.StatusOK, api.WriteResult{Applied: res.Applied, Cursor: cursorPtr(res.Cursor, res.Found, n.svc.Policy())})
	return nil
}

// exportPageSize is how many records each page of an export reads: the
// export holds at most one page in memory however large the history.
var exportPageSize = 200

// GET /v1/profiles/{profile}/export: NDJSON (application/x-ndjson), one
// api.ExportLine per line: the settings, every visible cursor, every
// visible history entry, then an "end" line with the counts. Read page by
// page (gossip.Service.ExportPage), so memory stays bounded; each page is
// read at its own moment, so a change made during the export may or may
// not appear. An error after the first line ends the stream without the
// "end" line (the status is already sent).
func (n *Node) export(c *call) error {
	ctx := c.r.Context()
	prof, err := n.svc.Profile(ctx, c.ref)
	if err != nil {
		return err
	}
	pol := n.svc.Policy()
	h := c.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", `attachment; filename="playhead-export.ndjson"`)
	c.w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(c.w)
	enc := json.NewEncoder(bw)
	flush := func() {
		bw.Flush()
		http.NewResponseController(c.w).Flush()
	}
	if enc.Encode(api.ExportLine{Type: api.ExportSettings, Settings: &api.Settings{HistoryPaused: prof.HistoryPaused}}) != nil {
		return nil
	}
	counts := map[crdt.Kind]int{}
	for _, kind := range []crdt.Kind{crdt.KindCursor, crdt.KindEntry} {
		after := ""
		for {
			page, err := n.svc.ExportPage(ctx, c.ref, kind, after, exportPageSize)
			if err != nil {
				flush()
				n.log.Warn("export cut short", "request_id", c.reqID, "err", err)
				return nil
			}
			for i, cur := range page.Cursors {
				cj := toCursorJSON(cur, pol)
				hidden := i < len(page.Hidden) && page.Hidden[i]
				if enc.Encode(api.ExportLine{Type: api.ExportCursor, Cursor: &cj, Hidden: &hidden}) != nil {
					return nil
				}
			}
			for _, it := range page.Entries {
				ej := toEntryJSON(it)
				if enc.Encode(api.ExportLine{Type: api.ExportEntry, Entry: &ej}) != nil {
					return nil
				}
			}
			counts[kind] += len(page.Cursors) + len(page.Entries)
			flush()
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	nc, ne := counts[crdt.KindCursor], counts[crdt.KindEntry]
	enc.Encode(api.ExportLine{Type: api.ExportEnd, Cursors: &nc, Entries: &ne})
	flush()
	return nil
}
