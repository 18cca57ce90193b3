package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nemesis is one fault scenario: it breaks the cluster, heals it, and
// returns once every node is back (the heal time is taken when it returns).
type nemesis struct {
	name string
	what string
	run  func(e *env, rng *rand.Rand, hold time.Duration)
}

func pick(rng *rand.Rand, n int) []int {
	p := rng.Perm(nodes)
	out := make([]int, n)
	for i := range out {
		out[i] = p[i] + 1
	}
	return out
}

var nemeses = []nemesis{
	{"cut-one", "one node disconnected from the peer network (clients still reach it), then reconnected", func(e *env, rng *rand.Rand, hold time.Duration) {
		i := pick(rng, 1)[0]
		e.t.Logf("cut n%d off for %v", i, hold)
		e.cut(i)
		time.Sleep(hold)
		e.heal(i)
	}},
	{"split", "majority/minority: two nodes disconnected from the peer network (each alone; see docs/E2E.md), three keep quorum", func(e *env, rng *rand.Rand, hold time.Duration) {
		m := pick(rng, 2)
		e.t.Logf("split n%d and n%d off for %v", m[0], m[1], hold)
		e.cut(m[0])
		e.cut(m[1])
		time.Sleep(hold)
		e.heal(m[0])
		e.heal(m[1])
	}},
	{"kill", "one node SIGKILLed, restarted on the same data", func(e *env, rng *rand.Rand, hold time.Duration) {
		i := pick(rng, 1)[0]
		e.t.Logf("SIGKILL n%d, restart after %v", i, hold)
		e.kill(i)
		time.Sleep(hold)
		e.start(i)
		if err := e.waitReady(i, 60*time.Second); err != nil {
			e.t.Error(err)
		}
	}},
	{"pause", "one node frozen (docker pause) past the failure detector, then thawed", func(e *env, rng *rand.Rand, hold time.Duration) {
		i := pick(rng, 1)[0]
		e.t.Logf("pause n%d for %v", i, hold)
		e.pause(i)
		time.Sleep(hold)
		e.unpause(i)
	}},
	{"kill-two", "two nodes SIGKILLed at once (some profiles lose two of three replicas), both restarted", func(e *env, rng *rand.Rand, hold time.Duration) {
		m := pick(rng, 2)
		e.t.Logf("SIGKILL n%d and n%d, restart after %v", m[0], m[1], hold)
		e.kill(m[0])
		e.kill(m[1])
		time.Sleep(hold)
		e.start(m[0])
		e.start(m[1])
		for _, i := range m {
			if err := e.waitReady(i, 60*time.Second); err != nil {
				e.t.Error(err)
			}
		}
	}},
	{"rolling-restart", "every node in turn stopped with SIGTERM (graceful) and started, the next once the cluster is whole", func(e *env, rng *rand.Rand, hold time.Duration) {
		for i := 1; i <= nodes; i++ {
			e.t.Logf("rolling: restart n%d", i)
			e.stop(i)
			e.start(i)
			if err := e.waitReady(i, 60*time.Second); err != nil {
				e.t.Error(err)
				return
			}
			if err := e.waitHealthy(30 * time.Second); err != nil {
				e.t.Error(err)
				return
			}
		}
	}},
}

// TestNemeses runs one phase per nemesis, each on a fresh 5-node cluster:
// clients work for a while, the nemesis breaks and heals the cluster, the
// clients go on for 2 s, then the phase waits for the replicas to agree
// and for the pushes, and the checker judges the history.
//
//	PLAYHEAD_E2E=1 go test -v -short -artifacts -outputdir /tmp/e2e ./e2e/
//
// PLAYHEAD_E2E_SEED replays a run's choices (which nodes, which ops);
// PLAYHEAD_E2E_ONLY=name[,name] runs only those nemeses.
func TestNemeses(t *testing.T) {
	requireDocker(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PLAYHEAD_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		must(t, err)
		seed = v
	}
	t.Logf("seed %d; replay: PLAYHEAD_E2E=1 PLAYHEAD_E2E_SEED=%d go test -v -run TestNemeses ./e2e/", seed, seed)
	e := newEnv(t, testing.Short())
	only := os.Getenv("PLAYHEAD_E2E_ONLY")
	var summary []string
	for pi, nm := range nemeses {
		if only != "" && !strings.Contains(","+only+",", ","+nm.name+",") {
			continue
		}
		t.Run(nm.name, func(t *testing.T) {
			e.t = t
			v := runPhase(t, e, nm, seed+uint64(pi))
			summary = append(summary, fmt.Sprintf("%-16s %s", nm.name, strings.SplitN(v.String(), "\n", 2)[0]))
		})
	}
	e.t = t
	t.Logf("summary (seed %d):\n%s", seed, strings.Join(summary, "\n"))
}

func runPhase(t *testing.T, e *env, nm nemesis, seed uint64) Verdict {
	out := t.ArtifactDir()
	if d := os.Getenv("PLAYHEAD_E2E_OUT"); d != "" {
		out = filepath.Join(d, nm.name)
		must(t, os.MkdirAll(out, 0o755))
	}
	t.Logf("%s: %s; history and verdict in %s", nm.name, nm.what, out)
	e.startCluster()
	defer e.saveLogs(out)
	hold, warm := 8*time.Second, 3*time.Second
	if !e.short {
		hold, warm = 25*time.Second, 10*time.Second
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	h := NewHistory()
	w := newWorkload(e, h, nm.name, 4)

	subCtx, stopSubs := context.WithCancel(context.Background())
	var subs sync.WaitGroup
	for i, p := range w.profiles {
		opened := make(chan struct{})
		subs.Add(1)
		go func() {
			defer subs.Done()
			w.runSubscriber(subCtx, fmt.Sprintf("sub-%d", i+1), p, rand.New(rand.NewPCG(seed, uint64(100+i))), opened)
		}()
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			t.Errorf("the push stream of %s did not open in 10 s", p)
		}
	}
	devCtx, stopDevs := context.WithCancel(context.Background())
	var devs sync.WaitGroup
	for i, p := range w.profiles {
		for j := range 2 {
			d := &device{name: fmt.Sprintf("d%d%c", i+1, 'a'+j), profile: p, rng: rand.New(rand.NewPCG(seed, uint64(10*i+j))), seen: map[string]Version{}}
			d.session, d.sessions = d.name+"-s1", 1
			d.pos = 120_000
			devs.Add(1)
			go func() { defer devs.Done(); w.runDevice(devCtx, d) }()
		}
	}
	time.Sleep(warm)
	faultAt := h.Since()
	nm.run(e, rng, hold)
	healAt := h.Since()
	time.Sleep(2 * time.Second)
	stopDevs()
	devs.Wait()

	// Convergence: poll until every node answers the same for every key.
	ops := h.Ops()
	keys := map[Key]bool{}
	for _, op := range ops {
		if op.Kind == OpWrite {
			keys[Key{op.Profile, op.Video}] = true
		}
	}
	end := End{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		final, ok, why := e.agree(keys)
		if ok {
			end = End{Final: final, Converged: true, ConvergeAfter: h.Since() - healAt}
			break
		}
		if time.Now().After(deadline) {
			end = End{Final: final, Why: why}
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Pushes: give the streams up to 15 s more to deliver the final state.
	for wait := time.Now().Add(15 * time.Second); time.Now().Before(wait); time.Sleep(500 * time.Millisecond) {
		if !strings.Contains(strings.Join(Check(h.Ops(), end).Violations, "\n"), "push-delivery:") {
			break
		}
	}
	stopSubs()
	subs.Wait()
	ops = h.Ops()
	v := Check(ops, end)
	f, err := os.Create(filepath.Join(out, "history.jsonl"))
	must(t, err)
	must(t, WriteJSONL(f, ops))
	f.Close()
	report := fmt.Sprintf("nemesis %s: %s\nseed %d; fault at %v, healed at %v\n%s", nm.name, nm.what, seed, faultAt.Round(time.Millisecond), healAt.Round(time.Millisecond), v)
	os.WriteFile(filepath.Join(out, "verdict.txt"), []byte(report), 0o644)
	t.Log(report)
	if v.Failed() {
		t.Errorf("%s: the checker found violations (history: %s)", nm.name, filepath.Join(out, "history.jsonl"))
	}
	return v
}

// agree reads every key through every node (a plain read) and from every
// node's own replica (?replica=local): they agree when every node answers,
// all plain answers are equal, every replica holding the key holds that
// answer, and at least three do (RF) when it exists. final is the largest
// cursor any node answered or held, so that a phase that never converges
// still counts as lost only what no replica holds.
func (e *env) agree(keys map[Key]bool) (map[Key]Item, bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	final := map[Key]Item{}
	ok, why := true, ""
	disagree := func(format string, args ...any) {
		if ok {
			ok, why = false, fmt.Sprintf(format, args...)
		}
	}
	for _, k := range sortedKeys(keys) {
		path := "/v1/profiles/" + k.Profile + "/positions/" + k.Video
		var first *Item
		holders := 0
		best := Item{}
		for i := 1; i <= nodes; i++ {
			var cj cursorJSON
			st, err := e.get(ctx, c, i, path, e.token, nil, &cj)
			if err != nil || (st != 200 && st != 404) {
				disagree("%s via n%d: status %d %v", k, i, st, err)
			} else {
				it := Item{}
				if st == 200 {
					it = cj.item()
				}
				if best.Ver.Less(it.Ver) {
					best = it
				}
				if first == nil {
					first = &it
				} else if *first != it {
					disagree("%s: the nodes answer %v at %d and (n%d) %v at %d", k, first.Ver, first.Pos, i, it.Ver, it.Pos)
				}
			}
			var lj cursorJSON
			st, err = e.get(ctx, c, i, path+"?replica=local", e.admin, nil, &lj)
			if err != nil || (st != 200 && st != 404) {
				disagree("%s local on n%d: status %d %v", k, i, st, err)
				continue
			}
			if st == 200 {
				holders++
				if best.Ver.Less(lj.version()) {
					best = lj.item()
				}
				if first != nil && lj.item() != *first {
					disagree("%s: n%d's replica holds %v at %d, a node answers %v", k, i, lj.version(), lj.PositionMs, first.Ver)
				}
			}
		}
		if !best.Ver.IsZero() {
			final[k] = best
			if holders < 3 {
				disagree("%s: %d replicas hold it, want 3", k, holders)
			}
		}
	}
	return final, ok, why
}
