package crdt

import (
	"math"
	"time"
)

// Policy holds the resume thresholds and retention periods. Zero fields take
// their defaults in EnsureDefaults.
type Policy struct {
	// MinResumePct: below this share watched there is nothing to resume.
	// The default value is 5 (as Jellyfin's).
	MinResumePct float64
	// MaxResumePct: at or past this share the video counts as watched: its
	// resume point is 0 and it leaves "continue watching". The default value
	// is 90.
	MaxResumePct float64
	// MinResumeDuration: videos shorter than this are never resumable. The
	// default value is 5 minutes.
	MinResumeDuration time.Duration
	// CursorTTL: a cursor untouched this long is absent. The default value is
	// 30 days.
	CursorTTL time.Duration
	// HistoryTTL: a history entry older than this is absent, and tombstones
	// and deletion registers are kept this long. The default value is 3 years
	// (3 × 365 days).
	HistoryTTL time.Duration
}

// Default policy values.
const (
	DefaultMinResumePct      = 5.0
	DefaultMaxResumePct      = 90.0
	DefaultMinResumeDuration = 5 * time.Minute
	DefaultCursorTTL         = 30 * 24 * time.Hour
	DefaultHistoryTTL        = 3 * 365 * 24 * time.Hour
)

// DefaultPolicy returns the policy with every default.
func DefaultPolicy() Policy {
	var p Policy
	p.EnsureDefaults()
	return p
}

// EnsureDefaults fills zero fields with their defaults.
func (p *Policy) EnsureDefaults() {
	if p.MinResumePct == 0 {
		p.MinResumePct = DefaultMinResumePct
	}
	if p.MaxResumePct == 0 {
		p.MaxResumePct = DefaultMaxResumePct
	}
	if p.MinResumeDuration == 0 {
		p.MinResumeDuration = DefaultMinResumeDuration
	}
	if p.CursorTTL == 0 {
		p.CursorTTL = DefaultCursorTTL
	}
	if p.HistoryTTL == 0 {
		p.HistoryTTL = DefaultHistoryTTL
	}
}

// Validate reports a policy that cannot work, in words an operator can act on.
func (p Policy) Validate() error {
	switch {
	// Written as negated ranges so that NaN (which flag.Float64 accepts) is
	// refused too.
	case !(p.MinResumePct >= 0 && p.MinResumePct < 100):
		return errPolicy("min_resume_pct must be in [0, 100)")
	case !(p.MaxResumePct > p.MinResumePct && p.MaxResumePct <= 100):
		return errPolicy("max_resume_pct must be above min_resume_pct and at most 100")
	case p.MinResumeDuration < 0:
		return errPolicy("min_resume_duration must not be negative")
	case p.CursorTTL <= 0 || p.HistoryTTL <= 0:
		return errPolicy("cursor_ttl and history_ttl must be positive")
	case p.HistoryTTL < p.CursorTTL:
		return errPolicy("history_ttl must be at least cursor_ttl (deletion registers live in cursor records)")
	}
	return nil
}

type errPolicy string

func (e errPolicy) Error() string { return "crdt: policy: " + string(e) }

// Completed reports whether the cursor counts as watched: state completed,
// or at or past MaxResumePct.
func (p Policy) Completed(c Cursor) bool {
	return c.State == StateCompleted || share(c.PositionMs, c.DurationMs) >= p.MaxResumePct
}

// Resumable reports whether a player should offer to resume: long enough,
// past MinResumePct and not completed.
func (p Policy) Resumable(c Cursor) bool {
	if c.DurationMs < p.MinResumeDuration.Milliseconds() || p.Completed(c) {
		return false
	}
	return share(c.PositionMs, c.DurationMs) >= p.MinResumePct
}

// ResumeMs is where a player should start: the position while resumable,
// else 0.
func (p Policy) ResumeMs(c Cursor) int64 {
	if p.Resumable(c) {
		return c.PositionMs
	}
	return 0
}

// Expired reports whether the cursor's write is older than CursorTTL at
// nowMs (such a write is absent for readers, also when it just arrived).
func (p Policy) Expired(c Cursor, nowMs int64) bool { return p.cursorExpired(c, nowMs) }

func (p Policy) cursorExpired(c Cursor, nowMs int64) bool {
	return c.Version.Seq.Physical()+p.CursorTTL.Milliseconds() < nowMs
}

func (p Policy) entryExpired(v Version, nowMs int64) bool {
	return v.Seq.Physical()+p.HistoryTTL.Milliseconds() < nowMs
}

// share returns position/duration in percent, unrounded (for thresholds).
func share(position, duration int64) float64 {
	if duration <= 0 {
		return 0
	}
	return float64(position) * 100 / float64(duration)
}

// pct returns position/duration in percent, rounded to one decimal (for
// display).
func pct(position, duration int64) float64 {
	return math.Round(share(position, duration)*10) / 10
}
