package api

// Limits of the wire format (docs/API.md "Errors").
const (
	// MaxIDLen is the longest id (account, profile, video, device, session,
	// entry, series) in bytes.
	MaxIDLen = 128
	// MaxTitleLen is the longest title in bytes (valid UTF-8).
	MaxTitleLen = 1024
	// MaxBatch is the most updates one POST …/positions (or one msgpack
	// WebSocket message) may carry.
	MaxBatch = 500
)

// ValidID reports whether s is an API id: 1–MaxIDLen bytes of printable
// ASCII (0x20–0x7E) without '/'.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '/' {
			return false
		}
	}
	return true
}
