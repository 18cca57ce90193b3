// Package memberlist adapts hashicorp/memberlist (SWIM failure detection,
// encrypted gossip) to the gossip.Membership interface: member metadata,
// keyring rotation and log bridging. It is an I/O edge with goroutines and a
// wall clock; the simulator substitutes its own membership view.
package memberlist
