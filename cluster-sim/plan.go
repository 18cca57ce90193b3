package clustersim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// A run is a plan executed: NewPlan draws, from the seed and the options,
// everything the run will do on purpose — the fault schedule and every
// device's operations, each at its time — and Run executes it. Executing
// the same plan always gives the same trace hash, so a plan written to a
// file (JSON) replays the run exactly (`playhead sim --replay FILE`), and
// the shrinker (shrink.go) edits a failing plan — drops faults, devices,
// the tail of the fault phase — and executes what is left.
//
// What the execution still draws (message latency, loss and duplication;
// which unsynced writes a crash keeps; how many inputs a node's cycle
// takes and how long it lasts; whether a faulty store fails a write; a
// device's reconnect backoff) comes from streams of their own, derived
// from the seed per link, per node and per device (sim.go's linkRand,
// nodeRand, cycleRand and storeRand, runner.devRand), never from
// one stream shared by everything: dropping a fault or a device from a plan
// then leaves the other links' and devices' draws as they were, instead of
// re-rolling the whole run.

// planFormat is the version of the plan's JSON format.
//
// 2: the nodes' cycles (batch, cycle_ms) and the store-errors fault.
const planFormat = 2

// Plan is a run's schedule: the cluster, the devices, the faults and the
// workload. Times are milliseconds after the start of the fault phase.
type Plan struct {
	Format     int    `json:"format"`
	Seed       uint64 `json:"seed"`
	Nodes      int    `json:"nodes"`
	DurationMs int64  `json:"duration_ms"` // the fault phase; the liveness phase follows
	// Kinds are the faults the plan was drawn with (RunOptions.Faults):
	// the checkers read it (hide-sticks runs with viewer).
	Kinds Faults `json:"faults"`
	// Store is "mem" or "pebble"; UnsyncedPct what a Pebble crash keeps.
	Store       string `json:"store"`
	UnsyncedPct int    `json:"unsynced_pct"`
	// Batch is the most waiting inputs a node's cycle takes, CycleMs the
	// longest a cycle's store write lasts (sim.go, Options.Batch and
	// CycleMs); each cycle's own draws come from the node's cycle stream.
	Batch   int   `json:"batch"`
	CycleMs int64 `json:"cycle_ms"`
	// DeadNodeGraceMs is the ring controller's grace for a dead node; 0:
	// no ring controller (membership faults off).
	DeadNodeGraceMs int64 `json:"dead_node_grace_ms"`
	LaxPush         bool  `json:"lax_push,omitempty"`
	LaxReads        bool  `json:"lax_reads,omitempty"`
	// Purge runs the retention phase after the checks (RunOptions.Purge).
	Purge bool `json:"purge,omitempty"`
	// NodeClocks: the initial nodes' clock offsets and drifts.
	NodeClocks []NodeClock  `json:"node_clocks,omitempty"`
	Devices    []PlanDevice `json:"devices"`
	Faults     []FaultEvent `json:"schedule"`
	Ops        []DeviceOp   `json:"ops"`
}

// NodeClock is node Node's (1-based) clock: offset and rate error.
type NodeClock struct {
	Node     int   `json:"node"`
	SkewMs   int64 `json:"skew_ms"`
	DriftPPM int64 `json:"drift_ppm"`
}

// PlanDevice is one device: its id (its name is dev<ID>, its profile
// ID/2), the node it talks to (1-based), its clock, and when it subscribes
// to its profile's pushes (0: never).
type PlanDevice struct {
	ID            int   `json:"id"`
	Node          int   `json:"node"`
	SkewMs        int64 `json:"skew_ms,omitempty"`
	DriftPPM      int64 `json:"drift_ppm,omitempty"`
	SubscribeAtMs int64 `json:"subscribe_at_ms,omitempty"`
}

// Fault kinds (FaultEvent.Kind).
const (
	FaultPartition = "partition"  // Nodes and To cut from each other, both ways
	FaultCut       = "cut"        // messages from Nodes[0] to To[0] dropped
	FaultCrash     = "crash"      // every node of Nodes that is up crashes
	FaultRestart   = "restart"    // Nodes[0], if down, restarts
	FaultLoss      = "loss"       // links lose LossPct, duplicate DupPct, take up to MaxLatencyMs
	FaultHealLinks = "heal-links" // every cut link restored
	FaultHealLoss  = "heal-loss"  // no loss, no duplication, latency back to 1-20 ms
	FaultJoin      = "join"       // a new node joins the ring
	FaultLeave     = "leave"      // Nodes[0] leaves the ring gracefully
	// ErrPct percent of Nodes[0]'s store writes fail for ForMs, as Mode
	// says (StoreFailWrite, StoreFailSync, StoreFailEither).
	FaultStoreErrors = "store-errors"
)

// FaultEvent is one fault of the schedule. Nodes are 1-based indexes;
// one that does not exist or is in the wrong state when the fault comes
// (a crash of a node that is down, a node a dropped join would have
// added) is skipped.
type FaultEvent struct {
	AtMs         int64  `json:"at_ms"`
	Kind         string `json:"kind"`
	Nodes        []int  `json:"nodes,omitempty"`
	To           []int  `json:"to,omitempty"`
	LossPct      int    `json:"loss_pct,omitempty"`
	DupPct       int    `json:"dup_pct,omitempty"`
	MaxLatencyMs int64  `json:"max_latency_ms,omitempty"`
	ErrPct       int    `json:"err_pct,omitempty"`
	ForMs        int64  `json:"for_ms,omitempty"`
	Mode         string `json:"mode,omitempty"`
}

// Device operation kinds (DeviceOp.Kind).
const (
	OpStart        = "start"         // a new playback of Video at PosMs of DurMs (a new session)
	OpSeek         = "seek"          // to PosMs
	OpPause        = "pause"         // at PosMs
	OpPlay         = "play"          // from PosMs
	OpObserve      = "observe"       // playing at PosMs
	OpRead         = "read"          // where to resume Video
	OpDeleteVideo  = "delete-video"  // Video's history
	OpDeleteAll    = "delete-all"    // the profile's history
	OpPauseHistory = "pause-history" // history paused (Flag) or resumed
	OpHideVideo    = "hide"          // Video off continue watching
	OpMarkVideo    = "mark"          // Video marked watched (Flag) or unwatched
	OpOffline      = "offline"       // the device goes offline: playback queues
	OpOnline       = "online"        // back online: the queue is sent in one batch
)

// DeviceOp is one thing a device does. A playback operation carries the
// whole playback (video, position, duration) so that a device whose
// tracker was reset (a clock-skew refusal) starts it anew from there.
// An operation that comes while the device's previous request is in
// flight waits for the answer.
type DeviceOp struct {
	AtMs  int64  `json:"at_ms"`
	Dev   int    `json:"dev"`
	Kind  string `json:"op"`
	Video int    `json:"video"`
	PosMs int64  `json:"pos_ms,omitempty"`
	DurMs int64  `json:"dur_ms,omitempty"`
	Flag  bool   `json:"flag,omitempty"`
}

// MarshalText writes the fault kinds as ParseFaults reads them.
func (f Faults) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (f *Faults) UnmarshalText(b []byte) error {
	x, err := ParseFaults(string(b))
	if err != nil {
		return err
	}
	*f = x
	return nil
}

// Duration is the fault phase's length.
func (p *Plan) Duration() time.Duration { return time.Duration(p.DurationMs) * time.Millisecond }

// Options are the RunOptions the plan stands for (Devices: how many it
// has now).
func (p *Plan) Options() RunOptions {
	return RunOptions{Seed: p.Seed, Nodes: p.Nodes, Devices: len(p.Devices), Duration: p.Duration(), Faults: p.Kinds,
		Store: p.Store, LaxPush: p.LaxPush, LaxReads: p.LaxReads, Purge: p.Purge}
}

// Clone returns a deep copy.
func (p *Plan) Clone() *Plan {
	c := *p
	c.NodeClocks = slices.Clone(p.NodeClocks)
	c.Devices = slices.Clone(p.Devices)
	c.Faults = make([]FaultEvent, len(p.Faults))
	for i, f := range p.Faults {
		f.Nodes, f.To = slices.Clone(f.Nodes), slices.Clone(f.To)
		c.Faults[i] = f
	}
	c.Ops = slices.Clone(p.Ops)
	return &c
}

// Marshal encodes the plan as JSON.
func (p *Plan) Marshal() ([]byte, error) { return json.MarshalIndent(p, "", " ") }

// ParsePlan decodes and validates a plan written by Marshal.
func ParsePlan(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate refuses a plan the runner cannot execute.
func (p *Plan) Validate() error {
	switch {
	case p.Format != planFormat:
		return fmt.Errorf("plan: format %d, want %d", p.Format, planFormat)
	case p.Nodes < 1 || p.Nodes > 64:
		return fmt.Errorf("plan: %d nodes, want 1-64", p.Nodes)
	case p.DurationMs < 0:
		return fmt.Errorf("plan: negative duration")
	case p.Store != "mem" && p.Store != "pebble":
		return fmt.Errorf("plan: store %q, want mem or pebble", p.Store)
	case p.UnsyncedPct < 0 || p.UnsyncedPct > 100:
		return fmt.Errorf("plan: unsynced_pct %d, want 0-100", p.UnsyncedPct)
	case p.Batch < 1 || p.Batch > 1<<20:
		return fmt.Errorf("plan: batch %d, want 1-%d", p.Batch, 1<<20)
	case p.CycleMs < 0 || p.CycleMs > 60_000:
		return fmt.Errorf("plan: cycle_ms %d, want 0-60000", p.CycleMs)
	}
	for _, c := range p.NodeClocks {
		if c.Node < 1 || c.Node > p.Nodes || c.DriftPPM <= -1_000_000 || c.DriftPPM >= 1_000_000 {
			return fmt.Errorf("plan: node clock %+v", c)
		}
	}
	ids := map[int]bool{}
	for _, d := range p.Devices {
		if d.ID < 0 || ids[d.ID] || d.Node < 1 || d.Node > p.Nodes || d.DriftPPM <= -1_000_000 || d.DriftPPM >= 1_000_000 {
			return fmt.Errorf("plan: device %+v (ids unique and ≥ 0, node 1-%d)", d, p.Nodes)
		}
		ids[d.ID] = true
	}
	for _, f := range p.Faults {
		switch f.Kind {
		case FaultPartition, FaultCut, FaultCrash, FaultRestart, FaultLoss, FaultHealLinks, FaultHealLoss, FaultJoin, FaultLeave:
		case FaultStoreErrors:
			if f.ErrPct < 1 || f.ErrPct > 100 || f.ForMs < 0 || f.ForMs > 3_600_000 ||
				f.Mode != StoreFailWrite && f.Mode != StoreFailSync && f.Mode != StoreFailEither {
				return fmt.Errorf("plan: fault %+v (err_pct 1-100, for_ms 0-3600000, mode write, sync or either)", f)
			}
		default:
			return fmt.Errorf("plan: unknown fault %q", f.Kind)
		}
		if f.LossPct < 0 || f.LossPct > 100 || f.DupPct < 0 || f.DupPct > 100 || f.MaxLatencyMs < 0 || f.MaxLatencyMs > 60_000 {
			return fmt.Errorf("plan: fault %+v", f)
		}
		for _, i := range append(slices.Clone(f.Nodes), f.To...) {
			if i < 1 || i > 64 {
				return fmt.Errorf("plan: fault %+v names node %d", f, i)
			}
		}
		if (f.Kind == FaultCut || f.Kind == FaultRestart || f.Kind == FaultLeave || f.Kind == FaultStoreErrors) && len(f.Nodes) == 0 ||
			f.Kind == FaultCut && len(f.To) == 0 {
			return fmt.Errorf("plan: fault %+v names no node", f)
		}
	}
	if !slices.IsSortedFunc(p.Faults, func(a, b FaultEvent) int { return cmp.Compare(a.AtMs, b.AtMs) }) {
		return fmt.Errorf("plan: schedule not in time order")
	}
	for _, o := range p.Ops {
		if !ids[o.Dev] {
			return fmt.Errorf("plan: op %+v of no device", o)
		}
		switch o.Kind {
		case OpStart, OpSeek, OpPause, OpPlay, OpObserve:
			if o.DurMs <= 0 || o.PosMs < 0 || o.PosMs > o.DurMs {
				return fmt.Errorf("plan: op %+v: want 0 ≤ pos_ms ≤ dur_ms, dur_ms > 0", o)
			}
		case OpRead, OpDeleteVideo, OpDeleteAll, OpPauseHistory, OpHideVideo, OpMarkVideo, OpOffline, OpOnline:
		default:
			return fmt.Errorf("plan: unknown op %q", o.Kind)
		}
		if o.Video < 0 || o.Video >= simVideos {
			return fmt.Errorf("plan: op %+v: video 0-%d", o, simVideos-1)
		}
	}
	if !slices.IsSortedFunc(p.Ops, func(a, b DeviceOp) int { return cmp.Compare(a.AtMs, b.AtMs) }) {
		return fmt.Errorf("plan: ops not in time order")
	}
	return nil
}

// stepMs is the runner's step: devices act and faults come on its grid.
const stepMs = 100

func ceilStep(t int64) int64 { return (t + stepMs - 1) / stepMs * stepMs }

// NewPlan draws the plan of a run from o's seed and options.
func NewPlan(o RunOptions) (*Plan, error) {
	if o.Nodes == 0 {
		o.Nodes = 5
	}
	if o.Devices == 0 {
		o.Devices = 200
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Minute
	}
	if o.Nodes < 1 || o.Nodes > 64 || o.Devices < 0 || o.Duration < 0 {
		return nil, fmt.Errorf("options: %d nodes (1-64), %d devices, %s", o.Nodes, o.Devices, o.Duration)
	}
	p := &Plan{Format: planFormat, Seed: o.Seed, Nodes: o.Nodes, DurationMs: o.Duration.Milliseconds(), Kinds: o.Faults,
		LaxPush: o.LaxPush, LaxReads: o.LaxReads, Purge: o.Purge}
	// The store is the seed's choice, from a stream of its own (as before
	// plans: a seed keeps its store).
	pick := rand.New(rand.NewPCG(o.Seed, 0x70eb6e1e))
	usePebble, unsynced := pick.IntN(4) == 0, []int{0, 10, 50, 100}[pick.IntN(4)]
	switch o.Store {
	case "mem":
		usePebble = false
	case "pebble":
		usePebble = true
	case "":
	default:
		return nil, fmt.Errorf("unknown store %q (mem, pebble)", o.Store)
	}
	p.Store = "mem"
	if usePebble {
		p.Store, p.UnsyncedPct = "pebble", unsynced
	}
	// So are the nodes' cycles (sim.go, Options.Batch): how many waiting
	// inputs one cycle takes at most, and how long its store write lasts.
	// (A cycle that takes one input cannot also take long: a node that
	// slow falls behind any load, which is not the run's question.)
	p.Batch, p.CycleMs = []int{1, 8, 64, 4096}[pick.IntN(4)], []int64{0, 1, 2, 5}[pick.IntN(4)]
	if p.Batch == 1 {
		p.CycleMs = 0
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x91a7b5c3))
	f := o.Faults
	if f.Membership {
		// Half the runs remove a dead node at once (an operator with a short
		// --dead-node-grace), half after 20 s.
		p.DeadNodeGraceMs = 20_000
		if rng.IntN(2) == 0 {
			p.DeadNodeGraceMs = 1
		}
	}
	driftRng := rand.New(rand.NewPCG(o.Seed, 0xd41f7))
	dur := p.DurationMs
	for i := range o.Devices {
		d := PlanDevice{ID: i, Node: 1 + rng.IntN(o.Nodes)}
		if f.Clocks && rng.IntN(10) == 0 {
			d.SkewMs = rng.Int64N(240_000) - 120_000 // up to ±2 min: some beyond max_clock_skew
		}
		if f.Clocks {
			// Up to ±2000 ppm (a bad crystal is ±100), 7 s an hour.
			d.DriftPPM = driftRng.Int64N(4_001) - 2_000
		}
		if rng.IntN(4) != 0 {
			// Three devices in four follow their profile's pushes, from
			// some time in the first half of the fault phase.
			d.SubscribeAtMs = 1 + rng.Int64N(dur/2+1)
		}
		p.Devices = append(p.Devices, d)
	}
	if f.Clocks {
		for i := range o.Nodes {
			p.NodeClocks = append(p.NodeClocks, NodeClock{Node: i + 1, SkewMs: rng.Int64N(2_000) - 1_000, DriftPPM: driftRng.Int64N(401) - 200})
		}
	}
	p.Faults = genFaults(rng, f, o.Nodes, dur)
	for _, d := range p.Devices {
		p.Ops = append(p.Ops, genOps(rng, f, d.ID, dur)...)
	}
	slices.SortStableFunc(p.Ops, func(a, b DeviceOp) int { return cmp.Compare(a.AtMs, b.AtMs) })
	return p, nil
}

// genFaults draws the fault schedule: a fault (or a heal) every 2-10 s
// from the fifth second, over a model of the cluster (which nodes exist,
// are up, are members; whether links are cut or lossy) so that heals heal
// something and crashes hit live nodes.
func genFaults(rng *rand.Rand, f Faults, nodes int, dur int64) []FaultEvent {
	var out []FaultEvent
	n, members := nodes, nodes
	up := map[int]bool{}
	left := map[int]bool{}
	for i := 1; i <= n; i++ {
		up[i] = true
	}
	cut, lossy := false, false
	for t := int64(5_000); t <= dur; {
		at := ceilStep(t)
		if at > dur {
			break
		}
		t = at + 2_000 + rng.Int64N(8_000)
		ev := FaultEvent{AtMs: at}
		switch rng.IntN(7) {
		case 0, 1:
			if f.Partitions && n > 1 {
				perm := rng.Perm(n)
				k := 1 + rng.IntN(n-1)
				for i, x := range perm {
					if i < k {
						ev.Nodes = append(ev.Nodes, x+1)
					} else {
						ev.To = append(ev.To, x+1)
					}
				}
				ev.Kind = FaultPartition
				if rng.IntN(3) == 0 {
					ev.Kind, ev.Nodes, ev.To = FaultCut, ev.Nodes[:1], ev.To[:1]
				}
				cut = true
				out = append(out, ev)
				continue
			}
		case 2:
			if f.Crashes {
				k := 1
				if rng.IntN(3) == 0 {
					k = 2 // a correlated failure: two nodes at once
				}
				for _, x := range rng.Perm(n)[:min(k, n)] {
					if up[x+1] {
						ev.Nodes = append(ev.Nodes, x+1)
						up[x+1] = false
					}
				}
				if len(ev.Nodes) > 0 {
					ev.Kind = FaultCrash
					out = append(out, ev)
				}
				continue
			}
		case 6:
			if f.Membership {
				if members < 7 && (members <= 4 || rng.IntN(2) == 0) {
					n++
					members++
					up[n] = true
					ev.Kind = FaultJoin
					out = append(out, ev)
				} else if members > 3 {
					// A live member but n1 (the controller's node) leaves.
					var live []int
					for i := 2; i <= n; i++ {
						if up[i] && !left[i] {
							live = append(live, i)
						}
					}
					if len(live) > 0 {
						x := live[rng.IntN(len(live))]
						left[x] = true
						members--
						ev.Kind, ev.Nodes = FaultLeave, []int{x}
						out = append(out, ev)
					}
				}
				continue
			}
		case 3:
			if f.Loss {
				ev.Kind, ev.LossPct, ev.DupPct, ev.MaxLatencyMs = FaultLoss, rng.IntN(20), rng.IntN(10), 20+rng.Int64N(500)
				lossy = true
				out = append(out, ev)
				continue
			}
		case 4:
			if f.StoreErrors {
				// One node's disk fails a share of its writes for up to 10 s.
				ev.Kind, ev.Nodes = FaultStoreErrors, []int{1 + rng.IntN(n)}
				ev.ErrPct, ev.ForMs = 10+rng.IntN(81), 1_000+rng.Int64N(9_000)
				ev.Mode = []string{StoreFailWrite, StoreFailSync, StoreFailEither}[rng.IntN(3)]
				out = append(out, ev)
				continue
			}
		}
		// Heal something, in random order.
		switch rng.IntN(3) {
		case 0:
			if cut {
				ev.Kind, cut = FaultHealLinks, false
			}
		case 1:
			if lossy {
				ev.Kind, lossy = FaultHealLoss, false
			}
		default:
			for _, x := range rng.Perm(n) {
				if !up[x+1] {
					ev.Kind, ev.Nodes = FaultRestart, []int{x + 1}
					up[x+1] = true
					break
				}
			}
		}
		if ev.Kind != "" {
			out = append(out, ev)
		}
	}
	return out
}

// genOps draws device id's operations: an action every 0.5-5.5 s from a
// time in the first 10 s, over a model of the player (its playback, online
// or not).
func genOps(rng *rand.Rand, f Faults, id int, dur int64) []DeviceOp {
	var out []DeviceOp
	offline, started, playing := false, false, false
	var video int
	var pos, length int64
	for t := rng.Int64N(10_000); ; {
		at := max(ceilStep(t), stepMs)
		if at > dur {
			break
		}
		t = at + 500 + rng.Int64N(5_000)
		op := func(kind string) DeviceOp { return DeviceOp{AtMs: at, Dev: id, Kind: kind} }
		if offline {
			if rng.IntN(20) == 0 {
				offline = false
				out = append(out, op(OpOnline))
			}
		} else if f.Offline && rng.IntN(200) == 0 {
			offline = true
			out = append(out, op(OpOffline))
		}
		if !offline && f.Deletes {
			o := op("")
			switch k := rng.IntN(400); {
			case k < 6:
				o.Kind, o.Video = OpDeleteVideo, rng.IntN(simVideos)
			case k < 7:
				o.Kind = OpDeleteAll
			case k < 10:
				o.Kind, o.Flag = OpPauseHistory, rng.IntN(2) == 0
			}
			if o.Kind != "" {
				out = append(out, o)
				continue
			}
		}
		if !offline && f.Viewer {
			o := op("")
			switch k := rng.IntN(200); {
			case k < 3:
				o.Kind, o.Video = OpHideVideo, rng.IntN(simVideos)
			case k < 5:
				o.Kind, o.Video, o.Flag = OpMarkVideo, rng.IntN(simVideos), rng.IntN(2) == 0
			}
			if o.Kind != "" {
				out = append(out, o)
				continue
			}
		}
		if !offline && rng.IntN(12) == 0 {
			o := op(OpRead)
			o.Video = rng.IntN(simVideos)
			out = append(out, o)
			continue
		}
		var kind string
		switch {
		case !started || rng.IntN(40) == 0:
			// A new playback: another video, a new session.
			kind, started, playing = OpStart, true, true
			video = rng.IntN(simVideos)
			length = 600_000 + rng.Int64N(3_000_000)
			pos = rng.Int64N(length / 2)
		case rng.IntN(10) == 0:
			kind, pos = OpSeek, rng.Int64N(length)
		case playing && rng.IntN(8) == 0:
			kind, playing = OpPause, false
		case !playing:
			kind, playing = OpPlay, true
		default:
			kind, pos = OpObserve, min(length, pos+rng.Int64N(12_000))
		}
		o := op(kind)
		o.Video, o.PosMs, o.DurMs = video, pos, length
		out = append(out, o)
	}
	return out
}
