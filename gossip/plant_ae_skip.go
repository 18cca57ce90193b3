//go:build plant_ae_skip

package gossip

const (
	plantEarlyAck = false
	plantAESkip   = true
)
