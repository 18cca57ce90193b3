package client

import (
	"time"

	"github.com/playhead/playhead/crdt"
)

// Default coalescing values of a Tracker.
const (
	// DefaultPlayingInterval is the most often a playing session reports.
	DefaultPlayingInterval = 10 * time.Second
	// DefaultEndingInterval is the cadence in the last EndingShare of a
	// video, so that "completed" and the next episode are known promptly.
	DefaultEndingInterval = 2 * time.Second
	// DefaultEndingShare is the tail of a video reported at EndingInterval.
	DefaultEndingShare = 0.05
	// DefaultSeekTolerance is how far an observed position may stray from
	// what playback explains before the tracker calls it a seek.
	DefaultSeekTolerance = 5 * time.Second
	// DefaultMaxPlaybackRate is the fastest playback speed the seek
	// detection allows for.
	DefaultMaxPlaybackRate = 2.0
)

// Metadata is sent with the first update of a session only; the node keeps
// it for the later updates (DESIGN.md §3).
type Metadata struct {
	Title     string
	SeriesID  string
	NextVideo string
}

// TrackerConfig describes one playback session. Device, Session and Video
// are required; zero durations and rates take their defaults.
type TrackerConfig struct {
	// Device is the stable id of this physical device.
	Device string
	// Session is a new id for each playback start (e.g. a random UUID).
	Session string
	// Video is the content id.
	Video string
	// Meta goes out with the session's first update.
	Meta Metadata

	// PlayingInterval is the longest a playing session stays silent, and
	// the shortest gap between two heartbeat updates. Smaller means
	// fresher positions on other devices after a crash, at more writes.
	// The default value is 10 s.
	PlayingInterval time.Duration
	// EndingInterval replaces PlayingInterval once the position is in the
	// last EndingShare of the video. The default value is 2 s.
	EndingInterval time.Duration
	// EndingShare is the tail of the video (a fraction of its duration)
	// reported at EndingInterval. The default value is 0.05 (5 %).
	EndingShare float64
	// SeekTolerance is how far an observed position may lie outside what
	// playback explains (see Tracker) before it counts as a seek. Too small
	// turns player jitter into new epochs; too large misses short skips.
	// The default value is 5 s.
	SeekTolerance time.Duration
	// MaxPlaybackRate is the fastest speed the player offers: a position
	// may advance up to elapsed×rate (+ tolerance) without being a seek.
	// The default value is 2.
	MaxPlaybackRate float64
}

// EnsureDefaults fills zero fields with their defaults.
func (c *TrackerConfig) EnsureDefaults() {
	if c.PlayingInterval <= 0 {
		c.PlayingInterval = DefaultPlayingInterval
	}
	if c.EndingInterval <= 0 {
		c.EndingInterval = DefaultEndingInterval
	}
	if c.EndingShare <= 0 || c.EndingShare >= 1 {
		c.EndingShare = DefaultEndingShare
	}
	if c.SeekTolerance <= 0 {
		c.SeekTolerance = DefaultSeekTolerance
	}
	if c.MaxPlaybackRate < 1 {
		c.MaxPlaybackRate = DefaultMaxPlaybackRate
	}
}

// Tracker follows one playback session of one video and decides what to
// report and when. It is a state machine: the player feeds it what happens
// (Start, Observe, Pause, Play, SeekTo, Stop, Complete, Tick), always with the
// current time in milliseconds, and gets back the update to send, if one is
// due. It does no I/O, starts no goroutines and never reads a clock.
//
// Versions: the tracker stamps every update with seq = a fresh HLC of the
// shared crdt.Clock, and opens a new epoch (epoch = that seq) at Start, on
// resume after a pause or stop, and on a seek — an explicit SeekTo, or a
// position that playback cannot explain: below the last observed position,
// or ahead of it by more than elapsed×MaxPlaybackRate, by more than
// SeekTolerance either way (a stall — position standing still while time
// passes — is not a seek). The clock is strictly monotonic, so every
// update's version is larger than every version this device stamped or
// observed before; in particular a backwards seek wins over the positions
// it goes back from.
//
// The one exception is a clock reset: when the node refused this device's
// stamps as too far ahead of its clock, the Client restarts its HLC from
// the node's (see Client.Report), and the next stamp may lie below the
// epoch the tracker holds — an epoch that the node never stored. The
// tracker then opens a new epoch with that update, so that seq is not below
// epoch; the new epoch still lies above every version the node stored for
// the session that the Client saw, as DESIGN.md §3 requires of a new epoch.
//
// Coalescing: while playing, at most one update per PlayingInterval
// (EndingInterval in the last EndingShare of the video); at once on start,
// pause, resume, seek, stop and completion; nothing while paused or stopped
// and nothing changes. Metadata rides on the first update only.
//
// Time going backwards (a device clock corrected) is tolerated: elapsed
// time counts as zero and the cadence restarts from the new time.
//
// A Tracker is not safe for concurrent use; it is cheap, so call it on
// every player tick.
type Tracker struct {
	clock *crdt.Clock
	// clockOf, when set (Client.NewTracker), returns the clock to stamp
	// with: the Client's current one, which a clock-skew reset replaces.
	clockOf func() *crdt.Clock
	cfg     TrackerConfig

	started bool
	state   crdt.State
	// posMs is the last position the player reported, at atMs.
	posMs, atMs int64
	// durMs is the video's duration; <= 0 while unknown, and then nothing
	// is emitted (the API requires duration_ms > 0).
	durMs int64

	epoch crdt.HLC
	// newEpoch: the next update opens a new epoch (the viewer acted).
	newEpoch bool
	// urgent: the next update is due at once (Start, pause, seek, …); it
	// stays set while the duration is unknown.
	urgent bool
	// lastEmitMs is when the last update was emitted; valid when emitted.
	lastEmitMs int64
	emitted    bool
	metaSent   bool
	// last is the last emitted update.
	// Invariant: every emitted version is larger than last's, except after
	// a clock reset (whose last version the node refused).
	last crdt.Update
}

// NewTracker returns a tracker for one session. clock is the device's HLC,
// shared by all its trackers and kept in step with the node by Client
// (Client.NewTracker wires it).
func NewTracker(clock *crdt.Clock, cfg TrackerConfig) *Tracker {
	cfg.EnsureDefaults()
	return &Tracker{clock: clock, cfg: cfg}
}

// Session returns the session id.
func (t *Tracker) Session() string { return t.cfg.Session }

// Video returns the video id.
func (t *Tracker) Video() string { return t.cfg.Video }

// State returns the player state the tracker last saw (StateUnknown before
// Start).
func (t *Tracker) State() crdt.State { return t.state }

// Epoch returns the current epoch (0 before the first update).
func (t *Tracker) Epoch() crdt.HLC { return t.epoch }

// Last returns the last update emitted and whether there was one.
func (t *Tracker) Last() (crdt.Update, bool) { return t.last, t.emitted }

// Start begins the session: playing at posMs of a durMs-long video (durMs
// <= 0 if not yet known; see SetDuration). It opens an epoch and returns
// the session's first update. Calling Start again restarts the session in
// a new epoch.
func (t *Tracker) Start(nowMs, posMs, durMs int64) (crdt.Update, bool) {
	t.started = true
	t.durMs = durMs
	t.state = crdt.StatePlaying
	t.setPos(nowMs, posMs)
	t.newEpoch, t.urgent = true, true
	return t.maybeEmit(nowMs, t.posMs)
}

// SetDuration records the video's duration once the player knows it. If an
// update was held back for want of it, the next Observe or Tick emits it.
func (t *Tracker) SetDuration(durMs int64) {
	t.durMs = durMs
	t.posMs = t.clamp(t.posMs)
}

// Observe reports the player's position and state at nowMs — call it on
// every player tick. It returns the update to send when one is due: a state
// change, an implied seek, or the cadence. Before Start it does nothing.
func (t *Tracker) Observe(nowMs, posMs int64, state crdt.State) (crdt.Update, bool) {
	if !t.started || !state.Valid() {
		return crdt.Update{}, false
	}
	posMs = t.clamp(posMs)
	switch {
	case state == crdt.StatePlaying && t.state != crdt.StatePlaying:
		// resume after pause or stop, or replay after completion: the
		// viewer acted.
		t.newEpoch, t.urgent = true, true
	case state != t.state:
		// pause, stop, completion: report at once, same epoch.
		t.urgent = true
	case t.jumped(nowMs, posMs):
		t.newEpoch, t.urgent = true, true
	}
	t.state = state
	t.setPos(nowMs, posMs)
	return t.maybeEmit(nowMs, posMs)
}

// Play reports a resume after a pause (or a replay after stop or
// completion): Observe with StatePlaying.
func (t *Tracker) Play(nowMs, posMs int64) (crdt.Update, bool) {
	return t.Observe(nowMs, posMs, crdt.StatePlaying)
}

// Pause reports a pause: Observe with StatePaused.
func (t *Tracker) Pause(nowMs, posMs int64) (crdt.Update, bool) {
	return t.Observe(nowMs, posMs, crdt.StatePaused)
}

// Stop reports that playback stopped (the viewer left): Observe with
// StateStopped.
func (t *Tracker) Stop(nowMs, posMs int64) (crdt.Update, bool) {
	return t.Observe(nowMs, posMs, crdt.StateStopped)
}

// Complete reports that the video was watched to the end: Observe at the
// duration with StateCompleted.
func (t *Tracker) Complete(nowMs int64) (crdt.Update, bool) {
	return t.Observe(nowMs, t.durMs, crdt.StateCompleted)
}

// SeekTo reports an explicit seek to posMs. The state does not change; the
// update opens a new epoch and is due at once, forwards or backwards.
func (t *Tracker) SeekTo(nowMs, posMs int64) (crdt.Update, bool) {
	if !t.started {
		return crdt.Update{}, false
	}
	t.newEpoch, t.urgent = true, true
	t.setPos(nowMs, t.clamp(posMs))
	return t.maybeEmit(nowMs, t.posMs)
}

// Tick lets time pass without a position from the player. While playing it
// extrapolates the position from the last observation (1× speed, capped at
// the duration) and returns a heartbeat when the cadence says so; it also
// emits an update held back for want of a duration.
func (t *Tracker) Tick(nowMs int64) (crdt.Update, bool) {
	if !t.started {
		return crdt.Update{}, false
	}
	pos := t.posMs
	if t.state == crdt.StatePlaying && nowMs > t.atMs {
		pos = t.clamp(pos + nowMs - t.atMs)
	}
	return t.maybeEmit(nowMs, pos)
}

// jumped reports whether posMs at nowMs is a seek the player did not
// announce (see Tracker).
func (t *Tracker) jumped(nowMs, posMs int64) bool {
	tol := t.cfg.SeekTolerance.Milliseconds()
	var elapsed int64
	if t.state == crdt.StatePlaying && nowMs > t.atMs {
		elapsed = nowMs - t.atMs
	}
	lo := t.posMs - tol
	hi := t.posMs + int64(float64(elapsed)*t.cfg.MaxPlaybackRate) + tol
	return posMs < lo || posMs > hi
}

func (t *Tracker) setPos(nowMs, posMs int64) {
	t.posMs, t.atMs = t.clamp(posMs), nowMs
}

func (t *Tracker) clamp(posMs int64) int64 {
	if posMs < 0 {
		return 0
	}
	if t.durMs > 0 && posMs > t.durMs {
		return t.durMs
	}
	return posMs
}

// interval returns the heartbeat cadence at posMs.
func (t *Tracker) interval(posMs int64) int64 {
	if t.durMs > 0 && float64(posMs) >= float64(t.durMs)*(1-t.cfg.EndingShare) {
		return t.cfg.EndingInterval.Milliseconds()
	}
	return t.cfg.PlayingInterval.Milliseconds()
}

// maybeEmit returns an update for posMs at nowMs if one is due.
func (t *Tracker) maybeEmit(nowMs, posMs int64) (crdt.Update, bool) {
	if t.durMs <= 0 {
		return crdt.Update{}, false
	}
	if t.emitted && nowMs < t.lastEmitMs {
		t.lastEmitMs = nowMs // the clock went back: restart the cadence
	}
	due := t.urgent ||
		(t.state == crdt.StatePlaying && (!t.emitted || nowMs-t.lastEmitMs >= t.interval(posMs)))
	if !due {
		return crdt.Update{}, false
	}
	return t.emit(nowMs, posMs), true
}

func (t *Tracker) emit(nowMs, posMs int64) crdt.Update {
	clk := t.clock
	if t.clockOf != nil {
		clk = t.clockOf()
	}
	seq := clk.Now(nowMs)
	// seq < epoch only after the clock was reset below a refused,
	// too-far-ahead epoch (see Tracker): reopen the epoch from the new clock.
	if t.newEpoch || t.epoch == 0 || seq < t.epoch {
		t.epoch = seq
	}
	u := crdt.Update{
		Video: t.cfg.Video, Device: t.cfg.Device, Session: t.cfg.Session,
		PositionMs: t.clamp(posMs), DurationMs: t.durMs, State: t.state,
		Epoch: t.epoch, Seq: seq,
	}
	if !t.metaSent {
		u.Title, u.SeriesID, u.NextVideo = t.cfg.Meta.Title, t.cfg.Meta.SeriesID, t.cfg.Meta.NextVideo
		t.metaSent = true
	}
	t.newEpoch, t.urgent = false, false
	t.lastEmitMs, t.emitted = nowMs, true
	t.last = u
	return u
}
