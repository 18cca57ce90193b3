package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var sysColor = map[string]color.Color{
	SysPlayhead: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	SysBaseline: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// WritePlots writes into dir: throughput.png (median throughput of
// playhead over the baseline per case, or playhead's alone where there is
// no baseline), cdf-CASE.png (latency CDFs, every round) and
// timeline-CASE.png (served ops per second through each round).
func WritePlots(all Results, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := sortedCases(all)
	if err := throughputPlot(all, names, filepath.Join(dir, "throughput.png")); err != nil {
		return err
	}
	for _, n := range names {
		if err := cdfPlot(n, all[n], filepath.Join(dir, "cdf-"+n+".png")); err != nil {
			return err
		}
		if err := timelinePlot(n, all[n], filepath.Join(dir, "timeline-"+n+".png")); err != nil {
			return err
		}
	}
	return nil
}

func throughputPlot(all Results, names []string, path string) error {
	p := plot.New()
	p.Title.Text = "throughput, playhead / baseline (median over rounds; 1 = equal)"
	p.Y.Label.Text = "ratio"
	var vals plotter.Values
	var labels []string
	for _, n := range names {
		ph, bl := aggregate(all[n][SysPlayhead]), aggregate(all[n][SysBaseline])
		if ph.thr == 0 || bl.thr == 0 {
			continue
		}
		vals = append(vals, ph.thr/bl.thr)
		labels = append(labels, fmt.Sprintf("%s\n%s vs %s", n, num(ph.thr), num(bl.thr)))
	}
	if len(vals) == 0 {
		return nil
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = sysColor[SysPlayhead]
	p.Add(bars)
	one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(vals)) - 0.5, Y: 1}})
	if err != nil {
		return err
	}
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	p.NominalX(labels...)
	p.Y.Min = 0
	return p.Save(vg.Length(160+110*len(vals)), 4*vg.Inch, path)
}

// nines maps a percentile to -log10(1-p): 90 % → 1, 99 % → 2, 99.9 % → 3.
func nines(pct float64) float64 { return -math.Log10(1 - math.Min(pct, 99.999)/100) }

type ninesTicks struct{}

func (ninesTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range []struct {
		x     float64
		label string
	}{{0, "0"}, {nines(50), "50"}, {1, "90"}, {2, "99"}, {3, "99.9"}, {4, "99.99"}, {5, "99.999"}} {
		if t.x >= min-1e-9 && t.x <= max+1e-9 {
			ts = append(ts, plot.Tick{Value: t.x, Label: t.label})
		}
	}
	return ts
}

func cdfPlot(name string, bySys map[string][]*Result, path string) error {
	p := plot.New()
	p.Title.Text = name + ": latency by percentile (every round)"
	p.X.Label.Text = "percentile"
	p.X.Tick.Marker = ninesTicks{}
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for _, sys := range []string{SysPlayhead, SysBaseline} {
		for i, r := range bySys[sys] {
			var pts plotter.XYs
			for _, c := range r.Latency.CDF {
				if c[0] < 1 {
					continue // the minimum: noise that squashes the log axis
				}
				pts = append(pts, plotter.XY{X: nines(c[0]), Y: math.Max(c[1], 0.001)})
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = sysColor[sys]
			l.Width = vg.Points(1.5)
			p.Add(l)
			if i == 0 {
				p.Legend.Add(sys, l)
			}
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.YOffs = -vg.Points(8)
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

func timelinePlot(name string, bySys map[string][]*Result, path string) error {
	p := plot.New()
	p.Title.Text = name + ": served requests per second (every round; warm-up included)"
	p.X.Label.Text = "s since start"
	p.Y.Label.Text = "requests/s"
	for _, sys := range []string{SysPlayhead, SysBaseline} {
		for i, r := range bySys[sys] {
			var pts plotter.XYs
			for s, v := range r.Timeline {
				pts = append(pts, plotter.XY{X: float64(s + 1), Y: v})
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = sysColor[sys]
			l.Width = vg.Points(1.5)
			p.Add(l)
			if i == 0 {
				p.Legend.Add(sys, l)
			}
		}
	}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.YOffs = -vg.Points(2)
	return p.Save(6*vg.Inch, 3*vg.Inch, path)
}
