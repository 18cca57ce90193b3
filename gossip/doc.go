// Package gossip is the replication core: the coordinator that turns device
// requests into CRDT deltas and applies them to a partition's owners
// (quorums), replication of deltas, hinted handoff, anti-entropy, handoff of
// partitions, interest routing and catch-up for push, and the driver that
// runs the core in one goroutine. The Transport and Membership interfaces are
// its only ways to the network and the cluster view.
//
// The core (Core, Local and the files they use) is sans-I/O in the sense of
// DESIGN.md §5: time comes from an injected Clock, storage is the
// storage.Store interface, and it starts no goroutines; the simulator drives
// it directly. Only driver.go (Cluster) owns a goroutine, around the core.
//
// The I/O edges live in their own packages beside this one:
//
//	gossip/ring        pure ring rules: node ids, the partition table, ring state, membership view, ring controller
//	gossip/raftring    the ring configuration in raft, and the reconciler that applies ring decisions
//	gossip/memberlist  membership and failure detection over hashicorp/memberlist
//	gossip/tcp         the encrypted replication transport
//	gossip/clusterkey  the cluster key: generate, parse, load
package gossip
