package node

import (
	"net/http"

	"github.com/playhead/playhead/api"
)

// GET /v1/profiles/{profile}/settings: {"history_paused": bool}.
func (n *Node) getSettings(c *call) error {
	prof, err := n.svc.Profile(c.r.Context(), c.ref)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, api.Settings{HistoryPaused: prof.HistoryPaused})
	return nil
}

// PUT /v1/profiles/{profile}/settings: {"history_paused": bool} (required);
// answers the settings now in force.
func (n *Node) putSettings(c *call) error {
	body, err := readBody(c.w, c.r, n.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	paused, err := decodeSettings(body)
	if err != nil {
		return err
	}
	prof, err := n.svc.SetHistoryPaused(c.r.Context(), c.ref, paused)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, api.Settings{HistoryPaused: prof.HistoryPaused})
	return nil
}
