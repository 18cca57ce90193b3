package api

// Wire types of the viewer's controls (docs/API.md "Viewer controls").

// MarkRequest is the body of PUT …/positions/{video}/watched. Watched is
// required; DurationMs is required when the video has no resume position
// yet (else the cursor's is kept); Device is recorded as the cursor's
// device.
type MarkRequest struct {
	Watched    *bool  `json:"watched"`
	DurationMs *int64 `json:"duration_ms,omitempty"`
	Device     string `json:"device,omitempty"`
}

// Export line types (GET …/export, NDJSON: one ExportLine per line).
const (
	ExportSettings = "settings"
	ExportCursor   = "cursor"
	ExportEntry    = "entry"
	ExportEnd      = "end"
)

// ExportLine is one line of an export: {"type": "settings", "settings"},
// {"type": "cursor", "cursor", "hidden"} (hidden: off "continue
// watching"), {"type": "entry", "entry"}, and a last {"type": "end",
// "cursors": N, "entries": N} that tells a complete export from a cut one.
type ExportLine struct {
	Type     string        `json:"type"`
	Settings *Settings     `json:"settings,omitempty"`
	Cursor   *Cursor       `json:"cursor,omitempty"`
	Hidden   *bool         `json:"hidden,omitempty"`
	Entry    *HistoryEntry `json:"entry,omitempty"`
	Cursors  *int          `json:"cursors,omitempty"`
	Entries  *int          `json:"entries,omitempty"`
}
