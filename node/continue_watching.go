package node

import (
	"net/http"
	"sort"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// Limits of GET …/continue-watching.
const (
	defaultContinueLimit = 20
	maxContinueLimit     = 50
)

// GET /v1/profiles/{profile}/continue-watching?limit=20.
func (n *Node) continueWatching(c *call) error {
	limit, err := queryLimit(c.r, "limit", defaultContinueLimit, maxContinueLimit)
	if err != nil {
		return err
	}
	// Two owners' copies, as a resume read (ReadQuorum).
	row, err := n.svc.Row(gossip.WithReadQuorum(c.r.Context(), ReadQuorum), c.ref)
	if err != nil {
		return err
	}
	items := continueRow(row.Cursors, row.Hidden, n.svc.Policy(), limit)
	writeJSON(c.w, http.StatusOK, api.ContinueWatchingResponse{Items: items})
	return nil
}

// continueRow builds the "continue watching" row from the visible cursors
// of a profile, newest updated_hlc first (ties by video), at most limit:
//
//   - a resumable cursor shows as it is;
//   - a completed cursor with next_video shows the next episode instead:
//     the next episode's own cursor if it has one that is not completed
//     (resumable, or barely started: then with resume_ms 0), else — when the
//     next episode has no visible cursor — a placeholder at position 0 (see
//     nextPlaceholder). A completed next episode shows nothing here (its own
//     next_video may continue the chain);
//   - each video shows at most once, at its newest position in the order;
//   - a hidden video (its hide register at or above its cursor's seq) does
//     not show, and neither does the next-episode row it opens; a next
//     episode that was hidden itself does not show while its own hide is at
//     or above the seq of every cursor that opens it (crdt.Hide).
func continueRow(cursors []crdt.Cursor, hides []gossip.HiddenVideo, pol crdt.Policy, limit int) []api.Cursor {
	hideAt := make(map[string]crdt.HLC, len(hides))
	for _, h := range hides {
		hideAt[h.Video] = h.At
	}
	hidden := func(video string, seq crdt.HLC) bool {
		return crdt.Hide{At: hideAt[video]}.Hides(crdt.Cursor{Version: crdt.Version{Seq: seq}})
	}
	byVideo := make(map[string]crdt.Cursor, len(cursors))
	for _, c := range cursors {
		byVideo[c.Video] = c
	}
	type row struct {
		at  crdt.HLC // sort key
		cur api.Cursor
	}
	rows := make(map[string]row, len(cursors))
	add := func(at crdt.HLC, cj api.Cursor) {
		if old, ok := rows[cj.Video]; ok && (old.at > at || (old.at == at && old.cur.UpdatedHLC >= cj.UpdatedHLC)) {
			return
		}
		rows[cj.Video] = row{at: at, cur: cj}
	}
	for _, c := range cursors {
		if hidden(c.Video, c.Version.Seq) {
			continue
		}
		switch {
		case pol.Resumable(c):
			add(c.UpdatedHLC, toCursorJSON(c, pol))
		case pol.Completed(c) && c.NextVideo.Value != "" && c.NextVideo.Value != c.Video:
			next, ok := byVideo[c.NextVideo.Value]
			if hidden(next.Video, max(c.Version.Seq, next.Version.Seq)) || (!ok && hidden(c.NextVideo.Value, c.Version.Seq)) {
				continue
			}
			switch {
			case !ok:
				add(c.UpdatedHLC, nextPlaceholder(c))
			case pol.Completed(next):
				// watched already: nothing to offer
			case pol.Resumable(next):
				// shows on its own
			default:
				// barely started: offer it from the start, ordered by the
				// later of the two viewings
				add(max(c.UpdatedHLC, next.UpdatedHLC), toCursorJSON(next, pol))
			}
		}
	}
	out := make([]row, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].at != out[j].at {
			return out[i].at > out[j].at
		}
		return out[i].cur.Video < out[j].cur.Video
	})
	if len(out) > limit {
		out = out[:limit]
	}
	items := make([]api.Cursor, len(out))
	for i, r := range out {
		items[i] = r.cur
	}
	return items
}

// nextPlaceholder is the row item for the next episode of the completed
// cursor c when that episode has no cursor of its own: video=next_video at
// position 0, resume_ms 0, state "stopped", duration_ms 0 (unknown),
// series_id kept; epoch and seq "0", session and device empty (no device
// has written it: version zero marks it synthetic); updated_at and
// updated_hlc those of the completed episode, which is where it sorts.
func nextPlaceholder(c crdt.Cursor) api.Cursor {
	return api.Cursor{
		Video:      c.NextVideo.Value,
		State:      crdt.StateStopped.String(),
		UpdatedAt:  formatHLCTime(c.UpdatedHLC),
		UpdatedHLC: c.UpdatedHLC,
		SeriesID:   c.SeriesID.Value,
	}
}
