package gossip

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// TestReplScripts runs the replication stories in testdata/repl: a few
// Cores wired by hand, every message delivered (or dropped) by a command,
// every cycle the driver's (Flush, then Ready). Commands:
//
//	cluster nodes=N [partitions=8] [timeout=DUR] [hint-interval=DUR] [ae-interval=DUR] [max-hints=N] [profile=P]
//	                     prints the owners of the test profile (acct/prof)
//	put node=ID id=N video=V pos=DUR [session=S] [profile=P]
//	read node=ID id=N video=V [profile=P] [quorum=N] [local]
//	isolate node=ID      drop every message to and from ID
//	cut from=ID to=ID    drop messages from → to
//	heal                 restore every link
//	deliver [dup] [reverse] [quiet]
//	                     deliver every pending message (each twice with dup;
//	                     each batch in reverse order with reverse), cycle the
//	                     receivers, and repeat until nothing is pending;
//	                     prints one line per message unless quiet
//	tick ms=N            advance the clock, tick and cycle every live node
//	run ms=N [step=100]  tick by step and deliver, until ms have passed
//	done                 prints the answers that came since the last done
//	hide node=ID id=N video=V [profile=P]
//	mark node=ID id=N video=V watched=true|false [dur=DUR] [profile=P]
//	delete node=ID id=N video=V [profile=P]   (DELETE …/history?video=V)
//	paused node=ID id=N value=true|false [profile=P]
//	down node=ID / up node=ID
//	                     the other nodes' membership marks ID dead / alive
//	row node=ID id=N [profile=P]
//	                     the profile's visible cursors and hide registers
//	state video=V [profile=P] [kind=hide]
//	                     every node's stored cursor (or hide register) (its
//	                     store, not a read) and whether the owners' digests
//	                     agree
//	hints                every node's hints (in memory and in its store)
//	crash node=ID        the node stops; its store keeps what it flushed
//	restart node=ID      a new Core over the crashed node's store
//	join node=ID         a new node; the ring is rebalanced over all nodes
//	                     and installed everywhere; prints the moves of the
//	                     test profile's partition
//	handoffs             the partitions each node still has to pull
//	subscribe node=ID [profile=P]
//	                     ID's subscribers follow the profile (SetInterest)
//	pushes               the events handed to subscribed nodes' subscribers
//	                     (Ready.Events of a profile they follow) since the
//	                     last pushes
//
// Regenerate with go test ./gossip -run TestReplScripts -rewrite, then read
// the diff: it is the behaviour under review.
func TestReplScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/repl", func(t *testing.T, path string) {
		var n *scriptNet
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "cluster" && n == nil {
				d.Fatalf(t, "no cluster yet")
			}
			switch d.Cmd {
			case "cluster":
				n = newScriptNet(t, d)
				return n.ownersLine(n.opt(d, "profile", "prof"))
			case "put":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				u := crdt.Update{Video: n.arg(d, "video"), Device: "tv", Session: n.opt(d, "session", "s1"),
					PositionMs: n.dur(d, "pos"), DurationMs: 3_600_000, State: crdt.StatePlaying}
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpPut, Ref: Ref{Account: "acct", Profile: prof}, Ups: []crdt.Update{u}})
				return "ok"
			case "hide":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpHide, Ref: Ref{Account: "acct", Profile: prof}, Video: n.arg(d, "video")})
				return "ok"
			case "mark":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				m := Mark{Video: n.arg(d, "video"), Watched: n.arg(d, "watched") == "true"}
				if d.HasArg("dur") {
					m.DurationMs = n.dur(d, "dur")
				}
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpMark, Ref: Ref{Account: "acct", Profile: prof}, Video: m.Video, Mark: &m})
				return "ok"
			case "delete":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpDeleteVideo, Ref: Ref{Account: "acct", Profile: prof}, Video: n.arg(d, "video")})
				return "ok"
			case "paused":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpSetPaused, Ref: Ref{Account: "acct", Profile: prof}, Paused: n.arg(d, "value") == "true"})
				return "ok"
			case "down", "up":
				// What membership would tell the other nodes.
				id := ring.NodeID(n.arg(d, "node"))
				for _, o := range n.ids {
					if c := n.cores[o]; c != nil && o != id {
						c.SetAlive(id, d.Cmd == "up")
						n.cycle(o)
					}
				}
				return "ok"
			case "row":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				n.submit(ring.NodeID(node), n.id(d), Op{Kind: OpRow, Ref: Ref{Account: "acct", Profile: prof}})
				return "ok"
			case "read":
				node, prof := n.arg(d, "node"), n.opt(d, "profile", "prof")
				op := Op{Kind: OpCursor, Ref: Ref{Account: "acct", Profile: prof}, Video: n.arg(d, "video"), Local: d.HasArg("local")}
				if d.HasArg("quorum") {
					d.ScanArgs(t, "quorum", &op.ReadQuorum)
				}
				n.submit(ring.NodeID(node), n.id(d), op)
				return "ok"
			case "isolate":
				id := ring.NodeID(n.arg(d, "node"))
				for _, o := range n.ids {
					if o != id {
						n.cut[[2]ring.NodeID{id, o}] = true
						n.cut[[2]ring.NodeID{o, id}] = true
					}
				}
				return "ok"
			case "cut":
				n.cut[[2]ring.NodeID{ring.NodeID(n.arg(d, "from")), ring.NodeID(n.arg(d, "to"))}] = true
				return "ok"
			case "heal":
				clear(n.cut)
				return "ok"
			case "deliver":
				return n.deliverAll(d.HasArg("dup"), d.HasArg("reverse"), d.HasArg("quiet"))
			case "tick":
				n.tick(n.intArg(d, "ms"))
				return "ok"
			case "run":
				step := int64(100)
				if d.HasArg("step") {
					step = n.intArg(d, "step")
				}
				for end := n.now + n.intArg(d, "ms"); n.now < end; {
					n.tick(min(step, end-n.now))
					n.deliverAll(false, false, true)
				}
				return "ok"
			case "done":
				return n.doneText()
			case "state":
				kind := crdt.KindCursor
				if n.opt(d, "kind", "cursor") == "hide" {
					kind = crdt.KindHide
				}
				return n.stateText(n.opt(d, "profile", "prof"), n.arg(d, "video"), kind)
			case "hints":
				return n.hintsText()
			case "crash":
				id := ring.NodeID(n.arg(d, "node"))
				n.cores[id] = nil
				return "ok"
			case "restart":
				id := ring.NodeID(n.arg(d, "node"))
				n.cores[id] = n.newCore(id, n.mems[id])
				if len(n.subs[id]) > 0 {
					n.cores[id].SetInterest(n.subs[id])
				}
				n.cycle(id)
				return fmt.Sprintf("%s restarted with %d hints loaded", id, n.cores[id].Stats().HintsLoaded)
			case "join":
				return n.join(ring.NodeID(n.arg(d, "node")))
			case "subscribe":
				id := ring.NodeID(n.arg(d, "node"))
				n.subs[id] = append(n.subs[id], Ref{Account: "acct", Profile: n.opt(d, "profile", "prof")})
				if c := n.cores[id]; c != nil {
					c.SetInterest(n.subs[id])
					n.cycle(id)
				}
				return "ok"
			case "resume":
				// A push stream of the profile opens on node resuming from
				// since (node/events.go after subscribing).
				id := ring.NodeID(n.arg(d, "node"))
				since, err := strconv.ParseUint(n.opt(d, "since", "0"), 10, 64)
				if err != nil {
					d.Fatalf(n.t, "since: %v", err)
				}
				n.cores[id].ResumePush(Ref{Account: "acct", Profile: n.opt(d, "profile", "prof")}, crdt.HLC(since))
				n.cycle(id)
				return "ok"
			case "pushes":
				if len(n.pushes) == 0 {
					return "no pushes"
				}
				out := strings.Join(n.pushes, "\n")
				n.pushes = nil
				return out
			case "handoffs":
				var b strings.Builder
				for _, id := range n.ids {
					if c := n.cores[id]; c != nil {
						fmt.Fprintf(&b, "%s: %d\n", id, c.Handoffs())
					}
				}
				return b.String()
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// scriptNet is the world of one script.
type scriptNet struct {
	t     *testing.T
	cfg   CoreConfig
	now   int64
	ids   []ring.NodeID
	cores map[ring.NodeID]*Core // nil: crashed
	mems  map[ring.NodeID]*storage.Mem
	table ring.Table
	cut   map[[2]ring.NodeID]bool
	inbox []replEnv
	done  []string
	// Profiles each node's subscribers follow, and the events they got.
	subs   map[ring.NodeID][]Ref
	pushes []string
}

func newScriptNet(t *testing.T, d *datadriven.TestData) *scriptNet {
	n := &scriptNet{t: t, now: replT0, cores: map[ring.NodeID]*Core{}, mems: map[ring.NodeID]*storage.Mem{}, cut: map[[2]ring.NodeID]bool{}, subs: map[ring.NodeID][]Ref{}}
	var nodes int
	d.ScanArgs(t, "nodes", &nodes)
	partitions := 8
	if d.HasArg("partitions") {
		d.ScanArgs(t, "partitions", &partitions)
	}
	n.cfg = CoreConfig{Local: LocalOptions{Partitions: partitions}, AEInterval: time.Hour, HintInterval: 100 * time.Millisecond,
		RequestTimeout: 500 * time.Millisecond}
	for key, field := range map[string]*time.Duration{"timeout": &n.cfg.RequestTimeout,
		"hint-interval": &n.cfg.HintInterval, "ae-interval": &n.cfg.AEInterval} {
		if d.HasArg(key) {
			*field = time.Duration(n.dur(d, key)) * time.Millisecond
		}
	}
	if d.HasArg("max-hints") {
		d.ScanArgs(t, "max-hints", &n.cfg.MaxHints)
	}
	for i := 1; i <= nodes; i++ {
		n.ids = append(n.ids, ring.NodeID(fmt.Sprintf("n%d", i)))
	}
	n.table = ring.NewTable(partitions, 3, n.ids)
	for _, id := range n.ids {
		n.mems[id] = storage.NewMem()
		n.cores[id] = n.newCore(id, n.mems[id])
	}
	// The first tick runs an anti-entropy round (of empty partitions:
	// digests only); settle it so the stories start quiet.
	n.tick(0)
	n.deliverAll(false, false, true)
	return n
}

func (n *scriptNet) newCore(id ring.NodeID, mem *storage.Mem) *Core {
	cfg := n.cfg
	cfg.Self = id
	c, err := NewCore(cfg, mem, n.now)
	if err != nil {
		n.t.Fatal(err)
	}
	c.SetTable(n.table)
	return c
}

func (n *scriptNet) arg(d *datadriven.TestData, key string) string {
	var s string
	d.ScanArgs(n.t, key, &s)
	return s
}

func (n *scriptNet) opt(d *datadriven.TestData, key, def string) string {
	if !d.HasArg(key) {
		return def
	}
	return n.arg(d, key)
}

func (n *scriptNet) intArg(d *datadriven.TestData, key string) int64 {
	var v int64
	d.ScanArgs(n.t, key, &v)
	return v
}

func (n *scriptNet) id(d *datadriven.TestData) uint64 {
	var v uint64
	d.ScanArgs(n.t, "id", &v)
	return v
}

func (n *scriptNet) dur(d *datadriven.TestData, key string) int64 {
	v, err := time.ParseDuration(n.arg(d, key))
	if err != nil {
		d.Fatalf(n.t, "%s: %v", key, err)
	}
	return v.Milliseconds()
}

func (n *scriptNet) ownersLine(profile string) string {
	p := ring.PartitionOf("acct", profile, n.table.Partitions())
	return fmt.Sprintf("owners of acct/%s (partition %d): %s", profile, p, joinIDs(n.table.OwnersOf(p)))
}

func joinIDs(ids []ring.NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}

func (n *scriptNet) submit(id ring.NodeID, reqID uint64, op Op) {
	c := n.cores[id]
	if c == nil {
		n.t.Fatalf("%s is down", id)
	}
	c.Tick(n.now)
	c.Submit(reqID, op)
	n.cycle(id)
}

// cycle is one driver cycle of a live node: Flush, then carry out Ready.
func (n *scriptNet) cycle(id ring.NodeID) {
	c := n.cores[id]
	if c == nil {
		return
	}
	if err := c.Flush(); err != nil {
		n.t.Fatal(err)
	}
	rd := c.Ready()
	for _, e := range rd.Messages {
		n.inbox = append(n.inbox, replEnv{from: id, to: e.To, msg: e.Msg})
	}
	for _, d := range rd.Completions {
		n.done = append(n.done, fmt.Sprintf("%s id=%d: %s", id, d.ID, completionText(d)))
	}
	for _, ev := range rd.Events {
		if slices.Contains(n.subs[id], ev.Ref) {
			n.pushes = append(n.pushes, fmt.Sprintf("%s: %s %s pos=%v", id, eventNames[ev.Type], ev.Video,
				time.Duration(ev.Cursor.PositionMs)*time.Millisecond))
		}
	}
}

var eventNames = map[EventType]string{EventCursor: "cursor", EventTakeover: "takeover", EventCleared: "cleared", EventHidden: "hidden"}

func completionText(d Completion) string {
	switch {
	case errors.Is(d.Err, ErrUnavailable):
		return "unavailable"
	case errors.Is(d.Err, ErrNotFound):
		return "not found"
	case d.Err != nil:
		return "error " + d.Err.Error()
	case len(d.Res.Writes) > 0:
		var parts []string
		for _, w := range d.Res.Writes {
			what := "stale"
			if w.Applied {
				what = "applied"
			}
			parts = append(parts, fmt.Sprintf("%s %s pos=%v", what, w.Cursor.Video, time.Duration(w.Cursor.PositionMs)*time.Millisecond))
		}
		return strings.Join(parts, ", ")
	case d.Res.Cursors != nil || d.Res.Hidden != nil:
		var parts []string
		for _, c := range d.Res.Cursors {
			parts = append(parts, fmt.Sprintf("%s pos=%v %v", c.Video, time.Duration(c.PositionMs)*time.Millisecond, c.State))
		}
		slices.Sort(parts)
		for _, h := range d.Res.Hidden {
			parts = append(parts, fmt.Sprintf("hidden %s at t0+%v", h.Video, time.Duration(h.At.Physical()-replT0)*time.Millisecond))
		}
		return "row: " + strings.Join(parts, ", ")
	case d.Res.Found:
		return fmt.Sprintf("found %s pos=%v", d.Res.Cursor.Video, time.Duration(d.Res.Cursor.PositionMs)*time.Millisecond)
	}
	return "ok (nothing found)"
}

func (n *scriptNet) tick(ms int64) {
	n.now += ms
	for _, id := range n.ids {
		if c := n.cores[id]; c != nil {
			c.Tick(n.now)
			n.cycle(id)
		}
	}
}

var msgNames = map[MsgType]string{MsgForward: "forward", MsgResult: "result", MsgReplicate: "replicate", MsgAck: "ack",
	MsgDigest: "digest", MsgBuckets: "buckets", MsgPull: "pull", MsgInterest: "interest", MsgEvents: "events",
	MsgProfileRecords: "profile-records", MsgProfileRecordsReply: "profile-records-reply"}

func envText(e replEnv) string {
	s := fmt.Sprintf("%s -> %s %s", e.from, e.to, msgNames[e.msg.Type])
	switch e.msg.Type {
	case MsgReplicate, MsgAck:
		if e.msg.ReqID&hintID != 0 {
			s += " (hint)"
		}
	case MsgForward:
		if e.msg.Exec {
			s += " (exec)"
		}
	case MsgBuckets:
		if e.msg.Handoff {
			s += " (handoff)"
		}
	}
	if len(e.msg.Records) > 0 {
		s += fmt.Sprintf(" records=%d", len(e.msg.Records))
	}
	if len(e.msg.Events) > 0 {
		s += fmt.Sprintf(" events=%d", len(e.msg.Events))
	}
	return s
}

// deliverAll delivers pending messages round by round until none is left.
// Every message crosses the wire encoded, as in production.
func (n *scriptNet) deliverAll(dup, reverse, quiet bool) string {
	var b strings.Builder
	delivered, dropped := 0, 0
	for round := 0; len(n.inbox) > 0; round++ {
		if round == 50 {
			n.t.Fatal("messages still flowing after 50 rounds")
		}
		batch := n.inbox
		n.inbox = nil
		if reverse {
			slices.Reverse(batch)
		}
		touched := map[ring.NodeID]bool{}
		for _, e := range batch {
			c := n.cores[e.to]
			if c == nil || n.cut[[2]ring.NodeID{e.from, e.to}] {
				dropped++
				if !quiet {
					fmt.Fprintf(&b, "%s (dropped)\n", envText(e))
				}
				continue
			}
			frame, err := EncodeFrame([]Msg{e.msg})
			if err != nil {
				n.t.Fatal(err)
			}
			copies := 1
			if dup {
				copies = 2
			}
			for range copies {
				msgs, err := DecodeFrame(frame)
				if err != nil || len(msgs) != 1 {
					n.t.Fatalf("frame round trip: %v", err)
				}
				c.Tick(n.now)
				c.Step(e.from, msgs[0])
			}
			delivered++
			touched[e.to] = true
			if !quiet {
				fmt.Fprintf(&b, "%s\n", envText(e))
			}
		}
		for _, id := range n.ids {
			if touched[id] {
				n.cycle(id)
			}
		}
	}
	if quiet {
		return fmt.Sprintf("delivered %d, dropped %d", delivered, dropped)
	}
	if b.Len() == 0 {
		return "nothing to deliver"
	}
	return b.String()
}

func (n *scriptNet) doneText() string {
	if len(n.done) == 0 {
		return "no answers"
	}
	s := strings.Join(n.done, "\n")
	n.done = nil
	return s
}

func (n *scriptNet) stateText(profile, video string, kind crdt.Kind) string {
	var b strings.Builder
	p := ring.PartitionOf("acct", profile, n.table.Partitions())
	k := storage.Key{Partition: p, Account: "acct", Profile: profile, Kind: kind, ID: video}
	var encs [][]byte
	for _, id := range n.ids {
		rec, ok, err := n.mems[id].Get(k)
		if err != nil {
			n.t.Fatal(err)
		}
		down := ""
		if n.cores[id] == nil {
			down = " (down)"
		}
		if !ok {
			fmt.Fprintf(&b, "%s%s: -\n", id, down)
			continue
		}
		if kind == crdt.KindHide {
			fmt.Fprintf(&b, "%s%s: %s hidden at t0+%v\n", id, down, video, time.Duration(rec.Hide.At.Physical()-replT0)*time.Millisecond)
		} else {
			cur := rec.Cursor
			st := ""
			if cur.State != crdt.StatePlaying {
				st = " " + cur.State.String()
			}
			fmt.Fprintf(&b, "%s%s: %s pos=%v%s session=%s\n", id, down, video, time.Duration(cur.PositionMs)*time.Millisecond, st, cur.Version.Session)
		}
		if n.table.Owns(id, p) {
			e, _ := storage.EncodeValue(rec)
			encs = append(encs, e)
		}
	}
	same := len(encs) == len(n.table.OwnersOf(p))
	for _, e := range encs {
		same = same && slices.Equal(e, encs[0])
	}
	fmt.Fprintf(&b, "owners hold identical bytes: %v\n", same)
	var digests [][DigestBuckets]uint64
	for _, o := range n.table.OwnersOf(p) {
		if c := n.cores[o]; c != nil {
			digests = append(digests, c.Digest(p))
		}
	}
	agree := true
	for _, d := range digests {
		agree = agree && d == digests[0]
	}
	fmt.Fprintf(&b, "live owners' digests of partition %d agree: %v", p, agree)
	return b.String()
}

func (n *scriptNet) hintsText() string {
	var b strings.Builder
	for _, id := range n.ids {
		stored := 0
		err := n.mems[id].ScanPartition(storage.HintPartition, func(storage.Key, crdt.Record) error {
			stored++
			return nil
		})
		if err != nil {
			n.t.Fatal(err)
		}
		c := n.cores[id]
		if c == nil {
			fmt.Fprintf(&b, "%s (down): stored %d\n", id, stored)
			continue
		}
		var per []string
		for _, o := range n.ids {
			if h := c.HintsFor(o); h > 0 {
				per = append(per, fmt.Sprintf("%s=%d", o, h))
			}
		}
		fmt.Fprintf(&b, "%s: %d in memory (%s), stored %d\n", id, c.Hints(), strings.Join(per, " "), stored)
	}
	return b.String()
}

func (n *scriptNet) join(id ring.NodeID) string {
	n.ids = append(n.ids, id)
	n.mems[id] = storage.NewMem()
	n.cores[id] = n.newCore(id, n.mems[id])
	old := n.table
	n.table = ring.Rebalance(n.table, n.ids)
	for _, o := range n.ids {
		if c := n.cores[o]; c != nil {
			c.SetTable(n.table)
			n.cycle(o)
		}
	}
	var gained []int
	for p := range n.table.Partitions() {
		if n.table.Owns(id, uint16(p)) {
			gained = append(gained, p)
		}
	}
	p := ring.PartitionOf("acct", "prof", n.table.Partitions())
	return fmt.Sprintf("%s owns partitions %v\nowners of acct/prof (partition %d): %s, were %s", id, gained, p,
		joinIDs(n.table.OwnersOf(p)), joinIDs(old.OwnersOf(p)))
}
