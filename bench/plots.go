package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var sysColor = map[string]color.Color{
	"playhead": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"baseline": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// Plots writes throughput.png (median ops/s per workload and system) and
// cdf-NAME.png (latency CDF per workload: x = percentile as 9s, y = ms, log).
func Plots(all map[string]map[string][]*Result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	systems := []string{"playhead", "baseline"}

	p := plot.New()
	p.Title.Text = "throughput (median ops/s)"
	p.Y.Label.Text = "ops/s"
	w := vg.Points(12)
	for i, sys := range systems {
		vals := make(plotter.Values, len(names))
		for j, n := range names {
			vals[j] = aggregate(all[n][sys]).ops
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.Color = sysColor[sys]
		bars.Offset = w * vg.Length(float64(i)-0.5)
		p.Add(bars)
		p.Legend.Add(sys, bars)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	if err := p.Save(vg.Length(120+90*len(names)), 4*vg.Inch, filepath.Join(dir, "throughput.png")); err != nil {
		return err
	}

	for _, n := range names {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s latency CDF (round 1 of each system)", n)
		p.X.Label.Text = "percentile, as -log10(1-p): 1=90%, 2=99%, 3=99.9%"
		p.Y.Label.Text = "latency ms"
		for _, sys := range systems {
			rs := all[n][sys]
			if len(rs) == 0 {
				continue
			}
			var pts plotter.XYs
			for _, c := range rs[0].Latency.CDF {
				q := c[0] / 100
				if q >= 1 {
					q = 0.9999
				}
				pts = append(pts, plotter.XY{X: -math.Log10(1 - q), Y: c[1]})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = sysColor[sys]
			l.Width = vg.Points(2)
			p.Add(l)
			p.Legend.Add(sys, l)
		}
		p.Legend.Top = true
		p.Legend.Left = true
		if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, "cdf-"+n+".png")); err != nil {
			return err
		}
	}
	return nil
}
