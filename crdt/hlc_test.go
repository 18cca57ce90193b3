package crdt_test

import (
	"encoding/json"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
)

func TestHLCPhysicalLogicalRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p1 := rapid.Int64Range(0, crdt.MaxPhysicalMs).Draw(t, "p1")
		l1 := rapid.Uint16().Draw(t, "l1")
		h1 := crdt.NewHLC(p1, l1)
		if h1.Physical() != p1 || h1.Logical() != l1 {
			t.Fatalf("NewHLC(%d, %d) = %v: physical %d logical %d", p1, l1, h1, h1.Physical(), h1.Logical())
		}
		// Integer order is (physical, logical) order.
		p2 := rapid.Int64Range(max(0, p1-1), min(crdt.MaxPhysicalMs, p1+1)).Draw(t, "p2")
		l2 := rapid.Uint16().Draw(t, "l2")
		h2 := crdt.NewHLC(p2, l2)
		if lexLess := p1 < p2 || p1 == p2 && l1 < l2; (h1 < h2) != lexLess {
			t.Fatalf("order of (%d,%d) and (%d,%d) not kept: %v vs %v", p1, l1, p2, l2, h1, h2)
		}
		if got := h1.Time(); !got.Equal(time.UnixMilli(p1)) || got.Location() != time.UTC {
			t.Fatalf("Time() = %v, want %v UTC", got, time.UnixMilli(p1))
		}
	})
	// Out-of-range physical times are clamped, never wrapped.
	if h := crdt.NewHLC(-5, 3); h.Physical() != 0 || h.Logical() != 3 {
		t.Errorf("negative physical: %d/%d", h.Physical(), h.Logical())
	}
	if h := crdt.NewHLC(crdt.MaxPhysicalMs+10, 1); h.Physical() != crdt.MaxPhysicalMs || h.Logical() != 1 {
		t.Errorf("physical beyond 48 bits: %d/%d", h.Physical(), h.Logical())
	}
	if h := crdt.NewHLC(crdt.MaxPhysicalMs, math.MaxUint16); h != math.MaxUint64 {
		t.Errorf("largest HLC = %d", uint64(h))
	}
}

// TestClockNowStrictlyIncreases: physical time that stalls, goes backwards
// or jumps ahead never makes Now repeat or go back, and Now never lags the
// physical reading. When physical time moves past the clock, the logical
// counter restarts at 0.
func TestClockNowStrictlyIncreases(t *testing.T) {
	c := crdt.NewClock(time.Minute)
	var last crdt.HLC
	for i, step := range []struct {
		phys int64
		want crdt.HLC
	}{
		{1000, crdt.NewHLC(1000, 0)},
		{1000, crdt.NewHLC(1000, 1)}, // stall
		{1000, crdt.NewHLC(1000, 2)},
		{999, crdt.NewHLC(1000, 3)}, // backwards
		{5, crdt.NewHLC(1000, 4)},   // far backwards
		{0, crdt.NewHLC(1000, 5)},
		{1001, crdt.NewHLC(1001, 0)}, // moves on: counter restarts
		{1001, crdt.NewHLC(1001, 1)},
		{2000, crdt.NewHLC(2000, 0)}, // jump
		{1500, crdt.NewHLC(2000, 1)},
	} {
		h := c.Now(step.phys)
		if h <= last || h.Physical() < step.phys || h != step.want {
			t.Fatalf("step %d: Now(%d) = %d/%d after %d/%d, want %d/%d", i, step.phys,
				h.Physical(), h.Logical(), last.Physical(), last.Logical(), step.want.Physical(), step.want.Logical())
		}
		if c.Last() != h {
			t.Fatalf("step %d: Last() = %v, want the value just issued %v", i, c.Last(), h)
		}
		last = h
	}
}

// TestClockLogicalOverflowCarries: more than 65536 events in one millisecond
// carry into the physical part (the clock runs ahead), still strictly
// increasing.
func TestClockLogicalOverflowCarries(t *testing.T) {
	c := crdt.NewClock(0)
	c.Observe(crdt.NewHLC(7, math.MaxUint16-1))
	for _, want := range []crdt.HLC{
		crdt.NewHLC(7, math.MaxUint16),
		crdt.NewHLC(8, 0), // carried
		crdt.NewHLC(8, 1),
	} {
		if h := c.Now(7); h != want {
			t.Fatalf("Now(7) = %d/%d, want %d/%d", h.Physical(), h.Logical(), want.Physical(), want.Logical())
		}
	}
	if h := c.Now(9); h != crdt.NewHLC(9, 0) {
		t.Fatalf("after the carry, physical time catching up restarts the counter: %d/%d", h.Physical(), h.Logical())
	}
	// Update carries the same way.
	u := crdt.NewClock(0)
	if h, err := u.Update(crdt.NewHLC(20, math.MaxUint16), 20); err != nil || h != crdt.NewHLC(21, 0) {
		t.Fatalf("Update over a full counter = %d/%d, %v", h.Physical(), h.Logical(), err)
	}
	// A long burst in a stalled millisecond.
	b := crdt.NewClock(0)
	prev := b.Now(7)
	for i := 0; i < 3*(math.MaxUint16+1); i++ {
		h := b.Now(7)
		if h <= prev {
			t.Fatalf("event %d: %v not above %v", i, h, prev)
		}
		prev = h
	}
	if prev.Physical() != 7+3 {
		t.Fatalf("3×65536 more events in ms 7 end at physical %d, want 10", prev.Physical())
	}
}

// TestClockUpdateSkew: a remote timestamp is accepted up to exactly
// MaxSkewMs ahead of local physical time; beyond it Update returns
// ErrClockSkew and leaves the clock as it was.
func TestClockUpdateSkew(t *testing.T) {
	const phys = 100_000
	c := crdt.NewClock(60 * time.Second)
	if c.MaxSkewMs != 60_000 {
		t.Fatalf("MaxSkewMs = %d", c.MaxSkewMs)
	}
	local := c.Now(phys)

	for _, remote := range []crdt.HLC{crdt.NewHLC(phys+60_001, 0), crdt.NewHLC(phys+3_600_000, 9), math.MaxUint64} {
		before := c.Last()
		h, err := c.Update(remote, phys)
		if !errors.Is(err, crdt.ErrClockSkew) || h != 0 {
			t.Fatalf("remote %d ms ahead: got %v, %v; want ErrClockSkew", remote.Physical()-phys, h, err)
		}
		if c.Last() != before {
			t.Fatalf("a refused timestamp moved the clock from %v to %v", before, c.Last())
		}
		if err := c.Check(remote, phys); !errors.Is(err, crdt.ErrClockSkew) {
			t.Fatalf("Check: %v", err)
		}
	}
	if next := c.Now(phys); next != local+1 {
		t.Fatalf("after refusals Now = %v, want %v", next, local+1)
	}

	atBound := crdt.NewHLC(phys+60_000, math.MaxUint16)
	if err := c.Check(atBound, phys); err != nil {
		t.Fatalf("Check at the bound: %v", err)
	}
	if c.Last() == atBound {
		t.Fatal("Check must not change the clock")
	}
	h, err := c.Update(atBound, phys)
	if err != nil || h <= atBound {
		t.Fatalf("exactly at the bound must pass: %v, %v", h, err)
	}

	// MaxSkewMs 0 disables the check.
	free := crdt.NewClock(0)
	if h, err := free.Update(crdt.NewHLC(phys+365*24*3600*1000, 0), phys); err != nil || h.Physical() != phys+365*24*3600*1000 {
		t.Fatalf("unbounded clock refused or mangled a remote: %v, %v", h, err)
	}
}

// TestClockModel runs random sequences of Now, Update and Observe against the
// HLC rules: every issued timestamp is the smallest one above everything the
// clock issued or observed (and above the remote, for Update) that is not
// below the physical reading; refused remotes change nothing.
func TestClockModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		skew := rapid.SampledFrom([]int64{0, 5}).Draw(t, "maxSkewMs")
		c := &crdt.Clock{MaxSkewMs: skew}
		var last crdt.HLC // model of Last()
		phys := rapid.Int64Range(0, 20).Draw(t, "phys0")
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "ops"); i < n; i++ {
			phys = max(0, phys+rapid.Int64Range(-3, 3).Draw(t, "dphys"))
			remote := crdt.NewHLC(
				max(0, phys+rapid.Int64Range(-3, 8).Draw(t, "remoteAhead")),
				rapid.SampledFrom([]uint16{0, 1, math.MaxUint16 - 1, math.MaxUint16}).Draw(t, "remoteLogical"))
			floor := crdt.NewHLC(phys, 0)
			switch op := rapid.IntRange(0, 2).Draw(t, "op"); op {
			case 0:
				h := c.Now(phys)
				if want := max(last+1, floor); h != want {
					t.Fatalf("Now(%d) after %v = %v, want %v", phys, last, h, want)
				}
				last = h
			case 1:
				h, err := c.Update(remote, phys)
				if skew > 0 && remote.Physical() > phys+skew {
					if !errors.Is(err, crdt.ErrClockSkew) || c.Last() != last {
						t.Fatalf("Update(%v, %d) beyond skew: %v, %v, clock %v (was %v)", remote, phys, h, err, c.Last(), last)
					}
					continue
				}
				if want := max(max(last, remote)+1, floor); err != nil || h != want {
					t.Fatalf("Update(%v, %d) after %v = %v, %v; want %v", remote, phys, last, h, err, want)
				}
				last = h
			case 2:
				c.Observe(remote)
				last = max(last, remote)
			}
			if c.Last() != last {
				t.Fatalf("Last() = %v, model %v", c.Last(), last)
			}
		}
	})
}

// TestClockConcurrent: goroutines issuing timestamps at once, with physical
// readings that disagree and go backwards, get unique values that increase
// within each goroutine. Run with -race.
func TestClockConcurrent(t *testing.T) {
	const goroutines, perG = 8, 2000
	c := crdt.NewClock(time.Second)
	results := make([][]crdt.HLC, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]crdt.HLC, 0, perG)
			var prev crdt.HLC
			for i := 0; i < perG; i++ {
				phys := int64(1_000_000 + (i*7+g*13)%50) // jitters back and forth
				var h crdt.HLC
				if g%4 == 3 { // some goroutines receive remote timestamps
					var err error
					h, err = c.Update(crdt.NewHLC(phys+int64(i%3), 0), phys)
					if err != nil {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
				} else {
					h = c.Now(phys)
				}
				if h <= prev {
					t.Errorf("goroutine %d, call %d: %v not above %v", g, i, h, prev)
					return
				}
				prev = h
				out = append(out, h)
			}
			results[g] = out
		}()
	}
	wg.Wait()
	seen := make(map[crdt.HLC]int, goroutines*perG)
	var top crdt.HLC
	for g, out := range results {
		for _, h := range out {
			if other, dup := seen[h]; dup {
				t.Fatalf("timestamp %v issued to goroutines %d and %d", h, other, g)
			}
			seen[h] = g
			top = max(top, h)
		}
	}
	if c.Last() != top {
		t.Fatalf("Last() = %v, largest issued %v", c.Last(), top)
	}
}

func TestHLCJSON(t *testing.T) {
	h := crdt.NewHLC(1_780_000_000_000, 7)
	const hText = "116654080000000007" // 1_780_000_000_000<<16 | 7
	for _, c := range []struct {
		in   crdt.HLC
		want string
	}{
		{h, `"` + hText + `"`},
		{0, `"0"`},
		{math.MaxUint64, `"18446744073709551615"`},
	} {
		b, err := json.Marshal(c.in)
		if err != nil || string(b) != c.want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", uint64(c.in), b, err, c.want)
		}
	}
	// Inside a struct, as the API sends it.
	b, err := json.Marshal(struct {
		Epoch crdt.HLC `json:"epoch"`
	}{h})
	if err != nil || string(b) != `{"epoch":"`+hText+`"}` {
		t.Fatalf("struct: %s, %v", b, err)
	}

	for _, in := range []string{`"` + hText + `"`, hText} {
		var got crdt.HLC
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != h {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, got, err, h)
		}
	}
	var inStruct struct{ Seq crdt.HLC }
	if err := json.Unmarshal([]byte(`{"Seq": 42}`), &inStruct); err != nil || inStruct.Seq != 42 {
		t.Errorf("number in a struct: %v, %v", inStruct.Seq, err)
	}

	for _, bad := range []string{
		`"abc"`, `-1`, `"-1"`, `1.5`, `"1.5"`, `1e3`, `"1e3"`, `true`, `[]`, `{}`, `""`, `" 1"`, `"+1"`,
		`"0x10"`, `"1_000"`, `"18446744073709551616"`, `18446744073709551616`,
	} {
		x := crdt.HLC(99)
		err := json.Unmarshal([]byte(bad), &x)
		if err == nil {
			t.Errorf("accepted %s as %v", bad, x)
			continue
		}
		if x != 99 {
			t.Errorf("%s: a refused value changed the target to %v", bad, x)
		}
		if bad[0] == '"' && !errors.Is(err, crdt.ErrBadHLC) {
			t.Errorf("%s: error %v does not wrap ErrBadHLC", bad, err)
		}
	}

	// Called directly (not through encoding/json, which checks the syntax
	// first), unbalanced quotes are refused too.
	for _, bad := range []string{`"12`, `12"`, `"`, ``} {
		x := crdt.HLC(99)
		if err := x.UnmarshalJSON([]byte(bad)); !errors.Is(err, crdt.ErrBadHLC) || x != 99 {
			t.Errorf("UnmarshalJSON(%s) = %v, value %v", bad, err, x)
		}
	}

	rapid.Check(t, func(t *rapid.T) {
		in := crdt.HLC(rapid.Uint64().Draw(t, "hlc"))
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var fromString, fromNumber crdt.HLC
		if err := json.Unmarshal(b, &fromString); err != nil || fromString != in {
			t.Fatalf("string round trip %v → %s → %v, %v", in, b, fromString, err)
		}
		if err := json.Unmarshal([]byte(in.String()), &fromNumber); err != nil || fromNumber != in {
			t.Fatalf("number round trip %v → %v, %v", in, fromNumber, err)
		}
		if p, err := crdt.ParseHLC(in.String()); err != nil || p != in {
			t.Fatalf("ParseHLC(String()) = %v, %v", p, err)
		}
	})
}
