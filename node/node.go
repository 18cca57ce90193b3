package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/storage"
)

// Node is a running playhead node: the device API over a gossip.Service,
// the push hub, auth, rate limits, metrics and the background sweep.
//
// Lifecycle: New (or NewWithStore, NewWithService) → Run or Serve, which
// return after the context ends and the node has shut down; or Handler in
// a server of the caller's, then Shutdown.
//
// Shutdown order: readiness goes 503; new push streams are refused; every
// push stream is closed (WebSocket close 1001 "going away", SSE error
// event, long-polls answer at once); the HTTP server stops accepting and
// finishes in-flight requests (up to the context's deadline); tracked
// goroutines (sweep, WebSocket readers) are waited for; then the store
// closes. Every write acknowledged before that is durable: the store's
// Write returns only once synced.
type Node struct {
	cfg          Config
	log          *slog.Logger
	clock        gossip.Clock
	svc          gossip.Service
	sweeper      sweeper       // nil: the service has no sweep
	store        storage.Store // closed by Shutdown; nil when the caller owns it
	hub          *Hub
	metrics      *metrics
	auth         *authenticator
	deviceLimit  *limiter
	accountLimit *limiter
	clusterInfo  ClusterInfo
	reqIDs       requestIDs
	polls        keptPolls // long-poll subscriptions kept between polls (changes_keep.go)
	tracker      *tracker
	handler      http.Handler
	ready        atomic.Bool
	started      time.Time

	mu        sync.Mutex
	srv       *http.Server // guarded by mu; set by Serve
	addr      net.Addr     // guarded by mu; the bound address
	closed    bool         // guarded by mu; Shutdown has begun
	listening chan struct{}

	sweepCancel context.CancelFunc // set once by startSweep, before Shutdown can read it (mu)
	// closers run at shutdown after requests and streams ended, in reverse
	// order of registration, before the store closes (cluster parts).
	closers []func(context.Context) error
	// readyCheck, if set, must pass for /readyz to answer 200 (a cluster
	// node: joined and the ring known).
	readyCheck func() error

	shutdownOnce sync.Once
	shutdownErr  error
	shutdownDone chan struct{}
}

// sweeper is the background purge step of a coordinator
// (gossip.Local.Sweep).
type sweeper interface {
	Sweep(nowMs int64, budget int) (purged int, err error)
}

// New opens the Pebble store in cfg.DataDir (creating the directory),
// builds the push hub and the single-node coordinator, and returns a node
// ready to Run.
func New(cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node: the data directory is not set (it holds the node's storage; it is created if missing)")
	}
	if cfg.ClusterOptions != nil {
		return newClusterNode(cfg)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: creating the data directory: %w", err)
	}
	hub := NewHub(cfg.PushBuffer)
	m, err := newMetrics(hub, cfg.NodeID, cfg.Registry)
	if err != nil {
		return nil, err
	}
	store, err := openStore(cfg, m)
	if err != nil {
		return nil, err
	}
	n, err := newLocalNode(cfg, store, hub, m)
	if err != nil {
		store.Close()
		return nil, err
	}
	return n, nil
}

// openStore opens the node's Pebble store in cfg.DataDir, behind the record
// cache unless cfg.RecordCache is negative.
func openStore(cfg Config, m *metrics) (storage.Store, error) {
	p, err := storage.Open(cfg.DataDir, storage.Options{OnSync: m.onSync, WALMinSyncInterval: cfg.WALMinSyncInterval})
	if err != nil {
		return nil, fmt.Errorf("node: opening the store in %s (is another node using it?): %w", cfg.DataDir, err)
	}
	if cfg.RecordCache < 0 {
		return p, nil
	}
	c := storage.NewCached(p, cfg.RecordCache)
	m.recordCache.Store(c)
	return c, nil
}

// NewWithStore is New over a store the caller opened (tests pass
// storage.NewMem()); the node closes it at Shutdown. cfg.DataDir is unused.
func NewWithStore(cfg Config, store storage.Store) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hub := NewHub(cfg.PushBuffer)
	m, err := newMetrics(hub, cfg.NodeID, cfg.Registry)
	if err != nil {
		return nil, err
	}
	return newLocalNode(cfg, store, hub, m)
}

func newLocalNode(cfg Config, store storage.Store, hub *Hub, m *metrics) (*Node, error) {
	local, err := gossip.NewLocal(store, cfg.Clock, hub, cfg.localOptions())
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return assemble(cfg, local, hub, store, m), nil
}

// NewWithService builds a node over a service the caller built (a cluster
// coordinator, or a test double). hub must be the notifier the service
// reports to. The node does not close the service's storage; if the
// service has a Sweep(nowMs, budget) method, the node runs it.
func NewWithService(cfg Config, svc gossip.Service, hub *Hub) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if svc == nil || hub == nil {
		return nil, errors.New("node: NewWithService needs a service and the hub it notifies")
	}
	m, err := newMetrics(hub, cfg.NodeID, cfg.Registry)
	if err != nil {
		return nil, err
	}
	return assemble(cfg, svc, hub, nil, m), nil
}

func assemble(cfg Config, svc gossip.Service, hub *Hub, store storage.Store, m *metrics) *Node {
	n := &Node{
		cfg:          cfg,
		log:          cfg.Logger.With("node", cfg.NodeID),
		clock:        cfg.Clock,
		svc:          svc,
		store:        store,
		hub:          hub,
		metrics:      m,
		deviceLimit:  newLimiter(cfg.DeviceRate, cfg.DeviceBurst, cfg.RateLimitKeys),
		accountLimit: newLimiter(cfg.AccountRate, cfg.AccountBurst, cfg.RateLimitKeys),
		clusterInfo:  cfg.Cluster,
		tracker:      newTracker(),
		listening:    make(chan struct{}),
		shutdownDone: make(chan struct{}),
		started:      time.Now(),
	}
	if sw, ok := svc.(sweeper); ok {
		n.sweeper = sw
	}
	if n.clusterInfo == nil {
		n.clusterInfo = singleNode{n}
	}
	clock := cfg.Clock
	n.auth = newAuthenticator(cfg.AuthSecret, func() time.Time { return time.UnixMilli(clock.NowMs()) },
		cfg.TokenCacheSize, m.onTokenCache)
	var b [4]byte
	rand.Read(b[:])
	n.reqIDs.prefix = hex.EncodeToString(b[:]) + "-"
	n.handler = n.buildHandler()
	n.ready.Store(true)
	return n
}

// Handler returns the node's HTTP handler: every endpoint of API.md plus
// /healthz, /readyz and /metrics.
func (n *Node) Handler() http.Handler { return n.handler }

// Service returns the service the node serves.
func (n *Node) Service() gossip.Service { return n.svc }

// Hub returns the node's push hub.
func (n *Node) Hub() *Hub { return n.hub }

// Addr returns the address Serve listens on, nil before.
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Listening is closed once Serve has its listener (Addr is set).
func (n *Node) Listening() <-chan struct{} { return n.listening }

func (n *Node) httpAddr() string {
	if a := n.Addr(); a != nil {
		return a.String()
	}
	return n.cfg.HTTPAddr
}

// Run listens on cfg.HTTPAddr and serves until ctx ends (SIGTERM in the
// command), then shuts down gracefully. It returns nil after a clean
// shutdown.
func (n *Node) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		n.Shutdown(sctx)
		return fmt.Errorf("node: cannot listen on %s (%v): choose a free address (port 0 picks one)", n.cfg.HTTPAddr, err)
	}
	return n.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends or Shutdown is called, then shuts down
// gracefully (within cfg.ShutdownTimeout when ctx ended). It returns nil
// after a clean shutdown. A node serves at most once.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	n.mu.Lock()
	if n.srv != nil || n.closed {
		n.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
		return errors.New("node: Serve called on a node that is serving or shut down")
	}
	n.srv, n.addr = srv, ln.Addr()
	close(n.listening)
	n.mu.Unlock()
	n.startSweep()
	n.log.Info("serving the device API", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) { // Shutdown was called
			<-n.shutdownDone
			return n.shutdownErr
		}
		sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		n.Shutdown(sctx)
		return fmt.Errorf("node: serving on %s: %w", ln.Addr(), err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	err := n.Shutdown(sctx)
	<-errc
	return err
}

// startSweep runs the service's background purge every SweepInterval in a
// tracked goroutine.
func (n *Node) startSweep() {
	if n.sweeper == nil || n.cfg.SweepInterval < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	n.sweepCancel = cancel
	n.mu.Unlock()
	n.tracker.goTracked(func() {
		t := time.NewTicker(n.cfg.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				purged, err := n.sweeper.Sweep(n.clock.NowMs(), n.cfg.SweepBudget)
				n.metrics.sweptLocal.Add(uint64(max(purged, 0)))
				if err != nil {
					n.metrics.sweepErrors.Inc()
					n.log.Warn("background sweep failed; retrying next interval", "err", err)
				}
			}
		}
	})
}

// Shutdown stops the node gracefully (see Node) and closes the store it
// owns. ctx bounds the wait for in-flight requests and streams; past it
// they are cut off. Safe to call more than once and concurrently; every
// call returns the first shutdown's result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		n.shutdownErr = n.shutdown(ctx)
		close(n.shutdownDone)
	})
	<-n.shutdownDone
	return n.shutdownErr
}

func (n *Node) shutdown(ctx context.Context) error {
	n.log.Info("shutting down: closing push streams, finishing in-flight requests")
	n.ready.Store(false)
	n.mu.Lock()
	n.closed = true
	srv, cancelSweep := n.srv, n.sweepCancel
	n.mu.Unlock()

	n.tracker.stop()
	n.hub.Close()
	n.polls.closeAll()
	if cancelSweep != nil {
		cancelSweep()
	}
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			n.log.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
			srv.Close()
		}
	}
	if !n.tracker.wait(ctx) {
		n.log.Warn("push streams did not finish in time")
	}
	var err error
	for i := len(n.closers) - 1; i >= 0; i-- {
		if cerr := n.closers[i](ctx); cerr != nil {
			n.log.Warn("shutdown step failed", "err", cerr)
			if err == nil {
				err = cerr
			}
		}
	}
	if n.store != nil {
		if cerr := n.store.Close(); cerr != nil {
			err = fmt.Errorf("node: closing the store: %w", cerr)
		}
	}
	n.log.Info("shut down")
	return err
}
