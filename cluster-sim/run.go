package clustersim

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/playhead/playhead/client"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Faults selects the faults of a run.
type Faults struct {
	Partitions bool // symmetric and one-way partitions, healed in random order
	Loss       bool // message loss, duplication, latency spikes (clogged links)
	Crashes    bool // node crashes (one or two at once) and restarts
	Clocks     bool // node and device clock skew, within and beyond max_clock_skew
	Offline    bool // devices offline with queued updates, replayed in a batch
	Membership bool // ring changes: nodes join, leave gracefully, or are removed after dying
	Deletes    bool // devices delete a video's history, all history, pause history
	// StoreErrors: a node's store writes fail for a while (an error, not
	// a crash: nothing written, or written but not synced), Sim.SetStoreErrors.
	StoreErrors bool
	// Viewer: devices hide titles from continue watching and mark them
	// watched or unwatched. Not part of "all" (so the seeds of earlier
	// sweeps keep their traces); TestSweepViewer runs it.
	Viewer bool
}

// ParseFaults reads "all", "none" or a comma list of
// partitions,loss,crashes,clocks,offline.
func ParseFaults(s string) (Faults, error) {
	switch s {
	case "all":
		return Faults{Partitions: true, Loss: true, Crashes: true, Clocks: true, Offline: true, Membership: true,
			Deletes: true, StoreErrors: true}, nil
	case "none", "":
		return Faults{}, nil
	}
	var f Faults
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "partitions":
			f.Partitions = true
		case "loss":
			f.Loss = true
		case "crashes":
			f.Crashes = true
		case "clocks":
			f.Clocks = true
		case "offline":
			f.Offline = true
		case "membership":
			f.Membership = true
		case "deletes":
			f.Deletes = true
		case "viewer":
			f.Viewer = true
		case "store-errors":
			f.StoreErrors = true
		default:
			return f, fmt.Errorf("unknown fault %q (all, none, or partitions,loss,crashes,clocks,offline,membership,deletes,store-errors,viewer)", p)
		}
	}
	return f, nil
}

func (f Faults) String() string {
	var on []string
	for _, x := range []struct {
		ok   bool
		name string
	}{{f.Partitions, "partitions"}, {f.Loss, "loss"}, {f.Crashes, "crashes"}, {f.Clocks, "clocks"}, {f.Offline, "offline"}, {f.Membership, "membership"}, {f.Deletes, "deletes"}, {f.StoreErrors, "store-errors"}, {f.Viewer, "viewer"}} {
		if x.ok {
			on = append(on, x.name)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	if len(on) == 8 && !f.Viewer {
		return "all"
	}
	return strings.Join(on, ",")
}

// RunOptions configures one simulated run.
type RunOptions struct {
	Seed     uint64
	Nodes    int           // default 5
	Devices  int           // default 200
	Duration time.Duration // simulated time with faults; default 5 min
	Faults   Faults
	// Progress, if set, receives a progress line per tenth of the run.
	Progress io.Writer
	// Mutate changes each node's Core config (tests).
	Mutate func(*gossip.CoreConfig)
	// LaxPush makes the push-delivery checker require only the pushes of
	// changes made once faults stopped and push interest was renewed, as it
	// did before renewals caught interested nodes up (gossip/push.go).
	// Off (the default), it requires a push of every change a subscribed
	// device's profile had after it subscribed, faults or not (see
	// checkPushDelivery).
	LaxPush bool
	// LaxReads makes the device-monotonic checker count read answers that
	// went back in the report instead of failing on them, as it did before
	// reads were session-consistent (gossip/seen.go). Off (the default), a
	// read older than what the device saw fails the run.
	LaxReads bool
	// Purge runs the retention phase after the checks (purge.go): deletes
	// with replicas away, the clock moved past cursor_ttl and history_ttl,
	// and the checkers deleted-content-gone, expired-purged and
	// no-resurrection.
	Purge bool
	// Store is the nodes' store: "mem" (storage.Mem with deferred sync),
	// "pebble" (storage.Pebble on vfs.NewCrashableMem, crashes by
	// CrashClone), or "" to let the seed choose: one run in four on Pebble.
	Store string
	// Plan, if set, is executed as it is (a recorded or shrunk run, see
	// plan.go): Seed, Nodes, Devices, Duration, Faults, Store, LaxPush and
	// LaxReads are the plan's, whatever is set above; Purge is the plan's
	// or set above.
	Plan *Plan
}

// Report is the outcome of a run.
type Report struct {
	Options    RunOptions
	TraceHash  string
	Violations []string
	// What happened.
	Writes, Acked, Refused, Faults int
	RingChanges                    int
	Store                          string // the nodes' store
	Cycles                         string // how the nodes' cycles batch inputs (Options.Batch, CycleMs)
	Crashes                        int
	StoreErrors                    int // store writes that failed (Faults.StoreErrors)
	// Push: cursor events devices received, stream reconnects, resume reads.
	Pushes, Reconnects, Reads int
	// StaleReads: resume reads the device read again because a newer
	// version reached it while they were in flight.
	StaleReads int
	SimSeconds float64
	Checks     []string // the invariants checked, each "name: ok" or "name: FAILED"
	// Plan is what the run executed: Run(RunOptions{Plan: rep.Plan})
	// replays it to the same trace hash.
	Plan *Plan
}

// Failed reports whether an invariant was violated.
func (r Report) Failed() bool { return len(r.Violations) > 0 }

// device is one simulated player, driving the real client.Tracker.
type device struct {
	id, profile int
	name        string
	ref         gossip.Ref
	clock       *crdt.Clock
	skewMs      int64 // its clock's offset
	driftPPM    int64 // its clock's rate error, µs per ms
	correction  int64 // what it learned from refusals (the SDK's offset)
	node        int   // the node it talks to
	tr          *client.Tracker
	offline     bool
	queued      []crdt.Update
	// retryAt: a request was refused as unavailable; the device stays
	// offline, its updates queued, until then (the SDK's queue and
	// backoff), and goes through another node.
	retryAt  int64
	sessions int
	inflight bool
	// ops: the device's operations in the plan; next, the first not done.
	ops  []DeviceOp
	next int
	// rng is the device's own stream (reconnect backoff, another node
	// after a refusal): dropping other devices leaves it as it is.
	rng *rand.Rand
	// Push: when the device subscribes to its profile (0: never), its
	// subscription, and what its app observed per video.
	subscribeAt int64
	sub         *pushSub
	obs         map[string]*obsState
	// seen is the largest version of each video the device has seen
	// (read, pushed, or its own acknowledged write): what it sends with a
	// resume read (Op.Seen, the SDK's Playhead-Seen header).
	seen map[string]crdt.Version
}

// saw notes that the device saw version v of video: it reads at or above
// it from now on, and its push filter drops anything older (the SDK's
// Resume and acknowledged writes feed its filter the same way).
func (d *device) saw(video string, v crdt.Version) {
	if d.seen == nil {
		d.seen = map[string]crdt.Version{}
	}
	if d.seen[video].Less(v) {
		d.seen[video] = v
	}
	if d.sub != nil && d.sub.filter != nil {
		d.sub.filter.Saw(video, v)
	}
}

type writeKey struct {
	ref   gossip.Ref
	video string
}

type submitted struct {
	version  crdt.Version
	position int64
	device   string
}

type runner struct {
	s       *Sim
	o       RunOptions
	devs    []*device
	pending map[uint64]pendingReq
	// all writes submitted, per key; the largest acknowledged version.
	writes map[writeKey][]submitted
	acked  map[writeKey]crdt.Version
	// when each acknowledged write was answered, and when each
	// acknowledged delete of a video / of a whole profile was submitted.
	ackedAt      map[writeKey]map[crdt.Version]int64
	videoDeletes map[writeKey][]int64
	profDeletes  map[gossip.Ref][]int64
	// last version sampled per node and key (monotonicity).
	sampled map[ring.NodeID]map[writeKey]crdt.Version
	rep     Report
	viol    []string

	// The ring's control plane: the production decision rules over the
	// simulated membership.
	ctrl      *ring.Controller
	servers   []ring.Server
	left      map[ring.NodeID]bool
	downSince map[ring.NodeID]int64

	// Push streams open per node and profile (push.go); observations that
	// went back; every delete submitted (answered or not), per video and
	// per profile; when each version was first submitted.
	streams     map[ring.NodeID]map[gossip.Ref][]*device
	regressions []regression
	delAsked    map[writeKey][]int64
	// markAsked: videos some device asked to mark; hides: when each
	// acknowledged hide was asked (Faults.Viewer).
	markAsked map[writeKey]bool
	hides     map[writeKey][]int64
	profAsked map[gossip.Ref][]int64
	submitAt  map[writeKey]map[crdt.Version]int64
	start     int64
	quietAt   int64 // when the first liveness phase ended
}

type pendingReq struct {
	dev *device
	ups []crdt.Update
	op  gossip.Op // for deletes and settings
	at  int64     // when it was submitted
}

const simVideos = 4

// simMarkDurMs is the duration_ms of the simulated marks.
const simMarkDurMs = 1_800_000

// Run runs one simulation: the plan drawn from o's seed and options
// (NewPlan), or o.Plan; a fault phase of its duration with devices
// playing, then a liveness phase (faults off, every node up, links healed)
// until the replicas converge, then the checkers.
func Run(o RunOptions) (Report, error) {
	p := o.Plan
	if p == nil {
		var err error
		if p, err = NewPlan(o); err != nil {
			return Report{}, err
		}
	} else if err := p.Validate(); err != nil {
		return Report{}, err
	} else if o.Purge && !p.Purge {
		p = p.Clone() // a recorded run replayed with the retention phase
		p.Purge = true
	}
	return execute(p, o.Progress, o.Mutate)
}

// execute runs plan p.
func execute(p *Plan, progress io.Writer, mutate func(*gossip.CoreConfig)) (Report, error) {
	o := p.Options()
	o.Progress, o.Mutate, o.Plan = progress, mutate, p
	s, err := New(Options{Seed: p.Seed, Nodes: p.Nodes, Partitions: 64, MinLatencyMs: 1, MaxLatencyMs: 20,
		TickMs: 50, Mutate: mutate, DeferredSync: true, Pebble: p.Store == "pebble", UnsyncedPct: p.UnsyncedPct,
		Batch: p.Batch, CycleMs: p.CycleMs,
		Core: gossip.CoreConfig{AEInterval: 500 * time.Millisecond, AEPartitions: 16}})
	if err != nil {
		return Report{}, err
	}
	defer s.Close()
	r := &runner{s: s, o: o, pending: map[uint64]pendingReq{}, writes: map[writeKey][]submitted{},
		acked: map[writeKey]crdt.Version{}, sampled: map[ring.NodeID]map[writeKey]crdt.Version{},
		ackedAt: map[writeKey]map[crdt.Version]int64{}, videoDeletes: map[writeKey][]int64{}, profDeletes: map[gossip.Ref][]int64{}}
	r.rep.Options = o
	r.rep.Plan = p
	r.rep.Store = "mem"
	r.rep.Cycles = fmt.Sprintf("at most %d inputs a cycle, each cycle's write up to %d ms", p.Batch, p.CycleMs)
	if p.Store == "pebble" {
		r.rep.Store = fmt.Sprintf("pebble (crash keeps %d%% of unsynced data)", p.UnsyncedPct)
	}
	r.streams, r.delAsked, r.profAsked = map[ring.NodeID]map[gossip.Ref][]*device{}, map[writeKey][]int64{}, map[gossip.Ref][]int64{}
	r.markAsked, r.hides = map[writeKey]bool{}, map[writeKey][]int64{}
	r.submitAt = map[writeKey]map[crdt.Version]int64{}
	s.OnEvents = r.onEvents
	r.left, r.downSince = map[ring.NodeID]bool{}, map[ring.NodeID]int64{}
	if p.DeadNodeGraceMs > 0 {
		ctrl, err := ring.NewController("n1", ring.ControllerConfig{DeadNodeGrace: time.Duration(p.DeadNodeGraceMs) * time.Millisecond})
		if err != nil {
			return Report{}, err
		}
		r.ctrl = ctrl
		for _, n := range s.Nodes() {
			r.servers = append(r.servers, ring.Server{ID: n.ID, Addr: "sim/" + string(n.ID), Voter: true})
		}
	}
	start := s.Now()
	r.start = start
	byID := map[int]*device{}
	for _, pd := range p.Devices {
		d := &device{id: pd.ID, profile: pd.ID / 2, name: fmt.Sprintf("dev%d", pd.ID), clock: &crdt.Clock{},
			node: pd.Node, skewMs: pd.SkewMs, driftPPM: pd.DriftPPM,
			rng: rand.New(rand.NewPCG(p.Seed, 0xde71ce<<32|uint64(pd.ID)))}
		d.ref = gossip.Ref{Account: fmt.Sprintf("acct%d", d.profile%7), Profile: fmt.Sprintf("prof%d", d.profile)}
		if pd.SubscribeAtMs > 0 {
			d.subscribeAt = start + pd.SubscribeAtMs
		}
		r.devs = append(r.devs, d)
		byID[pd.ID] = d
	}
	for _, op := range p.Ops {
		d := byID[op.Dev]
		d.ops = append(d.ops, op)
	}
	for _, c := range p.NodeClocks {
		s.SetSkew(c.Node, c.SkewMs)
		s.SetDrift(c.Node, c.DriftPPM)
	}
	end := s.Now() + p.DurationMs
	nextFault := 0
	nextSample := s.Now() + 1_000
	nextProgress := s.Now() + p.DurationMs/10
	for s.Now() < end {
		s.RunFor(stepMs)
		r.collect()
		r.drivePush()
		r.driveDevices()
		for nextFault < len(p.Faults) && p.Faults[nextFault].AtMs <= s.Now()-start {
			r.fault(p.Faults[nextFault])
			nextFault++
		}
		if s.Now() >= nextSample {
			r.sample()
			r.reconcileRing()
			nextSample = s.Now() + 2_000
		}
		if progress != nil && s.Now() >= nextProgress {
			fmt.Fprintf(progress, "  seed %d: %3.0f%% simulated %s, %d writes (%d acknowledged), %d faults\n",
				p.Seed, 100*float64(s.Now()-start)/float64(p.DurationMs),
				time.Duration(s.Now()-start)*time.Millisecond, r.rep.Writes, r.rep.Acked, r.rep.Faults)
			nextProgress += p.DurationMs / 10
		}
	}
	r.liveness()
	r.quietAt = s.Now()
	r.freshWrites()
	r.check()
	var leapedMs int64 // time the purge phase skipped (Sim.Leap), not simulated
	if o.Purge {
		leapedMs = r.purgePhase()
	}
	r.rep.Crashes = int(s.Crashes)
	r.rep.Cycles += fmt.Sprintf(" (%d cycles, %.2f inputs each)", s.Cycles, float64(s.Inputs)/float64(max(1, s.Cycles)))
	r.rep.StoreErrors = int(s.StoreErrors)
	r.rep.TraceHash = s.TraceHash()
	r.rep.SimSeconds = float64(s.Now()-start-leapedMs) / 1000
	r.rep.Violations = r.viol
	return r.rep, nil
}

// driveDevices lets every device whose operations have come do them, in
// order: going offline or online at once, anything else (one per step)
// once its previous request was answered.
func (r *runner) driveDevices() {
	el := r.s.Now() - r.start
	for _, d := range r.devs {
		for d.next < len(d.ops) && d.ops[d.next].AtMs <= el {
			op := d.ops[d.next]
			if op.Kind == OpOffline || op.Kind == OpOnline {
				d.next++
				d.offline = op.Kind == OpOffline
				if !d.offline && d.retryAt == 0 && len(d.queued) > 0 {
					r.submit(d, d.queued) // replay the queue in one batch
					d.queued = nil
				}
				continue
			}
			if d.inflight {
				break
			}
			d.next++
			r.act(d, op)
			break
		}
	}
}

// act is device d doing op, as a player would.
func (r *runner) act(d *device, op DeviceOp) {
	s := r.s
	if d.retryAt != 0 && s.Now() >= d.retryAt {
		d.retryAt = 0
		if !d.offline && len(d.queued) > 0 {
			r.submit(d, d.queued) // what a refusal left queued, through another node
			d.queued = nil
		}
	}
	offline := d.offline || d.retryAt != 0
	video := fmt.Sprintf("video%d", op.Video)
	switch op.Kind {
	case OpDeleteVideo, OpDeleteAll, OpPauseHistory, OpHideVideo, OpMarkVideo, OpRead:
		if offline {
			return
		}
	}
	switch op.Kind {
	case OpDeleteVideo:
		r.submitOp(d, gossip.Op{Kind: gossip.OpDeleteVideo, Ref: d.ref, Video: video})
		return
	case OpDeleteAll:
		r.submitOp(d, gossip.Op{Kind: gossip.OpDeleteAll, Ref: d.ref})
		return
	case OpPauseHistory:
		r.submitOp(d, gossip.Op{Kind: gossip.OpSetPaused, Ref: d.ref, Paused: op.Flag})
		return
	case OpHideVideo:
		r.submitOp(d, gossip.Op{Kind: gossip.OpHide, Ref: d.ref, Video: video})
		return
	case OpMarkVideo:
		m := gossip.Mark{Video: video, Watched: op.Flag, DurationMs: simMarkDurMs, Device: d.name}
		r.submitOp(d, gossip.Op{Kind: gossip.OpMark, Ref: d.ref, Video: m.Video, Mark: &m})
		return
	case OpRead:
		// The player asks where to resume a video (a resume read).
		r.submitOp(d, gossip.Op{Kind: gossip.OpCursor, Ref: d.ref, Video: video, Seen: d.seen[video]})
		return
	}
	now := s.Now() + d.clockError(s.Now()) - d.correction
	var u crdt.Update
	var ok bool
	switch {
	case d.tr == nil || op.Kind == OpStart:
		// A new playback: a new session (also after a refusal reset the
		// device's clock and tracker).
		d.sessions++
		d.tr = client.NewTracker(d.clock, client.TrackerConfig{Device: d.name,
			Session: fmt.Sprintf("%s-s%d", d.name, d.sessions), Video: video})
		u, ok = d.tr.Start(now, op.PosMs, op.DurMs)
	case op.Kind == OpSeek:
		u, ok = d.tr.SeekTo(now, op.PosMs)
	case op.Kind == OpPause:
		u, ok = d.tr.Pause(now, op.PosMs)
	case op.Kind == OpPlay:
		u, ok = d.tr.Play(now, op.PosMs)
	default:
		u, ok = d.tr.Observe(now, op.PosMs, crdt.StatePlaying)
	}
	if !ok {
		return
	}
	if offline {
		d.queued = append(d.queued, u)
		return
	}
	r.submit(d, []crdt.Update{u})
}

func (r *runner) submit(d *device, ups []crdt.Update) uint64 {
	for _, u := range ups {
		k := writeKey{d.ref, u.Video}
		v := crdt.Version{Epoch: u.Epoch, Seq: u.Seq, Session: u.Session}
		r.writes[k] = append(r.writes[k], submitted{version: v, position: u.PositionMs, device: d.name})
		if r.submitAt[k] == nil {
			r.submitAt[k] = map[crdt.Version]int64{}
		}
		if _, ok := r.submitAt[k][v]; !ok {
			r.submitAt[k][v] = r.s.Now()
		}
	}
	r.rep.Writes += len(ups)
	id := r.s.Submit(d.node, gossip.Op{Kind: gossip.OpPut, Ref: d.ref, Ups: ups})
	r.pending[id] = pendingReq{dev: d, ups: ups, at: r.s.Now()}
	d.inflight = true
	return id
}

// submitOp sends a history deletion or a settings change.
func (r *runner) submitOp(d *device, op gossip.Op) {
	switch op.Kind {
	case gossip.OpDeleteVideo:
		k := writeKey{op.Ref, op.Video}
		r.delAsked[k] = append(r.delAsked[k], r.s.Now())
	case gossip.OpDeleteAll:
		r.profAsked[op.Ref] = append(r.profAsked[op.Ref], r.s.Now())
	case gossip.OpMark:
		// A mark writes a cursor the node stamps: any version of session
		// gossip.MarkSession by this device, at 0 or at the end, is one a
		// device asked for (nothing-unexpected), answered or not.
		r.markAsked[writeKey{op.Ref, op.Video}] = true
	}
	id := r.s.Submit(d.node, op)
	r.pending[id] = pendingReq{dev: d, op: op, at: r.s.Now()}
	d.inflight = true
}

// collect takes the answers that came.
func (r *runner) collect() {
	for _, id := range slices.Sorted(maps.Keys(r.pending)) {
		p := r.pending[id]
		c, ok := r.s.Result(id)
		if !ok {
			continue
		}
		delete(r.pending, id)
		d := p.dev
		d.inflight = false
		d.clock.Observe(c.Res.HLC) // the SDK follows Playhead-HLC on every answer
		if p.op.Kind != 0 {
			if c.Err == nil {
				switch p.op.Kind {
				case gossip.OpCursor:
					r.rep.Reads++
					// What the player resumes from: an observation (none
					// found is the zero version).
					v := crdt.Version{}
					if c.Res.Found {
						v = c.Res.Cursor.Version
					}
					if seen := d.seen[p.op.Video]; v.Less(seen) && p.op.Seen.Less(seen) {
						// The device saw a newer version (a push) while
						// the read was in flight: the SDK reads again with
						// it rather than hand the app an answer older than
						// what it already shows (client.Resume).
						r.rep.StaleReads++
						break
					}
					r.observe(d, p.op.Video, v, "read")
				case gossip.OpDeleteVideo:
					k := writeKey{p.op.Ref, p.op.Video}
					r.videoDeletes[k] = append(r.videoDeletes[k], p.at)
				case gossip.OpDeleteAll:
					r.profDeletes[p.op.Ref] = append(r.profDeletes[p.op.Ref], p.at)
				case gossip.OpHide:
					k := writeKey{p.op.Ref, p.op.Video}
					r.hides[k] = append(r.hides[k], p.at)
				case gossip.OpMark:
					if len(c.Res.Writes) == 1 && c.Res.Writes[0].Applied {
						w := c.Res.Writes[0]
						k := writeKey{p.op.Ref, p.op.Video}
						v := w.Cursor.Version
						r.writes[k] = append(r.writes[k], submitted{version: v, position: w.Cursor.PositionMs, device: d.name})
						r.rep.Acked++
						if cur := r.acked[k]; cur.Less(v) {
							r.acked[k] = v
						}
						if r.ackedAt[k] == nil {
							r.ackedAt[k] = map[crdt.Version]int64{}
						}
						r.ackedAt[k][v] = r.s.Now()
						d.clock.Observe(w.Cursor.UpdatedHLC)
						d.saw(p.op.Video, v)
					}
				}
			}
			continue
		}
		switch {
		case c.Err == nil:
			for i, w := range c.Res.Writes {
				d.clock.Observe(w.Cursor.UpdatedHLC)
				d.clock.Observe(w.Cursor.Version.Seq)
				if w.Applied {
					r.rep.Acked++
					u := p.ups[i]
					k := writeKey{d.ref, u.Video}
					v := crdt.Version{Epoch: u.Epoch, Seq: u.Seq, Session: u.Session}
					if cur := r.acked[k]; cur.Less(v) {
						r.acked[k] = v
					}
					if r.ackedAt[k] == nil {
						r.ackedAt[k] = map[crdt.Version]int64{}
					}
					r.ackedAt[k][v] = r.s.Now()
					d.saw(u.Video, v)
				}
			}
		case errors.Is(c.Err, crdt.ErrClockSkew):
			// The device corrects its clock by the node's (Playhead-HLC),
			// drops what it cannot send, and — since nothing it stamped
			// with the bad clock was stored — restarts its HLC and its
			// playback from the corrected clock (the client SDK restarts its
			// HLC the same way: client/skew.go).
			d.correction = d.clockError(r.s.Now())
			d.clock = &crdt.Clock{}
			d.tr = nil
			d.queued = nil
			r.rep.Refused++
		case errors.Is(c.Err, gossip.ErrUnavailable):
			// Retry later through another node; the SDK keeps it queued.
			r.rep.Refused++
			d.node = 1 + d.rng.IntN(len(r.s.Nodes()))
			d.queued = append(d.queued, p.ups...)
			d.retryAt = r.s.Now() + 5_000 + d.rng.Int64N(110_000) // a minute on average, as before plans
		default:
			r.rep.Refused++
		}
	}
}

// fault carries out one fault of the schedule. A node it names that does
// not exist (a join a shrunk plan dropped) or is in the wrong state is
// skipped.
func (r *runner) fault(ev FaultEvent) {
	s := r.s
	exists := func(i int) bool { return i >= 1 && i <= len(s.Nodes()) }
	existing := func(is []int) []int {
		return slices.DeleteFunc(slices.Clone(is), func(i int) bool { return !exists(i) })
	}
	r.rep.Faults++
	switch ev.Kind {
	case FaultPartition:
		s.Partition(existing(ev.Nodes), existing(ev.To))
	case FaultCut:
		if exists(ev.Nodes[0]) && exists(ev.To[0]) {
			s.CutOneWay(ev.Nodes[0], ev.To[0])
		}
	case FaultCrash:
		for _, i := range existing(ev.Nodes) {
			if s.Node(i).Up {
				s.Crash(i)
				s.SetAlive(i, false)
				r.downSince[s.Node(i).ID] = s.Now()
			}
		}
	case FaultRestart:
		if i := ev.Nodes[0]; exists(i) && !s.Node(i).Up {
			s.Restart(i)
			s.SetAlive(i, true)
		}
	case FaultLoss:
		s.opts.LossPct, s.opts.DupPct, s.opts.MaxLatencyMs = float64(ev.LossPct), float64(ev.DupPct), max(ev.MaxLatencyMs, s.opts.MinLatencyMs)
	case FaultHealLinks:
		s.Heal()
	case FaultHealLoss:
		s.opts.LossPct, s.opts.DupPct, s.opts.MaxLatencyMs = 0, 0, 20
	case FaultStoreErrors:
		if i := ev.Nodes[0]; exists(i) {
			s.SetStoreErrors(i, ev.ErrPct, s.Now()+ev.ForMs, ev.Mode)
		}
	case FaultJoin, FaultLeave:
		r.ringChange(ev)
	}
}

// ringChange is a membership event: a new node joins, or a member leaves
// gracefully. (Crashes are membership events too: a node dead longer than
// the grace period loses its partitions.) The ring itself changes only
// through the production rules: the leader's ring.Controller decides
// from the membership view, as raftring.Reconciler does over raft.
func (r *runner) ringChange(ev FaultEvent) {
	if r.ctrl == nil {
		return // a plan without membership faults has no controller
	}
	s := r.s
	r.rep.RingChanges++
	if ev.Kind == FaultJoin {
		if _, err := s.AddNode(); err != nil {
			return
		}
	} else if i := ev.Nodes[0]; i > 1 && i <= len(s.Nodes()) {
		// A live member (not the leader, n1) announces its leave.
		n := s.Node(i)
		if n.Up && s.Table().Load()[n.ID] > 0 {
			r.left[n.ID] = true
		}
	}
	r.reconcileRing()
}

// reconcileRing runs the ring controller on the membership view and
// applies its decisions, as the raft leader's reconciler would.
func (r *runner) reconcileRing() {
	if r.ctrl == nil {
		return
	}
	s := r.s
	for _, n := range s.Nodes() {
		m := ring.Member{ID: n.ID, RaftAddr: "sim/" + string(n.ID), State: ring.MemberAlive, Since: s.Now()}
		switch {
		case r.left[n.ID]:
			m.State = ring.MemberLeft
		case !n.Up:
			m.State, m.Since = ring.MemberDead, r.downSince[n.ID]
		}
		r.ctrl.Observe(m)
	}
	view := ring.View{Servers: slices.Clone(r.servers), MaxVoters: 5}
	for id, owned := range s.Table().Load() {
		if owned > 0 {
			view.Members = append(view.Members, id)
		}
	}
	slices.Sort(view.Members)
	for _, a := range r.ctrl.Decide(s.Now(), view) {
		switch a.Kind {
		case ring.RemoveServer:
			r.servers = slices.DeleteFunc(r.servers, func(x ring.Server) bool { return x.ID == a.ID })
		case ring.AddServer:
			r.servers = slices.DeleteFunc(r.servers, func(x ring.Server) bool { return x.ID == a.ID })
			r.servers = append(r.servers, ring.Server{ID: a.ID, Addr: a.RaftAddr, Voter: a.Voter})
		case ring.SetMembers:
			var idx []int
			for i, n := range s.Nodes() {
				if slices.Contains(a.Members, n.ID) {
					idx = append(idx, i+1)
				}
			}
			if len(idx) > 0 && !slices.Equal(a.Members, view.Members) {
				s.SetMembers(idx)
			}
		}
	}
}

// liveness turns faults off, brings every node back and runs until the
// replicas converge and every device's queue is delivered.
func (r *runner) liveness() {
	s := r.s
	s.Heal()
	s.opts.LossPct, s.opts.DupPct, s.opts.MaxLatencyMs = 0, 0, 20
	for i := range s.Nodes() {
		s.SetStoreErrors(i+1, 0, 0, "")
		if !s.Node(i + 1).Up {
			s.Restart(i + 1)
			s.SetAlive(i+1, true)
		}
	}
	for _, d := range r.devs {
		d.offline, d.retryAt = false, 0
	}
	// Every owner holds every node's push interest again once each node
	// renewed it (every third of the lease) after the last restart.
	minEnd := s.Now() + 2*gossip.DefaultInterestLease.Milliseconds()/3 + 500
	deadline := s.Now() + 120_000
	for s.Now() < deadline {
		s.RunFor(100)
		r.collect()
		r.drivePush()
		for _, d := range r.devs {
			if len(d.queued) > 0 && !d.inflight {
				r.submit(d, d.queued)
				d.queued = nil
			}
		}
		idle := len(r.pending) == 0 && r.pushQuiet()
		if ok, _ := s.Converged(); ok && idle && s.Now() >= minEnd {
			s.RunFor(2_000) // one more anti-entropy round over everything
			if ok, _ := s.Converged(); ok {
				return
			}
		}
	}
}

// freshWrites: once faults stop, a new playback on a healthy cluster is
// accepted — every device starts a new session (a new, largest epoch) and
// each such write must be applied and answered with itself.
func (r *runner) freshWrites() {
	s := r.s
	ids := map[uint64]*device{}
	fresh := map[uint64]crdt.Update{}
	// A player asks where to resume before it plays (and follows the
	// node's clock from that answer): every device at once, as players
	// do (one read after the other took a fifth of a 1,000-device run).
	reads := map[*device]uint64{}
	for _, d := range r.devs {
		if !d.inflight {
			reads[d] = s.Submit(d.node, gossip.Op{Kind: gossip.OpCursor, Ref: d.ref, Video: "fresh-" + d.name})
		}
	}
	for end := s.Now() + 5_000; s.Now() < end; {
		s.RunFor(10)
		answered := 0
		for _, id := range reads {
			if _, ok := s.Result(id); ok {
				answered++
			}
		}
		if answered == len(reads) {
			break
		}
	}
	for _, d := range r.devs {
		if d.inflight {
			continue
		}
		d.sessions++
		d.correction = d.clockError(s.Now())
		if c, ok := s.Result(reads[d]); ok && c.Err == nil {
			d.clock.Observe(c.Res.HLC)
		}
		d.tr = client.NewTracker(d.clock, client.TrackerConfig{Device: d.name,
			Session: fmt.Sprintf("%s-s%d", d.name, d.sessions), Video: "fresh-" + d.name})
		u, ok := d.tr.Start(s.Now(), 1_000, 3_600_000)
		if !ok {
			continue
		}
		id := r.submit(d, []crdt.Update{u})
		ids[id], fresh[id] = d, u
	}
	for range 100 {
		s.RunFor(100)
		done := true
		for id := range ids {
			if _, ok := s.Result(id); !ok {
				done = false
			}
		}
		if done {
			break
		}
	}
	from := len(r.viol)
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		d := ids[id]
		c, ok := s.Result(id)
		switch {
		case !ok:
			r.violate("fresh-writes-accepted", "%s via n%d: no answer in 10 s after faults stopped", d.name, d.node)
		case c.Err != nil:
			r.violate("fresh-writes-accepted", "%s via n%d: %v after faults stopped", d.name, d.node, c.Err)
		case len(c.Res.Writes) != 1 || !c.Res.Writes[0].Applied || c.Res.Writes[0].Cursor.Version.Session != d.tr.Session():
			r.violate("fresh-writes-accepted", "%s: a new session's first write (epoch %d seq %d) was not applied: %+v", d.name, fresh[id].Epoch, fresh[id].Seq, c.Res.Writes)
		}
	}
	r.collect()
	r.liveness() // replicate the fresh writes before the end checks
	mark := "ok"
	for _, v := range r.viol[from:] {
		if strings.HasPrefix(v, "fresh-writes-accepted:") {
			mark = "FAILED"
		}
	}
	r.rep.Checks = append(r.rep.Checks, "fresh-writes-accepted: "+mark)
}

// sample checks that no replica's stored version of a cursor ever went
// back (DESIGN.md §6: monotonic versions per replica, crashes included);
// it runs every 2 simulated seconds and at the end. It samples what a
// replica holds durably: a node whose last write's sync failed (the
// store-errors fault) shows writes a crash may still take back — never
// acknowledged, since the cycle that wrote them failed — so it is not
// sampled until a later write syncs them (seeds 95103 and 96408 sampled
// such a write, then lost it in a crash).
func (r *runner) sample() {
	keys := sortedWriteKeys(r.writes)
	for _, n := range r.s.Nodes() {
		if !n.Up || n.disk.syncFailed {
			continue
		}
		m := r.sampled[n.ID]
		if m == nil {
			m = map[writeKey]crdt.Version{}
			r.sampled[n.ID] = m
		}
		for _, k := range keys {
			rec, ok := r.stored(n, k)
			if !ok {
				continue
			}
			if prev := m[k]; rec.Cursor.Version.Less(prev) {
				r.violate("monotonic", "%s: %s/%s went back from %v to %v", n.ID, k.ref.Profile, k.video, prev, rec.Cursor.Version)
			}
			m[k] = rec.Cursor.Version
		}
	}
}

func (r *runner) stored(n *Node, k writeKey) (crdt.Record, bool) {
	p := ring.PartitionOf(k.ref.Account, k.ref.Profile, r.s.opts.Partitions)
	rec, ok, err := n.Store.Get(storage.Key{Partition: p, Account: k.ref.Account, Profile: k.ref.Profile, Kind: crdt.KindCursor, ID: k.video})
	return rec, ok && err == nil
}

func (r *runner) violate(check, format string, args ...any) {
	if len(r.viol) < 20 {
		r.viol = append(r.viol, check+": "+fmt.Sprintf(format, args...))
	}
}

// check runs the end-of-run invariants over every owner's store.
func (r *runner) check() {
	s := r.s
	before := len(r.viol)
	mark := func(name string, from int) {
		state := "ok"
		for _, v := range r.viol[from:] {
			if strings.HasPrefix(v, name+":") {
				state = "FAILED"
			}
		}
		r.rep.Checks = append(r.rep.Checks, name+": "+state)
	}
	if ok, why := s.Converged(); !ok {
		r.violate("convergence", "%s after the liveness phase", why)
	}
	mark("convergence", before)
	r.sample()
	mark("monotonic", 0)
	devices := map[string]int{}
	for _, d := range r.devs {
		devices[d.name] = d.profile
	}
	from := len(r.viol)
	for _, k := range sortedWriteKeys(r.writes) {
		p := ring.PartitionOf(k.ref.Account, k.ref.Profile, s.opts.Partitions)
		for _, o := range s.Table().OwnersOf(p) {
			n := s.node(o)
			rec, ok := r.stored(n, k)
			acked, wasAcked := r.acked[k]
			if !ok {
				if wasAcked {
					r.violate("no-lost-ack", "%s has no cursor for %s/%s, acknowledged %v", o, k.ref.Profile, k.video, acked)
				}
				continue
			}
			c := rec.Cursor
			profRec, _, _ := n.Store.Get(storage.Key{Partition: p, Account: k.ref.Account, Profile: k.ref.Profile, Kind: crdt.KindProfile})
			cleared := max(c.ClearedAt, profRec.Profile.ClearedAt)
			if wasAcked && c.Version.Less(acked) && acked.Seq > cleared {
				r.violate("no-lost-ack", "%s holds %s/%s at %v, below the acknowledged (and not deleted) %v", o, k.ref.Profile, k.video, c.Version, acked)
			}
			if c.Version.IsZero() {
				continue // only a deletion register: nothing was written since
			}
			if c.Version.Seq <= cleared && c.PositionMs == 0 && c.DurationMs == 0 && c.Device == "" {
				continue // deleted and scrubbed by the retention sweep: no content left (purge.go)
			}
			if c.Version.Seq > cleared {
				// Visible: no delete acknowledged after this write's ack
				// may have been submitted (deletion sticks).
				if at, ok := r.ackedAt[k][c.Version]; ok {
					for _, tD := range append(slices.Clone(r.videoDeletes[k]), r.profDeletes[k.ref]...) {
						if tD > at {
							r.violate("deletion-sticks", "%s shows %s/%s at %v, acknowledged at %d and deleted at %d (cursor cleared %d, profile cleared %d)", o, k.ref.Profile, k.video, c.Version, at, tD, c.ClearedAt, profRec.Profile.ClearedAt)
							break
						}
					}
				}
			}
			if c.Version.Seq > cleared && c.Version.Session != gossip.MarkSession {
				// Hide sticks: a cursor acknowledged before a hide was
				// asked (and acknowledged) stays off continue watching.
				if at, ok := r.ackedAt[k][c.Version]; ok {
					for _, tH := range r.hides[k] {
						if tH > at {
							h, _, _ := n.Store.Get(storage.Key{Partition: p, Account: k.ref.Account, Profile: k.ref.Profile, Kind: crdt.KindHide, ID: k.video})
							if !h.Hide.Hides(c) {
								r.violate("hide-sticks", "%s shows %s/%s at %v in continue watching, acknowledged at %d and hidden at %d (hidden_at %v)", o, k.ref.Profile, k.video, c.Version, at, tH, h.Hide.At)
							}
							break
						}
					}
				}
			}
			marked := c.Version.Session == gossip.MarkSession && r.markAsked[k] && (c.PositionMs == 0 || c.PositionMs == simMarkDurMs)
			if !marked && !slices.ContainsFunc(r.writes[k], func(w submitted) bool {
				return w.version == c.Version && w.position == c.PositionMs && w.device == c.Device
			}) {
				r.violate("nothing-unexpected", "%s holds %s/%s = %v at %d by %q, which no device wrote", o, k.ref.Profile, k.video, c.Version, c.PositionMs, c.Device)
			}
			if prof, ok := devices[c.Device]; !ok || fmt.Sprintf("prof%d", prof) != k.ref.Profile {
				r.violate("isolation", "%s/%s holds a write of device %q of another profile", k.ref.Profile, k.video, c.Device)
			}
		}
	}
	mark("no-lost-ack", from)
	mark("deletion-sticks", from)
	mark("nothing-unexpected", from)
	mark("isolation", from)
	if r.o.Faults.Viewer {
		mark("hide-sticks", from)
	}
	r.checkPushDelivery()
	r.checkObservations()
}

// mark adds check name to the report, failed if a violation since from
// names it.
func (r *runner) mark(name string, from int) {
	state := "ok"
	for _, v := range r.viol[from:] {
		if strings.HasPrefix(v, name+":") {
			state = "FAILED"
		}
	}
	r.rep.Checks = append(r.rep.Checks, name+": "+state)
}

func sortedWriteKeys[V any](m map[writeKey]V) []writeKey {
	out := make([]writeKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b writeKey) int {
		return cmp.Or(strings.Compare(a.ref.Account, b.ref.Account), strings.Compare(a.ref.Profile, b.ref.Profile),
			strings.Compare(a.video, b.video))
	})
	return out
}

// clockError is how far the device's clock is ahead of simulated time at
// now: its offset plus its drift since the run began.
func (d *device) clockError(now int64) int64 {
	return d.skewMs + d.driftPPM*(now-simEpoch)/1_000_000
}
