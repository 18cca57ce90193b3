package raftring

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/playhead/playhead/gossip/ring"
)

// maxRingSnapshot bounds what Restore reads: a 65536-partition table with 3
// replicas of 128-byte names is about 25 MB.
const maxRingSnapshot = 64 << 20

// ringFSM is the raft state machine of the ring: a ring.State changed only by
// ring.State.SetMembers. Apply and Restore run on raft's FSM goroutine,
// Snapshot on it too and Persist on another; readers load the published
// state at any time (it is immutable).
type ringFSM struct {
	state   atomic.Pointer[ring.State]
	changed chan struct{} // capacity 1: a new state was published
	log     *slog.Logger
}

func newRingFSM(log *slog.Logger) *ringFSM {
	f := &ringFSM{changed: make(chan struct{}, 1), log: log}
	f.state.Store(&ring.State{})
	return f
}

func (f *ringFSM) publish(s ring.State) {
	f.state.Store(&s)
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Apply applies one committed command. It returns nil or the error that
// the command was refused with, identically on every replica.
func (f *ringFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := ring.DecodeCommand(l.Data)
	if err != nil {
		f.log.Error("ring: skipping a log entry that cannot be decoded", "index", l.Index, "err", err)
		return err
	}
	next, changed, err := f.state.Load().SetMembers(cmd.Partitions, cmd.Replicas, cmd.Members)
	if err != nil {
		return err
	}
	if changed {
		f.publish(next)
	}
	return nil
}

func (f *ringFSM) Snapshot() (raft.FSMSnapshot, error) {
	return ringFSMSnapshot{*f.state.Load()}, nil
}

func (f *ringFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxRingSnapshot+1))
	if err != nil {
		return fmt.Errorf("raftring: reading ring snapshot: %w", err)
	}
	if len(b) > maxRingSnapshot {
		return fmt.Errorf("%w: snapshot larger than %d bytes", ring.ErrBadRingData, maxRingSnapshot)
	}
	s, err := ring.DecodeState(b)
	if err != nil {
		return err
	}
	f.publish(s)
	return nil
}

type ringFSMSnapshot struct{ s ring.State }

func (s ringFSMSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := ring.EncodeState(s.s)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftring: writing ring snapshot: %w", err)
	}
	return sink.Close()
}

func (ringFSMSnapshot) Release() {}
