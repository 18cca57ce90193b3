//go:build !plant_no_retain

package gossip

// plantNoRetain, set only by the build tag plant_no_retain (a planted bug
// for the simulator's own tests, in no production build): records from
// peers are stored without the retention rule, and anti-entropy sends what
// it scans as it is — anti-entropy treats purgeable records as present, the
// way a store without tombstone grace resurrects what it purged.
const plantNoRetain = false
