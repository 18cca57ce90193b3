// Package gossip is the replication core: the coordinator that turns device
// requests into CRDT deltas and applies them to a partition's owners
// (quorums), replication of deltas, hinted handoff, anti-entropy, handoff of
// partitions, interest routing and catch-up for push. The goroutine that runs
// the core in production is gossip/driver. The Transport and Membership interfaces are
// its only ways to the network and the cluster view.
//
// There is one write path. The request rules (rules.go) validate and stamp
// a device's updates, merge them and every delete into the stored records
// (crdt holds the merge rules) and say what to store, answer and push; they
// read through a view and never write, lock or read a clock. Local, the
// single-node coordinator, runs them under a profile's stripe lock over the
// store; Core, the cluster coordinator, runs them on its goroutine over its
// buffered store and replicates what they produced.
//
// The core (Core, the rules and the files they use) is sans-I/O in the sense
// of DESIGN.md §5: time is passed in, storage is the storage.Store
// interface, and nothing in this package starts a goroutine or reads the
// wall clock; the simulator drives it directly. gossip/driver owns the one
// goroutine around it in production. The node's HLC
// (Core.Clock) is the one piece of core state that other goroutines touch;
// crdt.Clock is lock-free.
//
// Files, one concern each:
//
//	core.go        Core: the cycle (Submit, Step, Tick, Flush, Ready), routing, coordination of writes
//	rules.go       the request rules: stamp, merge, read, delete (the one write path)
//	local.go       Local: the single-node coordinator (stripe locks, group commit, the sweep)
//	sweep.go       retention on every replica: the sweep walk shared with Local, Core's sweep step, retention on arrival
//	service.go     Service, Ref, events, Notifier, Clock: what the node asks of this package
//	msg.go         peer messages and their frames; msgcheck.go bounds what a hostile frame allocates
//	quorumread.go  reads that consult several owners and repair them
//	hints.go       hinted handoff, durable
//	dedup.go       forwarded-request dedup
//	interest.go    push interest, the follower's side; push.go the owner's side and catch-up
//	transport.go   the Transport interface; request.go the options a request carries in its context
//	plant_*.go     bugs planted under build tags, to prove the simulator catches them
//
// The I/O edges live in their own packages beside this one:
//
//	gossip/driver      the goroutine around a Core in production, and Service over it
//	gossip/ring        pure ring rules: node ids, the partition table, ring state, membership view, ring controller
//	gossip/raftring    the ring configuration in raft, and the reconciler that applies ring decisions
//	gossip/memberlist  membership and failure detection over hashicorp/memberlist
//	gossip/tcp         the encrypted replication transport
//	gossip/clusterkey  the cluster key: generate, parse, load
//	gossip/wallclock   the one wall clock (a Clock) of the production process
//
// and one internal piece of the core in its own package, to keep this one
// readable:
//
//	gossip/internal/bufstore  the Core's buffered view of its store (one durable batch per cycle),
//	                          the anti-entropy digests, and the clock kept above every stored version
package gossip
