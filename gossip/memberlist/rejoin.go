package memberlist

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/playhead/playhead/gossip/ring"
)

// Defaults of the rejoin settings of memberlist.Config.
const (
	// DefaultRejoinInterval is how often the rejoin loop redials members it
	// lost.
	DefaultRejoinInterval = 5 * time.Second
	// DefaultRejoinFor is how long after a member was last seen alive it is
	// still redialed (and remembered in the peers file): 72 hours, enough
	// to outlast a weekend outage of one side of a split.
	DefaultRejoinFor = 72 * time.Hour
	// peersRefresh is how often the peers file is rewritten with nothing
	// changed, so the last-alive times it holds stay within this of the
	// truth.
	peersRefresh = time.Hour
)

// PeersFileName is the name of the file, in a node's data directory, that
// remembers the members it knew (see Config.PeersFile).
const PeersFileName = "peers.json"

// peerRecord is what this node remembers of another member.
type peerRecord struct {
	ID         ring.NodeID `json:"id"`
	GossipAddr string      `json:"gossip_addr"`
	// LastAliveMs is when this node last saw the member alive (Unix ms);
	// members alive when the file was written carry the write time.
	LastAliveMs int64 `json:"last_alive_ms"`
	// Left: the member left gracefully (it is not redialed: it meant to go,
	// and a node that restarts rejoins through its own seeds and peers).
	Left bool `json:"left,omitempty"`
}

// peersFile is the JSON document of Config.PeersFile.
type peersFile struct {
	// Version of the format: 1. A reader skips a file of a newer version.
	Version int          `json:"version"`
	Self    ring.NodeID  `json:"self"`
	Peers   []peerRecord `json:"peers"`
}

const peersFileVersion = 1

// readPeersFile loads the peers remembered at path. A missing file is no
// peers; a damaged one is reported (the caller logs it and starts from the
// seeds alone: the file is a hint, never needed for correctness).
func readPeersFile(path string, self ring.NodeID) ([]peerRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("memberlist: reading the peers file: %w", err)
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("memberlist: peers file %s is damaged (%v); it is rewritten from the live membership", path, err)
	}
	if f.Version != peersFileVersion {
		return nil, fmt.Errorf("memberlist: peers file %s has format %d, this release reads %d; ignoring it", path, f.Version, peersFileVersion)
	}
	if f.Self != "" && f.Self != self {
		return nil, fmt.Errorf("memberlist: peers file %s belongs to node %q, not %q; ignoring it (was the data directory copied?)", path, f.Self, self)
	}
	var out []peerRecord
	for _, p := range f.Peers {
		if p.ID == "" || p.ID == self || p.GossipAddr == "" || len(p.ID) > 128 || len(p.GossipAddr) > 300 {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// writePeersFile writes the peers atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced, so
// a crash leaves either the old file or the new one.
func writePeersFile(path string, self ring.NodeID, peers []peerRecord) error {
	b, err := json.MarshalIndent(peersFile{Version: peersFileVersion, Self: self, Peers: peers}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".peers-*.tmp")
	if err != nil {
		return fmt.Errorf("memberlist: writing the peers file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("memberlist: writing the peers file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("memberlist: syncing the peers file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("memberlist: writing the peers file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("memberlist: replacing the peers file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// RememberedAddrs returns the gossip addresses of the members remembered
// from the peers file or seen since start that may still come back (not
// left gracefully, seen alive within RejoinFor), sorted. Join them with the
// seeds at start: a node whose seeds are all down still finds its cluster.
func (m *Memberlist) RememberedAddrs() []string {
	now := m.cfg.Clock.NowMs()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, p := range m.peers {
		if !p.Left && now-p.LastAliveMs <= m.cfg.RejoinFor.Milliseconds() {
			out = append(out, p.GossipAddr)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// notePeer updates the remembered record of a member from an observed
// change. Caller holds mu.
func (m *Memberlist) notePeerLocked(mem ring.Member) {
	if mem.ID == m.cfg.NodeID || mem.GossipAddr == "" {
		return
	}
	p := m.peers[mem.ID]
	p.ID, p.GossipAddr = mem.ID, mem.GossipAddr
	switch mem.State {
	case ring.MemberAlive, ring.MemberSuspect:
		p.LastAliveMs, p.Left = m.cfg.Clock.NowMs(), false
	case ring.MemberLeft:
		p.Left = true
	case ring.MemberDead:
		p.Left = false
	}
	m.peers[mem.ID] = p
	m.peersDirty = true
}

// rejoinCandidates returns the addresses to redial now: remembered members
// that are not in memberlist's live view, did not leave gracefully, and
// were seen alive within RejoinFor. Remembered members past RejoinFor are
// forgotten.
func (m *Memberlist) rejoinCandidates(live map[ring.NodeID]bool) []string {
	now := m.cfg.Clock.NowMs()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, p := range m.peers {
		if live[id] {
			// memberlist reports it alive: refresh, so the bound counts
			// from the last time it was seen.
			p.LastAliveMs = now
			m.peers[id] = p
			continue
		}
		if now-p.LastAliveMs > m.cfg.RejoinFor.Milliseconds() {
			delete(m.peers, id)
			m.peersDirty = true
			m.log.Info("stopped redialing a member unseen for longer than the rejoin bound; it can still join through a seed",
				"member", id, "addr", p.GossipAddr, "rejoin_for", m.cfg.RejoinFor)
			continue
		}
		if !p.Left {
			out = append(out, p.GossipAddr)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// savePeers writes the peers file if anything changed since the last
// write, or peersRefresh passed. It runs on the rejoin goroutine only.
func (m *Memberlist) savePeers(force bool) {
	if m.cfg.PeersFile == "" {
		return
	}
	m.mu.Lock()
	if !m.peersDirty && !force {
		m.mu.Unlock()
		return
	}
	peers := make([]peerRecord, 0, len(m.peers))
	for _, p := range m.peers {
		peers = append(peers, p)
	}
	m.peersDirty = false
	m.mu.Unlock()
	slices.SortFunc(peers, func(a, b peerRecord) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if err := writePeersFile(m.cfg.PeersFile, m.cfg.NodeID, peers); err != nil {
		m.log.Warn("could not remember the cluster's members; a restart will rely on --join alone", "err", err)
		m.mu.Lock()
		m.peersDirty = true
		m.mu.Unlock()
	}
}

// rejoin is the goroutine that keeps this node in one cluster.
// hashicorp/memberlist never contacts a member again once it declared it
// dead, so two sides of a partition, or a node restarted after its seeds
// died, stay apart for good on their own. Every RejoinInterval this loop
// Joins the remembered members that memberlist does not list as live;
// when one answers, the push/pull merges both sides' views and the failure
// detector takes over again. It also writes the peers file.
func (m *Memberlist) rejoin() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.RejoinInterval)
	defer tick.Stop()
	lastWrite := time.Now()
	redial := true // at once at start, then every tick
	for {
		if redial {
			m.redialOnce()
		}
		force := time.Since(lastWrite) > peersRefresh
		m.savePeers(force)
		if force {
			lastWrite = time.Now()
		}
		select {
		case <-m.done:
			m.savePeers(false)
			return
		case <-tick.C:
			redial = true
		case <-m.peersWake:
			redial = false // a membership change: write the file only
		}
	}
}

// redialOnce Joins the members to redial, if any; see rejoin.
func (m *Memberlist) redialOnce() {
	if m.isClosed() {
		return
	}
	live := map[ring.NodeID]bool{}
	for _, n := range m.ml.Members() { // alive and suspect members
		live[ring.NodeID(n.Name)] = true
	}
	addrs := m.rejoinCandidates(live)
	if len(addrs) == 0 {
		return
	}
	n, err := m.Join(addrs)
	if n > 0 {
		m.log.Info("rejoined lost members", "tried", addrs, "answered", n)
		return
	}
	m.log.Debug("redialing lost members: none answered", "tried", addrs, "err", err)
}
