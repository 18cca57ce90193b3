package client

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/playhead/playhead/api"
)

// Clock is the device's time source in Unix milliseconds. Production uses
// the wall clock (the default); tests and the simulator inject a virtual
// one. Must be safe for concurrent use.
type Clock interface {
	NowMs() int64
}

// WallClock reads time.Now.
type WallClock struct{}

// NowMs implements Clock.
func (WallClock) NowMs() int64 { return time.Now().UnixMilli() }

// Default values of Config.
const (
	DefaultRequestTimeout       = 10 * time.Second
	DefaultWSFailuresBeforePoll = 3
	DefaultWSRetryInterval      = 2 * time.Minute
	DefaultLongPollWait         = 25 * time.Second
	DefaultPingInterval         = 30 * time.Second
	DefaultRetryAfter           = time.Second
	DefaultClockSyncThreshold   = time.Second
	// maxLongPollWait is the API's limit on wait=.
	maxLongPollWait = 60 * time.Second
)

// Config configures a Client. BaseURL and Device are required; every other
// zero field takes its default in EnsureDefaults.
type Config struct {
	// BaseURL is the node (or load balancer) to talk to, e.g.
	// "https://playhead.example.com". Any node serves the whole API.
	BaseURL string
	// Token is the bearer token (JWT) sent with every request; SetToken
	// replaces it (after a refresh).
	Token string
	// Device is this physical device's stable id, the default of
	// TrackerConfig.Device in Client.NewTracker.
	Device string

	// HTTPClient makes every request, the WebSocket dial included. Leave
	// its Timeout at 0: long-polls wait longer than a plain request, and
	// the Client sets a deadline per request instead. The default value is
	// a new http.Client with the default transport.
	HTTPClient *http.Client
	// RequestTimeout bounds one request (a long-poll gets LongPollWait on
	// top). A write that times out is queued. The default value is 10 s.
	RequestTimeout time.Duration

	// QueuePath is the offline queue's file; its directory must exist (New
	// refuses one that does not, with ErrBadConfig).
	// Empty keeps the queue in memory only (it then does not survive the
	// app restarting). Ignored when QueueStorage is set.
	QueuePath string
	// QueueStorage replaces the queue file (the simulator passes a
	// MemStorage).
	QueueStorage QueueStorage
	// QueueLimit bounds the offline queue; beyond it the oldest update is
	// dropped. The default value is 10000 (DefaultQueueLimit).
	QueueLimit int

	// Clock is the device's time source. The default value is WallClock.
	Clock Clock
	// Rand drives the reconnect jitter. Pass a seeded one for reproducible
	// runs. The default value is seeded from crypto/rand. Only the Client
	// uses it (under a lock): do not share it with other code.
	Rand *rand.Rand
	// Logger gets what the SDK cannot return: queue save failures, dropped
	// updates, reconnects. The default value discards.
	Logger *slog.Logger

	// BackoffBase and BackoffCap shape the reconnect backoff (see
	// Backoff). The default values are 250 ms and 30 s.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// WSFailuresBeforePoll is how many WebSocket attempts in a row may
	// fail before Subscribe falls back to long-poll. The default value is 3.
	WSFailuresBeforePoll int
	// WSRetryInterval is how often a subscription in long-poll mode tries
	// the WebSocket again. The default value is 2 min.
	WSRetryInterval time.Duration
	// LongPollWait is the wait= of each long-poll (at most 60 s, the API's
	// limit). Longer means fewer requests; shorter notices a dead
	// connection sooner. The default value is 25 s.
	LongPollWait time.Duration
	// PingInterval is how often a WebSocket subscription pings the node;
	// a ping unanswered within the interval drops the connection (and
	// reconnects). The default value is 30 s.
	PingInterval time.Duration
	// DefaultRetryAfter is the wait after a 429 or 503 that carries no
	// Retry-After header. The default value is 1 s.
	DefaultRetryAfter time.Duration
	// ClockSyncThreshold: when the node's Playhead-HLC differs from the
	// device clock by more than this, NowMs corrects the device clock by
	// the difference (see Client.NowMs). The default value is 1 s.
	ClockSyncThreshold time.Duration
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.QueueStorage == nil && c.QueuePath != "" {
		c.QueueStorage = &FileStorage{Path: c.QueuePath}
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = DefaultQueueLimit
	}
	if c.Clock == nil {
		c.Clock = WallClock{}
	}
	if c.Rand == nil {
		var seed [16]byte
		crand.Read(seed[:]) // never fails (crypto/rand panics instead)
		c.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffCap <= 0 {
		c.BackoffCap = DefaultBackoffCap
	}
	if c.WSFailuresBeforePoll <= 0 {
		c.WSFailuresBeforePoll = DefaultWSFailuresBeforePoll
	}
	if c.WSRetryInterval <= 0 {
		c.WSRetryInterval = DefaultWSRetryInterval
	}
	if c.LongPollWait <= 0 {
		c.LongPollWait = DefaultLongPollWait
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.DefaultRetryAfter <= 0 {
		c.DefaultRetryAfter = DefaultRetryAfter
	}
	if c.ClockSyncThreshold <= 0 {
		c.ClockSyncThreshold = DefaultClockSyncThreshold
	}
}

// Validate reports a config that cannot work, in words a developer can act
// on. Call it after EnsureDefaults (New does both).
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return bad("BaseURL %q must be an http:// or https:// URL with a host", c.BaseURL)
	case checkID(ErrBadConfig, "Device", c.Device) != nil:
		return bad("Device %q must be 1-%d bytes of printable ASCII without '/'", c.Device, api.MaxIDLen)
	case c.HTTPClient.Timeout != 0:
		return bad("HTTPClient.Timeout must be 0 (long-polls outlast it); set RequestTimeout instead")
	case c.LongPollWait > maxLongPollWait:
		return bad("LongPollWait %v is above the API's limit of %v", c.LongPollWait, maxLongPollWait)
	case c.BackoffCap < c.BackoffBase:
		return bad("BackoffCap %v is below BackoffBase %v", c.BackoffCap, c.BackoffBase)
	}
	if fs, ok := c.QueueStorage.(*FileStorage); ok {
		return checkQueueDir(fs.Path)
	}
	return nil
}
