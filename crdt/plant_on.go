//go:build plant_merge

package crdt

// plantMergeSmaller: see plant_off.go. Only `go test -tags plant_merge
// ./cluster-sim` builds this file, to prove the simulator catches it.
const plantMergeSmaller = true
