//go:build !plant_merge

package crdt

// plantMergeSmaller is a planted bug for the simulator's own tests (build
// tag plant_merge): the cursor merge keeps the smaller version. It is a
// constant false in every other build, so the check compiles away.
const plantMergeSmaller = false
