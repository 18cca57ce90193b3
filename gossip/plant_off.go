//go:build !plant_early_ack && !plant_ae_skip

package gossip

// Planted bugs for the simulator's own tests, each behind a build tag so
// that no production build contains them (the checks on these constants
// compile away):
//
//   - plant_early_ack: the coordinator answers a write before it is durable
//     anywhere — at once, without the quorum, and the store write lags one
//     cycle behind the answers.
//   - plant_ae_skip: anti-entropy never repairs bucket 0.
const (
	plantEarlyAck = false
	plantAESkip   = false
)
