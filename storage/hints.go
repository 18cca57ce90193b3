package storage

// HintPartition is the key range of hinted handoff: records a coordinator
// keeps for an owner that did not acknowledge them, until it does
// (gossip/hints.go). A hint is stored under the key of the record it
// carries with Partition set to HintPartition, so the value is an ordinary
// record of the key's kind and the record's own partition is recomputed
// from (account, profile).
//
// No ring uses this partition: the cluster keeps durable hints only when
// its ring has at most HintPartition partitions (every ring but the
// largest, 65536), and nothing scans partitions at or past the ring's size
// (sweep, digests, anti-entropy, handoff).
//
// Format: this is an on-disk format; never change the number (hint keys
// are pinned in storage/testdata/golden/keys.hex).
const HintPartition uint16 = 0xFFFF

// HintKey returns the key under which the hint for k is stored.
func HintKey(k Key) Key {
	k.Partition = HintPartition
	return k
}
