package clustersim

import "time"

// Shrink looks for a smaller run that still fails like o: the same seed
// with fewer devices and a shorter fault phase, halving each while the run
// still violates an invariant. Runs are deterministic, so the result
// replays exactly. It returns o itself when nothing smaller fails.
func Shrink(o RunOptions) RunOptions {
	o.Progress = nil
	fails := func(c RunOptions) bool {
		rep, err := Run(c)
		return err == nil && rep.Failed()
	}
	for changed := true; changed; {
		changed = false
		if c := o; c.Devices > 2 {
			c.Devices /= 2
			if fails(c) {
				o, changed = c, true
			}
		}
		if c := o; c.Duration > 10*time.Second {
			c.Duration = (c.Duration / 2).Round(time.Second)
			if fails(c) {
				o, changed = c, true
			}
		}
		if c := o; c.Nodes > 3 {
			c.Nodes--
			if fails(c) {
				o, changed = c, true
			}
		}
	}
	return o
}
