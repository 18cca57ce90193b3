package e2e

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Key names one cursor: a profile's video.
type Key struct{ Profile, Video string }

func (k Key) String() string { return k.Profile + "/" + k.Video }

// End is what the cluster holds once the faults are healed.
type End struct {
	// Final is the converged cursor of every key the phase wrote; a key
	// absent from it has no visible cursor (never written, or deleted).
	Final map[Key]Item
	// Converged: every node answered the same for every key, and RF
	// replicas held it, ConvergeAfter after the heal (Converged false: not
	// within the harness's wait, and Why says what still differed).
	Converged     bool
	ConvergeAfter time.Duration
	Why           string
}

// ConvergeWithin is the bound: replicas agree within 5 s of the heal.
const ConvergeWithin = 5 * time.Second

// Verdict is the checker's outcome for one phase.
type Verdict struct {
	Ops, OK, Acked, Lost, Unexpected int
	// Availability is OK / Ops, where OK counts every answer the contract
	// allows (2xx, a read's 404, a stale write's 409).
	Availability  float64
	ConvergeAfter time.Duration
	Converged     bool
	Pushes        int
	Checks        []string // "name: ok" or "name: FAILED (n)"
	Violations    []string
}

// Failed reports whether a rule was broken.
func (v Verdict) Failed() bool { return len(v.Violations) > 0 }

// String is the verdict as verdict.txt shows it.
func (v Verdict) String() string {
	var b strings.Builder
	conv := fmt.Sprintf("%.1fs", v.ConvergeAfter.Seconds())
	if !v.Converged {
		conv = "never"
	}
	fmt.Fprintf(&b, "operations %d, ok %d, acknowledged writes %d, lost %d, unexpected %d, availability %.1f%%, converged after heal %s, pushes %d\n",
		v.Ops, v.OK, v.Acked, v.Lost, v.Unexpected, 100*v.Availability, conv, v.Pushes)
	for _, c := range v.Checks {
		b.WriteString("  " + c + "\n")
	}
	for _, x := range v.Violations {
		b.WriteString("VIOLATION " + x + "\n")
	}
	return b.String()
}

const forever = time.Duration(math.MaxInt64)

// Check judges a phase's history against what the cluster holds at its end,
// with the simulator's rules (cluster-sim/run.go check, push.go):
//
//   - no-lost-ack: every acknowledged write is at or below the final cursor,
//     unless a delete of its video or profile may have followed it (one that
//     did not end before the write began: a delete with no answer may land
//     any time).
//   - nothing-unexpected: the final cursor and every cursor a read, list or
//     push showed is one some device wrote (same session and position).
//   - deletion-sticks: neither the final cursor nor any read that began
//     after an acknowledged delete shows an acknowledged write that ended
//     before the delete began.
//   - device-monotonic: a resume read is never older than the Playhead-Seen
//     it carried, unless a delete of the video or profile was asked before
//     the read ended.
//   - push-delivery: a device subscribed to a profile received, for every
//     final cursor of it written after it subscribed, that version or a
//     later one.
//   - convergence: every node agrees within ConvergeWithin of the heal.
func Check(ops []Op, end End) Verdict {
	var v Verdict
	fail := map[string]int{}
	violate := func(rule, format string, args ...any) {
		fail[rule]++
		if len(v.Violations) < 30 {
			v.Violations = append(v.Violations, rule+": "+fmt.Sprintf(format, args...))
		}
	}
	type wid struct {
		k       Key
		session string
		pos     int64
	}
	writes := map[wid]Op{}
	var deletes []Op
	for _, op := range ops {
		switch op.Kind {
		case OpWrite:
			w := wid{Key{op.Profile, op.Video}, op.Session, op.Pos}
			if prev, ok := writes[w]; !ok || (op.Applied && !prev.Applied) {
				writes[w] = op
			}
		case OpDeleteVideo, OpDeleteAll:
			if op.OK() || op.Unknown() {
				deletes = append(deletes, op)
			}
		}
		switch op.Kind {
		case OpPush, OpCleared, OpSubscribe:
		default:
			v.Ops++
			// an answer the contract allows counts as available: a stale
			// write's 409 and a read's 404 are answers, 503 and no answer
			// are not
			if op.OK() || (op.Status == 404 && (op.Kind == OpRead || op.Kind == OpPlainRead)) || (op.Status == 409 && op.Kind == OpWrite) {
				v.OK++
			}
		}
		if op.Kind == OpWrite && op.Applied {
			v.Acked++
		}
		if op.Kind == OpPush {
			v.Pushes++
		}
	}
	if v.Ops > 0 {
		v.Availability = float64(v.OK) / float64(v.Ops)
	}
	covers := func(d Op, k Key) bool {
		return d.Profile == k.Profile && (d.Kind == OpDeleteAll || d.Video == k.Video)
	}
	endOf := func(d Op) time.Duration {
		if d.OK() {
			return d.End
		}
		return forever
	}
	matches := func(k Key, it Item) (Op, bool) {
		w, ok := writes[wid{k, it.Session, it.Pos}]
		return w, ok && w.Device == it.Writer
	}
	// no-lost-ack
	for _, w := range ops {
		if w.Kind != OpWrite || !w.Applied {
			continue
		}
		k := Key{w.Profile, w.Video}
		if f := end.Final[k]; !f.Ver.Less(w.Ver) {
			continue
		}
		explained := false
		for _, d := range deletes {
			if covers(d, k) && endOf(d) > w.Start {
				explained = true
				break
			}
		}
		if !explained {
			v.Lost++
			violate("no-lost-ack", "%s: write %v at %d by %s via n%d, acknowledged at %v, is above the final cursor %v and no delete explains it",
				k, w.Ver, w.Pos, w.Device, w.Node, w.End, end.Final[k].Ver)
		}
	}
	// nothing-unexpected and deletion-sticks, over the final state and
	// every observation.
	stale := func(k Key, it Item, at time.Duration) (Op, bool) {
		w, ok := matches(k, it)
		if !ok || !w.Applied {
			return Op{}, false
		}
		for _, d := range deletes {
			if covers(d, k) && d.OK() && d.Start > w.End && d.End < at {
				return d, true
			}
		}
		return Op{}, false
	}
	for _, k := range sortedKeys(end.Final) {
		it := end.Final[k]
		if _, ok := matches(k, it); !ok {
			v.Unexpected++
			violate("nothing-unexpected", "%s: the final cursor %v at %d by %q is no write of the history", k, it.Ver, it.Pos, it.Writer)
		}
		if d, ok := stale(k, it, forever); ok {
			violate("deletion-sticks", "%s: the final cursor %v at %d was written before a %s acknowledged at %v (asked at %v)", k, it.Ver, it.Pos, d.Kind, d.End, d.Start)
		}
	}
	for _, op := range ops {
		var items []Item
		switch op.Kind {
		case OpRead, OpPlainRead, OpPush:
			if op.Found {
				items = []Item{{Video: op.Video, Pos: op.Pos, Session: op.Session, Writer: op.Writer, Ver: op.Ver}}
			}
		case OpList:
			items = op.Items
		}
		for _, it := range items {
			k := Key{op.Profile, it.Video}
			if _, ok := matches(k, it); !ok {
				v.Unexpected++
				violate("nothing-unexpected", "%s: a %s by %s via n%d at %v showed %v at %d by %q, which no device wrote", k, op.Kind, op.Device, op.Node, op.Start, it.Ver, it.Pos, it.Writer)
			}
			if op.Kind == OpPush {
				continue // a push in flight may trail a delete
			}
			if d, ok := stale(k, it, op.Start); ok {
				violate("deletion-sticks", "%s: a %s by %s via n%d begun at %v showed %v at %d, written before a %s asked at %v and acknowledged at %v",
					k, op.Kind, op.Device, op.Node, op.Start, it.Ver, it.Pos, d.Kind, d.Start, d.End)
			}
		}
	}
	// device-monotonic
	for _, op := range ops {
		if op.Kind != OpRead || op.Seen.IsZero() || !(op.OK() || op.Status == 404) {
			continue
		}
		got := Version{}
		if op.Found {
			got = op.Ver
		}
		if !got.Less(op.Seen) {
			continue
		}
		k := Key{op.Profile, op.Video}
		explained := false
		for _, d := range deletes {
			if covers(d, k) && d.Start < op.End {
				explained = true
			}
		}
		if !explained {
			violate("device-monotonic", "%s: %s read via n%d at %v with Playhead-Seen %v and got %v (status %d)", k, op.Device, op.Node, op.Start, op.Seen, got, op.Status)
		}
	}
	// push-delivery
	subs := map[string]Op{}
	got := map[string]map[string]Version{}
	for _, op := range ops {
		switch op.Kind {
		case OpSubscribe:
			if _, ok := subs[op.Device]; !ok && op.OK() {
				subs[op.Device] = op
			}
		case OpPush:
			if got[op.Device] == nil {
				got[op.Device] = map[string]Version{}
			}
			if got[op.Device][op.Video].Less(op.Ver) {
				got[op.Device][op.Video] = op.Ver
			}
		}
	}
	for _, dev := range sortedKeys(subs) {
		s := subs[dev]
		for _, k := range sortedKeys(end.Final) {
			it := end.Final[k]
			if k.Profile != s.Profile {
				continue
			}
			w, ok := matches(k, it)
			if !ok || w.Start < s.End {
				continue // written before the device subscribed
			}
			if g := got[dev][k.Video]; g.Less(it.Ver) {
				violate("push-delivery", "%s (subscribed at %v) never received %s at %v (written at %v by %s via n%d); the largest it received: %v",
					dev, s.End, k, it.Ver, w.Start, w.Device, w.Node, g)
			}
		}
	}
	// convergence
	v.Converged, v.ConvergeAfter = end.Converged, end.ConvergeAfter
	if !end.Converged {
		violate("convergence", "replicas did not agree after the heal: %s", end.Why)
	} else if end.ConvergeAfter > ConvergeWithin {
		violate("convergence", "replicas agreed %.1fs after the heal, more than %v", end.ConvergeAfter.Seconds(), ConvergeWithin)
	}
	for _, rule := range []string{"no-lost-ack", "nothing-unexpected", "deletion-sticks", "device-monotonic", "push-delivery", "convergence"} {
		if n := fail[rule]; n > 0 {
			v.Checks = append(v.Checks, fmt.Sprintf("%s: FAILED (%d)", rule, n))
		} else {
			v.Checks = append(v.Checks, rule+": ok")
		}
	}
	return v
}

func sortedKeys[K interface{ comparable }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}
