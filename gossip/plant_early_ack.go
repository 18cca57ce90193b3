//go:build plant_early_ack

package gossip

const (
	plantEarlyAck = true
	plantAESkip   = false
)
