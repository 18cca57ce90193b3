//go:build plant_no_retain

package gossip

const plantNoRetain = true
