package node

import (
	"context"
	"net/http"
)

// ClusterInfo describes the cluster for GET /v1/cluster. The single-node
// default describes this node alone; the cluster layer supplies its own.
// Implementations are safe for concurrent use.
type ClusterInfo interface {
	ClusterStatus(ctx context.Context) (ClusterStatus, error)
}

// ClusterStatus is the body of GET /v1/cluster.
type ClusterStatus struct {
	Members     []ClusterMember `json:"members"`
	Partitions  int             `json:"partitions"`
	Replication int             `json:"replication"`
	RaftLeader  string          `json:"raft_leader"`
}

// ClusterMember is one node as the cluster sees it.
type ClusterMember struct {
	ID         string `json:"id"`
	State      string `json:"state"` // alive, suspect, dead, left
	HTTPAddr   string `json:"http_addr"`
	Partitions int    `json:"partitions"` // partitions this node owns
}

// singleNode is the ClusterInfo of a node that owns every partition.
type singleNode struct{ n *Node }

func (s singleNode) ClusterStatus(context.Context) (ClusterStatus, error) {
	n := s.n
	return ClusterStatus{
		Members:     []ClusterMember{{ID: n.cfg.NodeID, State: "alive", HTTPAddr: n.httpAddr(), Partitions: n.cfg.Partitions}},
		Partitions:  n.cfg.Partitions,
		Replication: 1,
		RaftLeader:  n.cfg.NodeID,
	}, nil
}

// GET /v1/cluster: admin tokens only (403 otherwise).
func (n *Node) cluster(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin {
		return errForbidden("the cluster endpoints need an admin token")
	}
	if err := n.limitAccount(p.account); err != nil {
		return err
	}
	st, err := n.clusterInfo.ClusterStatus(r.Context())
	if err != nil {
		return err
	}
	if st.Members == nil {
		st.Members = []ClusterMember{}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// GET /healthz: 200 while the process serves.
func (n *Node) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// GET /readyz: 200 when the store is open and the service ready; 503 while
// starting or shutting down.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	if !n.ready.Load() {
		writeError(w, errUnavailable("not ready (starting or shutting down)", nil))
		return
	}
	if n.readyCheck != nil {
		if err := n.readyCheck(); err != nil {
			writeError(w, errUnavailable("not ready: "+err.Error(), nil))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
