package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/gossip/wallclock"
)

// Defaults for Config. Each is the value EnsureDefaults gives a zero field.
const (
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultMaxClockSkew    = gossip.DefaultMaxClockSkew
	DefaultMaxBodyBytes    = 1 << 20 // 1 MiB: the API contract's limit
	DefaultDeviceRate      = 20.0    // writes per second per (account, device)
	DefaultDeviceBurst     = 40
	DefaultAccountRate     = 50.0 // other requests per second per account
	DefaultAccountBurst    = 100
	DefaultRateLimitKeys   = 100_000
	DefaultLongPollWait    = 25 * time.Second
	DefaultLongPollMax     = 60 * time.Second // the API contract's maximum
	DefaultPushBuffer      = 1024
	DefaultSSEHeartbeat    = 15 * time.Second
	DefaultWSPingInterval  = 30 * time.Second
	DefaultSweepInterval   = time.Second
	DefaultSweepBudget     = 8
	DefaultShutdownTimeout = 10 * time.Second
	DefaultTokenCacheSize  = 10_000

	// MinSecretBytes is the shortest accepted auth secret (HS256 wants at
	// least the hash size).
	MinSecretBytes = api.MinSecretBytes
	// MaxBatchUpdates is the most updates one batch POST may carry (API
	// contract).
	MaxBatchUpdates = api.MaxBatch
)

// Config configures a Node. Zero fields take their defaults in
// EnsureDefaults; Validate reports what cannot work. The cmd package turns
// each exported scalar field into a flag and an environment variable.
type Config struct {
	// NodeID is this node's stable id in the cluster (it names the node in
	// /v1/cluster, logs and request ids). The default value is the host
	// name.
	NodeID string

	// Version is the software version GET /v1/node reports (the cmd
	// package sets the binary's). The default value is "" (unknown).
	Version string

	// HTTPAddr is the host:port the device API listens on (Run). Use port 0
	// to let the system choose; Addr reports the bound address. The default
	// value is 127.0.0.1:8080 (loopback: exposing the node is a decision).
	HTTPAddr string

	// DataDir is the directory of the node's Pebble store, created if
	// missing. Required by New; unused by NewWithStore and NewWithService.
	DataDir string

	// RecordCache is how many records (cursors, history entries, profile
	// settings) the node keeps in memory in front of its store, so the read
	// before each write of a hot cursor costs no Pebble lookup; about 700
	// bytes of heap each. 0 means storage.DefaultCacheRecords (65 536);
	// negative turns the cache off.
	RecordCache int

	// WALMinSyncInterval is the shortest time between two syncs of the
	// write-ahead log: under load, commits that arrive within it share the
	// next sync (fewer fsyncs, more writes per sync), at the cost of up to
	// that much added latency; under light load nothing waits. 0 syncs as
	// soon as the previous sync ends. The default value is 0.
	WALMinSyncInterval time.Duration

	// AuthSecret is the HS256 key of device tokens, shared by the cluster.
	// At least MinSecretBytes (32) bytes; shorter is refused. LoadSecret
	// reads it from a file. Required.
	AuthSecret []byte

	// MaxClockSkew is how far ahead of this node's clock a device's epoch or
	// seq may be; further is refused with 400, so a device with a broken
	// clock cannot win forever. Larger tolerates worse device clocks, and
	// lets a broken one dominate for longer. The default value is 60 s.
	MaxClockSkew time.Duration

	// Partitions is the number of partitions profiles hash into; fixed for
	// the life of a cluster (it is part of the on-disk layout). The default
	// value is gossip.DefaultPartitions (1024).
	Partitions int

	// Policy holds the resume thresholds and retention (min_resume_pct,
	// max_resume_pct, min_resume_duration, cursor_ttl, history_ttl). Zero
	// fields take the defaults of crdt.Policy.
	Policy crdt.Policy

	// MaxBodyBytes is the largest request body accepted; larger gets 413
	// too_large. Also the largest WebSocket message. The default value is
	// 1 MiB (the API contract's limit).
	MaxBodyBytes int64

	// DeviceRate and DeviceBurst are the token bucket of writes per
	// (account, device): PUT, each distinct device of a batch, and WebSocket
	// updates. A player reports every few seconds; the burst absorbs an
	// offline device's replay. Excess gets 429 rate_limited with Retry-After.
	// A negative rate disables the limit. The default values are 20/s and 40.
	DeviceRate  float64
	DeviceBurst int

	// AccountRate and AccountBurst are the token bucket of every other
	// authenticated request per account (reads, deletes, settings, opening
	// push streams). A negative rate disables the limit. The default values
	// are 50/s and 100.
	AccountRate  float64
	AccountBurst int

	// RateLimitKeys bounds the memory of the rate limiter: the most buckets
	// kept. Idle (full) buckets are evicted first; under pressure an active
	// one may be forgotten, which only ever grants it a fresh burst. The
	// default value is 100 000 (about 10 MB).
	RateLimitKeys int

	// LongPollWait is the wait of GET …/changes when the request names none,
	// and LongPollMax the longest a request may ask for (longer gets 400).
	// The default values are 25 s and 60 s (the API contract's maximum).
	LongPollWait time.Duration
	LongPollMax  time.Duration

	// PushBuffer is the number of events queued per push subscriber. A
	// subscriber that falls behind keeps only the newest cursor of each
	// video and the newest takeover of each video and superseded session
	// (deletions and hides are all kept: Hub), so its queue holds at most
	// those and the deletions made while it was behind; one whose queue
	// would exceed PushBuffer is dropped (its stream closes and the device
	// reconnects with after=), so one slow device never stalls writers.
	// Larger rides out more of them at the cost of memory (a pointer per
	// event, only while the subscriber is behind). The default value is
	// 1024.
	PushBuffer int

	// SSEHeartbeat is the interval of SSE comment lines that keep proxies
	// from closing an idle stream; WSPingInterval that of WebSocket pings
	// (a peer that does not answer within an interval is disconnected). The
	// default values are 15 s and 30 s.
	SSEHeartbeat   time.Duration
	WSPingInterval time.Duration

	// SweepInterval and SweepBudget pace the background purge of expired
	// and deleted records: every interval the sweep visits SweepBudget
	// partitions, so a full pass takes Partitions/SweepBudget intervals
	// (128 s by default). Reads never depend on the sweep; it only frees
	// space and erases deleted content. A negative interval disables it.
	// The default values are 1 s and 8.
	SweepInterval time.Duration
	SweepBudget   int

	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight requests and push streams before closing them. The default
	// value is 10 s.
	ShutdownTimeout time.Duration

	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call the API from a browser; "*" (CORSAny) allows any. Preflights are
	// answered on every route (cors.go). Tokens travel in the Authorization
	// header, never in cookies, so no credentials mode is offered. The
	// default value is none: browsers on other origins are refused (the
	// page the node serves at / is same-origin and needs nothing).
	CORSOrigins []string

	// TokenCacheSize bounds the cache of verified tokens (keyed by the raw
	// token, honouring exp), which keeps HMAC verification off the hot path.
	// The default value is 10 000.
	TokenCacheSize int

	// Logger receives structured logs: requests at debug, failures at warn
	// and error. Tokens are never logged. The default value is
	// slog.Default().
	Logger *slog.Logger

	// Registry, if set, also receives the node's collectors, labelled
	// node=NodeID (e.g. the process's default registry). /metrics always
	// serves the node's own registry. The default value is nil.
	Registry prometheus.Registerer

	// Clock supplies physical time to the coordinator's HLC, token expiry,
	// the rate limiter and the sweep. Tests inject one to move time. The
	// default value is the wall clock.
	Clock gossip.Clock

	// Cluster describes the cluster for GET /v1/cluster. The default value
	// describes this node alone (one member owning every partition).
	Cluster ClusterInfo
	// ClusterOptions, if set, makes the node a cluster member (New only).
	// The default value is nil: the node runs alone.
	ClusterOptions *ClusterOptions
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.NodeID == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.NodeID = h
		} else {
			c.NodeID = "playhead"
		}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.Partitions == 0 {
		c.Partitions = ring.DefaultPartitions
	}
	c.Policy.EnsureDefaults()
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DeviceRate == 0 {
		c.DeviceRate = DefaultDeviceRate
	}
	if c.DeviceBurst == 0 {
		c.DeviceBurst = DefaultDeviceBurst
	}
	if c.AccountRate == 0 {
		c.AccountRate = DefaultAccountRate
	}
	if c.AccountBurst == 0 {
		c.AccountBurst = DefaultAccountBurst
	}
	if c.RateLimitKeys == 0 {
		c.RateLimitKeys = DefaultRateLimitKeys
	}
	if c.LongPollWait == 0 {
		c.LongPollWait = DefaultLongPollWait
	}
	if c.LongPollMax == 0 {
		c.LongPollMax = DefaultLongPollMax
	}
	if c.PushBuffer == 0 {
		c.PushBuffer = DefaultPushBuffer
	}
	if c.SSEHeartbeat == 0 {
		c.SSEHeartbeat = DefaultSSEHeartbeat
	}
	if c.WSPingInterval == 0 {
		c.WSPingInterval = DefaultWSPingInterval
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.SweepBudget == 0 {
		c.SweepBudget = DefaultSweepBudget
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = wallclock.Clock{}
	}
}

// Validate reports a configuration that cannot work, in words an operator
// can act on. It expects EnsureDefaults to have run. DataDir is checked by
// New, the only constructor that needs it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("node: "+format, args...)) }
	if len(c.AuthSecret) < MinSecretBytes {
		bad("the auth secret is %d bytes; it must be at least %d (make one with `head -c 32 /dev/urandom | base64 > secret`)",
			len(c.AuthSecret), MinSecretBytes)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http address %q is not host:port (e.g. 127.0.0.1:8080, or :0 for any free port): %v", c.HTTPAddr, err)
	}
	if c.MaxClockSkew < 0 {
		bad("max clock skew is %v; it must not be negative", c.MaxClockSkew)
	}
	if c.Partitions < 1 || c.Partitions > 1<<16 {
		bad("partitions is %d; it must be in [1, 65536]", c.Partitions)
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max body bytes is %d; it must be at least 1024", c.MaxBodyBytes)
	}
	if c.DeviceRate > 0 && c.DeviceBurst < 1 {
		bad("device burst is %d; it must be at least 1 (or disable the limit with a negative device rate)", c.DeviceBurst)
	}
	if c.AccountRate > 0 && c.AccountBurst < 1 {
		bad("account burst is %d; it must be at least 1 (or disable the limit with a negative account rate)", c.AccountBurst)
	}
	if c.RateLimitKeys < 1 {
		bad("rate limit keys is %d; it must be positive", c.RateLimitKeys)
	}
	if c.LongPollMax <= 0 || c.LongPollWait <= 0 || c.LongPollWait > c.LongPollMax {
		bad("long-poll wait %v and max %v must be positive, with wait <= max", c.LongPollWait, c.LongPollMax)
	}
	if c.PushBuffer < 1 {
		bad("push buffer is %d; it must be at least 1", c.PushBuffer)
	}
	if c.SSEHeartbeat <= 0 || c.WSPingInterval <= 0 {
		bad("SSE heartbeat (%v) and WebSocket ping interval (%v) must be positive", c.SSEHeartbeat, c.WSPingInterval)
	}
	if c.SweepInterval > 0 && c.SweepBudget < 1 {
		bad("sweep budget is %d; it must be at least 1 partition per interval", c.SweepBudget)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown timeout is %v; it must be positive", c.ShutdownTimeout)
	}
	if c.TokenCacheSize < 0 {
		bad("token cache size is %d; it must not be negative (0 disables the cache)", c.TokenCacheSize)
	}
	if err := checkOrigins(c.CORSOrigins); err != nil {
		bad("%v (--cors-origins)", err)
	}
	return errors.Join(errs...)
}

// localOptions derives the coordinator's options.
func (c *Config) localOptions() gossip.LocalOptions {
	return gossip.LocalOptions{Partitions: c.Partitions, MaxClockSkew: c.MaxClockSkew, Policy: c.Policy}
}

// LoadSecret reads an auth secret from path: the file's bytes with one
// trailing newline ("\n" or "\r\n") removed. A secret shorter than
// MinSecretBytes is refused.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: reading the auth secret: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("node: the auth secret in %s is %d bytes; it must be at least %d (make one with `head -c 32 /dev/urandom | base64 > %s`)",
			path, len(b), MinSecretBytes, path)
	}
	return b, nil
}
