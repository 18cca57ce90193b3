package bench_test

import (
	"testing"
	"time"

	"github.com/playhead/playhead/bench"
)

func TestHistPercentiles(t *testing.T) {
	h := bench.NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summarize()
	if s.Count != 1000 {
		t.Fatalf("count %d", s.Count)
	}
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.002 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", s.P50, 500}, {"p90", s.P90, 900}, {"p99", s.P99, 990}, {"p99.9", s.P999, 999}, {"max", s.Max, 1000}, {"mean", s.Mean, 500.5}} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for i := 1; i < len(s.CDF); i++ {
		if s.CDF[i][0] <= s.CDF[i-1][0] || s.CDF[i][1] < s.CDF[i-1][1] {
			t.Fatalf("CDF not monotone at %d: %v", i, s.CDF)
		}
	}
	if e := bench.NewHist().Summarize(); e.Count != 0 || e.P99 != 0 || e.CDF != nil {
		t.Fatalf("empty histogram: %+v", e)
	}
}

func TestHistClampsAndMerges(t *testing.T) {
	a, b := bench.NewHist(), bench.NewHist()
	a.Record(0)             // below 1 µs: clamped up
	a.Record(2 * time.Hour) // above 60 s: clamped down
	b.Record(5 * time.Millisecond)
	a.Merge(b)
	s := a.Summarize()
	if s.Count != 3 || s.Max < 59_000 || s.Max > 61_000 || s.CDF[0][1] > 0.002 {
		t.Fatalf("%+v", s)
	}
	if b.Count() != 1 {
		t.Fatalf("merge changed its source: %d", b.Count())
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 2, 3}, 2.5}} {
		if got := bench.Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestZipfDeterministic(t *testing.T) {
	const seed = 42
	t.Logf("seed %d (replay: go test -run TestZipfDeterministic ./bench)", seed)
	a, b, c := bench.NewZipf(seed, 1.1, 100), bench.NewZipf(seed, 1.1, 100), bench.NewZipf(seed+1, 1.1, 100)
	same, counts := true, make([]int, 100)
	for i := range 20000 {
		x, y := a.Next(), b.Next()
		if x != y {
			t.Fatalf("same seed differs at draw %d: %d vs %d", i, x, y)
		}
		if x < 0 || x >= 100 {
			t.Fatalf("draw %d out of range: %d", i, x)
		}
		if c.Next() != x {
			same = false
		}
		counts[x]++
	}
	if same {
		t.Fatal("different seeds gave the same sequence")
	}
	// Zipf: the head is hot and the frequencies fall with rank.
	if counts[0] <= counts[1] || counts[1] <= counts[10] || counts[10] <= counts[90] {
		t.Fatalf("not Zipf-shaped: c[0]=%d c[1]=%d c[10]=%d c[90]=%d", counts[0], counts[1], counts[10], counts[90])
	}
	if z := bench.NewZipf(1, 0.5, 0); z.Next() != 0 {
		t.Fatal("n < 1 must give index 0")
	}
}
