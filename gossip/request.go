package gossip

import "context"

// Options of a request, carried in its context: what a Service that
// consults replicas (the cluster driver, gossip/driver) is asked to do.

type localReadKey struct{}

type readQuorumKey struct{}

// WithReadQuorum asks a read (Service.Cursor or Service.Cursors through a
// Driver) to merge
// the copies of q owners (capped at the partition's owners) and repair
// them, instead of the configured read quorum. A push stream's replay uses
// 2: the replay must not miss a change that the node already counted as
// pushed, and one lagging replica cannot then hide it.
func WithReadQuorum(ctx context.Context, q int) context.Context {
	return context.WithValue(ctx, readQuorumKey{}, q)
}

// WithLocalReplica marks a read to be served by this node's own replica
// (an operator inspecting one replica), not by the partition's coordinator.
func WithLocalReplica(ctx context.Context) context.Context {
	return context.WithValue(ctx, localReadKey{}, true)
}

// ReadQuorumOf is the read quorum WithReadQuorum put in ctx (0: none).
func ReadQuorumOf(ctx context.Context) int {
	q, _ := ctx.Value(readQuorumKey{}).(int)
	return q
}

// LocalReplicaOf reports whether WithLocalReplica marked ctx.
func LocalReplicaOf(ctx context.Context) bool {
	l, _ := ctx.Value(localReadKey{}).(bool)
	return l
}
