package e2e

import (
	"strings"
	"testing"
	"time"
)

// The checker's rules, each shown to catch its violation on a hand-written
// history (no Docker needed).

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func v(seq uint64, s string) Version { return Version{Epoch: 1, Seq: seq, Session: s} }

// base: d1 writes twice (acknowledged), d2 reads with Seen, a subscribed
// device gets the push, the cluster ends at the second write.
func base() ([]Op, End) {
	ops := []Op{
		{Kind: OpSubscribe, Device: "d2", Profile: "p", Start: ms(0), End: ms(5), Status: 200},
		{Kind: OpWrite, Device: "d1", Profile: "p", Video: "a", Start: ms(10), End: ms(20), Status: 200, Applied: true, Pos: 100, Session: "s1", Ver: v(10, "s1")},
		{Kind: OpWrite, Device: "d1", Profile: "p", Video: "a", Start: ms(30), End: ms(40), Status: 200, Applied: true, Pos: 200, Session: "s1", Ver: v(30, "s1")},
		{Kind: OpPush, Device: "d2", Profile: "p", Video: "a", Start: ms(35), End: ms(35), Status: 200, Found: true, Pos: 200, Session: "s1", Writer: "d1", Ver: v(30, "s1")},
		{Kind: OpRead, Device: "d2", Profile: "p", Video: "a", Start: ms(50), End: ms(60), Status: 200, Found: true, Pos: 200, Session: "s1", Writer: "d1", Ver: v(30, "s1"), Seen: v(30, "s1")},
		{Kind: OpList, Device: "d2", Profile: "p", Start: ms(61), End: ms(62), Status: 200, Items: []Item{{Video: "a", Pos: 200, Session: "s1", Writer: "d1", Ver: v(30, "s1")}}},
	}
	end := End{Final: map[Key]Item{{"p", "a"}: {Video: "a", Pos: 200, Session: "s1", Writer: "d1", Ver: v(30, "s1")}}, Converged: true, ConvergeAfter: time.Second}
	return ops, end
}

func wantOnly(t *testing.T, vd Verdict, rule string) {
	t.Helper()
	if rule == "" {
		if vd.Failed() {
			t.Fatalf("a correct history failed:\n%s", vd)
		}
		return
	}
	if !vd.Failed() {
		t.Fatalf("%s not caught:\n%s", rule, vd)
	}
	for _, x := range vd.Violations {
		if !strings.HasPrefix(x, rule+":") {
			t.Fatalf("want only %s, got:\n%s", rule, vd)
		}
	}
}

func TestCheckerPassesACorrectHistory(t *testing.T) {
	ops, end := base()
	vd := Check(ops, end)
	wantOnly(t, vd, "")
	if vd.Ops != 4 || vd.Acked != 2 || vd.Pushes != 1 || vd.Availability != 1 {
		t.Fatalf("counts: %+v", vd)
	}
}

func TestCheckerCatchesALostAck(t *testing.T) {
	ops, end := base()
	end.Final[Key{"p", "a"}] = Item{Video: "a", Pos: 100, Session: "s1", Writer: "d1", Ver: v(10, "s1")}
	ops = ops[:4] // the read and list saw the newer one; drop them
	vd := Check(ops, end)
	wantOnly(t, vd, "no-lost-ack")
	if vd.Lost != 1 {
		t.Fatalf("lost %d, want 1", vd.Lost)
	}
}

func TestCheckerExcusesALossADeleteExplains(t *testing.T) {
	ops, end := base()
	ops = append(ops[:4], Op{Kind: OpDeleteVideo, Device: "d1", Profile: "p", Video: "a", Start: ms(70), Status: 0}) // no answer: may land
	delete(end.Final, Key{"p", "a"})
	wantOnly(t, Check(ops, end), "")
	// a delete that ended before the write began explains nothing
	ops[len(ops)-1] = Op{Kind: OpDeleteAll, Device: "d1", Profile: "p", Start: ms(1), End: ms(2), Status: 204}
	wantOnly(t, Check(ops, end), "no-lost-ack")
}

func TestCheckerCatchesAnUnexpectedCursor(t *testing.T) {
	ops, end := base()
	end.Final[Key{"p", "a"}] = Item{Video: "a", Pos: 999, Session: "s1", Writer: "d1", Ver: v(99, "s1")}
	vd := Check(ops, end)
	wantOnly(t, vd, "nothing-unexpected")
	if vd.Unexpected != 1 {
		t.Fatalf("unexpected %d, want 1", vd.Unexpected)
	}
}

func TestCheckerCatchesADeleteThatDoesNotStick(t *testing.T) {
	ops, end := base()
	ops = append(ops, Op{Kind: OpDeleteVideo, Device: "d1", Profile: "p", Video: "a", Start: ms(100), End: ms(110), Status: 204})
	wantOnly(t, Check(ops, end), "deletion-sticks") // the final state still shows it
	// a plain read after the acknowledged delete shows the deleted cursor
	delete(end.Final, Key{"p", "a"})
	ops = append(ops, Op{Kind: OpPlainRead, Device: "d3", Profile: "p", Video: "a", Start: ms(120), End: ms(130), Status: 200, Found: true, Pos: 200, Session: "s1", Writer: "d1", Ver: v(30, "s1")})
	wantOnly(t, Check(ops, end), "deletion-sticks")
}

func TestCheckerCatchesAReadGoingBack(t *testing.T) {
	ops, end := base()
	ops = append(ops, Op{Kind: OpRead, Device: "d2", Profile: "p", Video: "a", Start: ms(70), End: ms(80), Status: 200, Found: true, Pos: 100, Session: "s1", Writer: "d1", Ver: v(10, "s1"), Seen: v(30, "s1")})
	wantOnly(t, Check(ops, end), "device-monotonic")
	// a 404 is a regression too, unless a delete was asked before
	ops[len(ops)-1] = Op{Kind: OpRead, Device: "d2", Profile: "p", Video: "a", Start: ms(70), End: ms(80), Status: 404, Seen: v(30, "s1")}
	wantOnly(t, Check(ops, end), "device-monotonic")
	ops = append(ops, Op{Kind: OpDeleteAll, Device: "d1", Profile: "p", Start: ms(65), End: ms(66), Status: 204})
	delete(end.Final, Key{"p", "a"})
	wantOnly(t, Check(ops, end), "")
}

func TestCheckerCatchesAMissedPush(t *testing.T) {
	ops, end := base()
	ops = append(ops[:3], ops[4:]...) // drop the push
	wantOnly(t, Check(ops, end), "push-delivery")
}

func TestCheckerCatchesSlowOrNoConvergence(t *testing.T) {
	ops, end := base()
	end.ConvergeAfter = 6 * time.Second
	wantOnly(t, Check(ops, end), "convergence")
	end.Converged = false
	wantOnly(t, Check(ops, end), "convergence")
}
