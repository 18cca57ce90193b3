package raftring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/gossip/wallclock"
)

// DefaultRingReconcileInterval is the default of
// raftring.ReconcilerConfig.Interval.
const DefaultRingReconcileInterval = 5 * time.Second

// Configurator is the ring configuration as the leader changes it.
// raftring.Ring implements it; the simulator substitutes its own. Methods are
// safe for concurrent use; the changing ones block until committed (or
// their timeout) and fail with ErrNotRingLeader off the leader.
type Configurator interface {
	// IsLeader reports whether this node may change the ring now.
	IsLeader() bool
	// MaxVoters is the cap on voting servers AddServer applies.
	MaxVoters() int
	// Servers returns the group's servers.
	Servers() ([]ring.Server, error)
	// RingMembers returns the member set the current table was computed for.
	RingMembers() []ring.NodeID
	// AddServer adds or promotes a server, or updates its address (see
	// raftring.Ring.AddServer).
	AddServer(id ring.NodeID, raftAddr string) error
	// RemoveServer removes a server; a no-op if absent.
	RemoveServer(id ring.NodeID) error
	// SetMembers commits a new member set.
	SetMembers(members []ring.NodeID) error
}

var _ Configurator = (*Ring)(nil)

// ReconcilerConfig configures a raftring.Reconciler.
type ReconcilerConfig struct {
	// Membership is where members come from. Required.
	Membership ring.Membership
	// Ring is the ring configuration to change. Required.
	Ring Configurator
	// Controller holds the decision rules' settings (DeadNodeGrace).
	Controller ring.ControllerConfig
	// Interval is how often the reconciler runs without being notified: the
	// bound on how late a dead member past its grace is removed, and the
	// retry period after a failed change. Each run reads the membership and
	// the raft configuration, which is cheap. The default value is 5
	// seconds.
	Interval time.Duration
	// Clock gives the time the rules are decided at. The default value is
	// the wall clock.
	Clock gossip.Clock
	// Logger receives the changes made (info) and failed (warn). The
	// default value discards them.
	Logger *slog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (c *ReconcilerConfig) EnsureDefaults() {
	c.Controller.EnsureDefaults()
	if c.Interval == 0 {
		c.Interval = DefaultRingReconcileInterval
	}
	if c.Clock == nil {
		c.Clock = wallclock.Clock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports settings that cannot work.
func (c ReconcilerConfig) Validate() error {
	if c.Membership == nil || c.Ring == nil {
		return errors.New("raftring: ring reconciler needs a membership and a ring")
	}
	if c.Interval <= 0 {
		return fmt.Errorf("raftring: ring reconcile interval must be positive, got %v", c.Interval)
	}
	return c.Controller.Validate()
}

// Reconciler runs a ring.Controller against a Membership and a
// raftring.Configurator: on every Notify and every Interval, if this node is the
// ring leader, it feeds the controller the members and the ring's view and
// carries out the actions it decides. It owns one goroutine; Stop ends it.
//
// Wiring a node, in this order: raftring.Open (Bootstrap on the first node
// of a new cluster only); memberlist.New with RaftAddr set to the ring's
// Addr, its OnChange calling the reconciler's Notify; raftring.StartReconciler;
// then Join the seeds. The ring's OnLeader should call Notify too; since
// both callbacks exist before the reconciler does, hold it in an
// atomic.Pointer (nil until started: the first run reads everything
// anyway). Shutting down: Stop the reconciler; if the ring is the leader,
// TransferLeadership; Leave the membership; Shutdown the ring, then the
// membership.
type Reconciler struct {
	cfg  ReconcilerConfig
	ctrl *ring.Controller // owned by the goroutine
	log  *slog.Logger

	wake chan struct{} // capacity 1
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartReconciler starts the reconciler's goroutine; it runs once at
// once, then on Notify and every Interval.
func StartReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctrl, err := ring.NewController(cfg.Membership.LocalID(), cfg.Controller)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{
		cfg:  cfg,
		ctrl: ctrl,
		log:  cfg.Logger.With("component", "ring-reconciler"),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	r.wake <- struct{}{}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Notify asks for a run soon; it never blocks. Wire it to the membership's
// OnChange and the ring's OnLeader, so joins, leaves and a new leadership are
// acted on at once rather than at the next interval.
func (r *Reconciler) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stop ends the goroutine, waiting for a change in progress (at most the
// ring's apply timeout). Stop it before shutting down the ring and the
// membership. It is safe to call more than once.
func (r *Reconciler) Stop() {
	r.once.Do(func() {
		close(r.done)
		r.wg.Wait()
	})
}

func (r *Reconciler) run() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		case <-r.wake:
		}
		r.reconcile()
	}
}

// reconcile is one run: decide, then act, stopping at the first sign of
// lost leadership. A failed action is decided again next run.
func (r *Reconciler) reconcile() {
	rc := r.cfg.Ring
	if !rc.IsLeader() {
		return
	}
	for _, m := range r.cfg.Membership.Members() {
		r.ctrl.Observe(m)
	}
	servers, err := rc.Servers()
	if err != nil {
		r.log.Warn("reading the ring's servers", "err", err)
		return
	}
	view := ring.View{Servers: servers, Members: rc.RingMembers(), MaxVoters: rc.MaxVoters()}
	for _, a := range r.ctrl.Decide(r.cfg.Clock.NowMs(), view) {
		select {
		case <-r.done:
			return
		default:
		}
		var err error
		switch a.Kind {
		case ring.RemoveServer:
			err = rc.RemoveServer(a.ID)
		case ring.AddServer:
			err = rc.AddServer(a.ID, a.RaftAddr)
		case ring.SetMembers:
			err = rc.SetMembers(a.Members)
		}
		if err != nil {
			lv := slog.LevelWarn
			if errors.Is(err, ErrNotRingLeader) {
				lv = slog.LevelDebug // leadership moved (a transfer at shutdown): the new leader acts
			}
			r.log.Log(context.Background(), lv, "ring change failed; retrying later", "action", a.String(), "err", err)
			if errors.Is(err, ErrNotRingLeader) || errors.Is(err, ErrRingClosed) {
				return
			}
			continue
		}
		r.log.Info("ring changed", "action", a.String())
	}
}
