package bench

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Workloads lists the workload names Config.Workload accepts.
var Workloads = []string{"put", "batch", "ws", "read", "propagation"}

// Defaults of Config, as named constants (`playhead-bench --help` shows them).
const (
	DefaultConcurrency       = 32
	DefaultDuration          = 10 * time.Second
	DefaultWarmup            = 2 * time.Second
	DefaultProfiles          = 1000
	DefaultVideos            = 100
	DefaultDevicesPerProfile = 3
	DefaultZipfS             = 1.1
	DefaultBatch             = 50
	DefaultSubscribers       = 20
	DefaultPush              = "ws"
	// DefaultDrain bounds how long requests in flight at the end of the run
	// may take to finish; their latency is recorded, then the run stops.
	DefaultDrain = 10 * time.Second
)

// ErrConfig is returned (wrapped) for a configuration that cannot run.
var ErrConfig = errors.New("bench: bad config")

// Config describes one run. Zero fields take the defaults above
// (EnsureDefaults); Validate says what is wrong with the rest.
type Config struct {
	// URL is the base URL of the service under test (http or https).
	URL string
	// Token is the bearer token sent with every request, unless Mint is set.
	Token string
	// Mint, when set, gives the token for a profile (called once per
	// profile): the generator then acts as one account per profile, the way
	// real devices of different households would.
	Mint func(profile string) (string, error)

	// Workload is one of Workloads.
	Workload string
	// Rate > 0 runs open loop at Rate requests (or WebSocket updates) per
	// second, latency measured from each one's intended send time; 0 runs
	// closed loop. The default value is 0.
	Rate float64
	// Concurrency is the closed loop's workers, or the open loop's most
	// requests in flight; for ws, the WebSocket connections (one simulated
	// device each). The default value is 32.
	Concurrency int
	// Duration is the measured time; Warmup runs before it unrecorded.
	Duration, Warmup time.Duration
	// Drain bounds the wait for requests in flight when the run ends. The
	// default value is 10s.
	Drain time.Duration

	// Profiles and Videos are the key space, each picked with a Zipf law of
	// exponent ZipfS (> 1); profile p has DevicesPerProfile devices, each
	// with its own session per video. Defaults 1000, 100, 1.1 and 3.
	Profiles, Videos int
	ZipfS            float64
	// Uniform picks profiles and videos uniformly instead (ZipfS unused),
	// as the wrk check does (bench/wrk).
	Uniform           bool
	DevicesPerProfile int
	// Batch is the updates per batch request (≤ 500). The default value is 50.
	Batch int
	// Pipeline is, for ws, the updates a device sends back to back before
	// it waits for their acks (a device replaying its queue); one operation
	// is then the whole group. The default value is 1.
	Pipeline int
	// WSMsgpack makes ws speak the playhead.v1.msgpack subprotocol: the
	// Pipeline updates go as one binary message holding an array, answered
	// by one array.
	WSMsgpack bool
	// WSOmitOwn makes each ws device open its stream with
	// omit_device=ITS-ID, so the node does not echo its own writes back
	// (it still pushes its siblings'). Against a target without the
	// parameter the stream is refused.
	WSOmitOwn bool
	// Push is the propagation subscribers' transport: "ws" or "sse"; the
	// default value is "ws". Subscribers is the subscribed profiles, each
	// watched by one device while others write; the default value is 20.
	Push        string
	Subscribers int
	// NoPrefill skips the read workload's prefill (one cursor per profile
	// and video, written once per target and key space).
	NoPrefill bool
	// Seed makes the key choices reproducible (the interleaving of workers
	// is not).
	Seed uint64
	// Progress receives one line per second; nil for none.
	Progress io.Writer
	// OnWindow, when set, is called with true when the measured window
	// begins and with false when it ends (Compare reads the servers' CPU
	// time there). It must not block.
	OnWindow func(begin bool)
}

// EnsureDefaults fills zero fields with the defaults.
func (c *Config) EnsureDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.Profiles <= 0 {
		c.Profiles = DefaultProfiles
	}
	if c.Videos <= 0 {
		c.Videos = DefaultVideos
	}
	if c.ZipfS == 0 {
		c.ZipfS = DefaultZipfS
	}
	if c.DevicesPerProfile <= 0 {
		c.DevicesPerProfile = DefaultDevicesPerProfile
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 1
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.Push == "" {
		c.Push = DefaultPush
	}
	if c.Subscribers <= 0 {
		c.Subscribers = DefaultSubscribers
	}
	c.URL = strings.TrimRight(c.URL, "/")
}

// Validate reports a configuration that cannot run.
func (c *Config) Validate() error {
	switch {
	case !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://"):
		return fmt.Errorf("%w: url %q must start with http:// or https://", ErrConfig, c.URL)
	case c.Token == "" && c.Mint == nil:
		return fmt.Errorf("%w: no token (give --token, or --secret-file to mint one)", ErrConfig)
	case !validWorkload(c.Workload):
		return fmt.Errorf("%w: workload %q is not one of %s", ErrConfig, c.Workload, strings.Join(Workloads, ", "))
	case c.Rate < 0:
		return fmt.Errorf("%w: rate %v is negative (0 = closed loop)", ErrConfig, c.Rate)
	case c.ZipfS <= 1:
		return fmt.Errorf("%w: zipf exponent %v must be > 1", ErrConfig, c.ZipfS)
	case c.Pipeline > 256:
		return fmt.Errorf("%w: pipeline %d is over 256", ErrConfig, c.Pipeline)
	case c.Batch > 500:
		return fmt.Errorf("%w: batch %d is over the API's 500", ErrConfig, c.Batch)
	case c.Push != "ws" && c.Push != "sse":
		return fmt.Errorf("%w: push %q is not ws or sse", ErrConfig, c.Push)
	}
	return nil
}

func validWorkload(w string) bool {
	for _, x := range Workloads {
		if x == w {
			return true
		}
	}
	return false
}
