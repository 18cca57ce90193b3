package node

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/playhead/playhead/storage"
)

// NodeStatus is the body of GET /v1/node: this node as it sees itself.
type NodeStatus struct {
	ID        string `json:"id"`
	Version   string `json:"version"`
	State     string `json:"state"` // serving, starting (ring not known yet), stopping
	HTTPAddr  string `json:"http_addr"`
	StartedAt string `json:"started_at"` // RFC 3339
	// Partitions is how many partitions this node holds a replica of.
	Partitions int `json:"partitions"`
	// PendingHandoffs is how many of them it still has to pull from their
	// previous owners before serving them (after a ring change).
	PendingHandoffs int `json:"pending_handoffs"`
	// PendingHints is how many writes this node holds for owners it could
	// not reach: replication owed (hinted handoff), replayed when they are
	// back.
	PendingHints int    `json:"pending_hints"`
	RaftLeader   string `json:"raft_leader"`
}

// nodeStatuser is the cluster layer's part of NodeStatus.
type nodeStatuser interface {
	nodeStatus() (partitions, hints, handoffs int, leader string)
}

func (s singleNode) nodeStatus() (int, int, int, string) {
	return s.n.cfg.Partitions, 0, 0, s.n.cfg.NodeID
}

func (cp *clusterParts) nodeStatus() (int, int, int, string) {
	hints, handoffs := cp.cl.Pending()
	t, _ := cp.cl.Table()
	leader, _ := cp.ring.Leader()
	return t.Load()[cp.self], hints, handoffs, string(leader)
}

// GET /v1/node: admin tokens only.
func (n *Node) nodeInfo(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin {
		return errForbidden("the node endpoints need an admin token")
	}
	if err := n.limitAccount(p.account); err != nil {
		return err
	}
	st := NodeStatus{ID: n.cfg.NodeID, Version: n.cfg.Version, HTTPAddr: n.httpAddr(),
		StartedAt: n.started.UTC().Format(time.RFC3339), State: "serving"}
	switch {
	case !n.ready.Load():
		st.State = "stopping"
	case n.readyCheck != nil && n.readyCheck() != nil:
		st.State = "starting"
	}
	if ns, ok := n.clusterInfo.(nodeStatuser); ok {
		st.Partitions, st.PendingHints, st.PendingHandoffs, st.RaftLeader = ns.nodeStatus()
	}
	if st.Version == "" {
		st.Version = "unknown"
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// POST /v1/node/backup: admin tokens only. Takes a Pebble checkpoint of the
// node's store while it serves (every write acknowledged before the request
// is in it) and answers it as a tar stream; `playhead backup` unpacks it
// and `playhead restore` installs it in a new data directory.
func (n *Node) backup(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin {
		return errForbidden("the node endpoints need an admin token")
	}
	cp, ok := n.store.(storage.Checkpointer)
	if !ok || n.cfg.DataDir == "" {
		return errUnavailable("this node's store cannot take a checkpoint (only an on-disk Pebble store can)", nil)
	}
	var b [8]byte
	rand.Read(b[:])
	// Inside the data directory: same filesystem, so sstables are hard
	// links, not copies.
	dir := filepath.Join(n.cfg.DataDir, "checkpoint-"+hex.EncodeToString(b[:]))
	defer os.RemoveAll(dir)
	if err := cp.Checkpoint(dir); err != nil {
		return errUnavailable("taking the checkpoint failed", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return errUnavailable("reading the checkpoint failed", err)
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="playhead-`+n.cfg.NodeID+`.tar"`)
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := addTarFile(tw, filepath.Join(dir, e.Name()), e.Name()); err != nil {
			n.log.Warn("backup: streaming the checkpoint failed; the client gets a truncated tar", "err", err)
			return nil
		}
	}
	if err := tw.Close(); err != nil {
		n.log.Warn("backup: closing the tar stream", "err", err)
	}
	n.log.Info("backup: checkpoint streamed", "files", len(entries))
	return nil
}

func addTarFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}
