package ring

import "hash/fnv"

// DefaultPartitions is the number of partitions profiles hash into. It is
// fixed for the life of a cluster: changing it re-homes every profile.
const DefaultPartitions = 1024

// DefaultReplicas is the replication factor: how many owners each
// partition has. It is the one copy of this default (raftring.Config and
// node.ClusterOptions take it from here).
const DefaultReplicas = 3

// PartitionOf returns the partition of a profile: FNV-1a (64-bit) of
// account, a zero byte and profile, modulo n. The hash is stable across
// processes, platforms and releases; it is part of the on-disk format.
func PartitionOf(account, profile string, n int) uint16 {
	h := fnv.New64a()
	h.Write([]byte(account))
	h.Write([]byte{0})
	h.Write([]byte(profile))
	return uint16(h.Sum64() % uint64(n))
}
