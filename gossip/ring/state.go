package ring

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// State is the replicated state of the ring configuration: the partition
// table and the member set it was computed for. Every node of the raft group
// holds the same State, because every change is a command applied by
// the pure function SetMembers, in log order. The simulator can hold one
// directly, without raft.
//
// A State and its Table are immutable once published: SetMembers
// returns a new one and shares nothing that it changed.
//
// Invariant: Members is sorted and free of duplicates; when
// Table.Version > 0, Table.Check(Members) holds.
type State struct {
	Table   Table
	Members []NodeID
}

// Errors of the ring state machine.
var (
	// ErrRingNoMembers: a member set must not be empty.
	ErrRingNoMembers = errors.New("ring: a ring needs at least one member")
	// ErrPartitionsFixed: the number of partitions is fixed for the life of
	// a cluster (changing it would re-home every profile).
	ErrPartitionsFixed = errors.New("ring: the number of partitions cannot change in a running cluster")
	// ErrBadRingData: a ring command or snapshot could not be decoded.
	ErrBadRingData = errors.New("ring: bad ring command or snapshot")
)

// SetMembers returns the state for a new member set: the table rebalanced
// (Rebalance) over members with the given replication factor. The first
// call on an empty state creates the table with the given number of
// partitions; later calls must pass the same number. changed is false, and
// s is returned as is, when members and replicas are what s already holds.
// It is deterministic: a pure function of s and its arguments.
func (s State) SetMembers(partitions, replicas int, members []NodeID) (next State, changed bool, err error) {
	if partitions < 1 || partitions > 1<<16 {
		return s, false, fmt.Errorf("ring: partitions must be in [1, 65536], got %d", partitions)
	}
	if replicas < 1 {
		return s, false, fmt.Errorf("ring: replicas must be at least 1, got %d", replicas)
	}
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	if len(members) == 0 {
		return s, false, ErrRingNoMembers
	}
	if members[0] == "" {
		return s, false, errors.New("ring: a ring member has an empty ID")
	}
	t := s.Table
	if t.Partitions() == 0 {
		t = Table{Replicas: replicas, Owners: make([][]NodeID, partitions)}
	} else {
		if t.Partitions() != partitions {
			return s, false, fmt.Errorf("%w: it has %d, the command asks for %d", ErrPartitionsFixed, t.Partitions(), partitions)
		}
		if t.Replicas == replicas && slices.Equal(s.Members, members) {
			return s, false, nil
		}
		t.Replicas = replicas
	}
	return State{Table: Rebalance(t, members), Members: members}, true, nil
}

// Ring commands are the entries of the raft log. Encoding: one command-type
// byte, then the command as a msgpack map under one-letter keys (so a later
// release can add fields). The log is on disk and replicated between
// releases: command types are a wire enum (append only, never reuse one),
// and a new type needs every node upgraded before the leader may send it.
const (
	RingCmdSetMembers byte = 1
)

// SetMembersCmd asks every replica to apply ring.State.SetMembers.
// FORMAT: in the raft log on disk and on the wire, a msgpack map under these
// keys; changing keys/types breaks mixed-version clusters; see
// state_golden_test.go.
type SetMembersCmd struct {
	Members    []NodeID `msgpack:"m"`
	Partitions int      `msgpack:"p"`
	Replicas   int      `msgpack:"r"`
}

func EncodeSetMembers(c SetMembersCmd) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(RingCmdSetMembers)
	if err := msgpack.NewEncoder(&buf).Encode(&c); err != nil {
		return nil, fmt.Errorf("ring: encoding ring command: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeCommand decodes a log entry. It never panics.
func DecodeCommand(b []byte) (SetMembersCmd, error) {
	var c SetMembersCmd
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty command", ErrBadRingData)
	}
	if b[0] != RingCmdSetMembers {
		return c, fmt.Errorf("%w: unknown command type %d (written by a newer release?)", ErrBadRingData, b[0])
	}
	if err := decodeExact(b[1:], &c); err != nil {
		return SetMembersCmd{}, fmt.Errorf("%w: set-members command: %v", ErrBadRingData, err)
	}
	return c, nil
}

// Snapshot encoding: one format byte, then ringSnapshot as a msgpack map.
// Snapshots are on disk and sent to new servers: a wire format. Never reuse
// a format byte.
const ringSnapshotV1 byte = 1

// ringSnapshot is the snapshot's State. FORMAT: as SetMembersCmd.
type ringSnapshot struct {
	Version  uint64     `msgpack:"v"`
	Replicas int        `msgpack:"r"`
	Owners   [][]NodeID `msgpack:"o"`
	Members  []NodeID   `msgpack:"m"`
}

func EncodeState(s State) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(ringSnapshotV1)
	snap := ringSnapshot{Version: s.Table.Version, Replicas: s.Table.Replicas, Owners: s.Table.Owners, Members: s.Members}
	if err := msgpack.NewEncoder(&buf).Encode(&snap); err != nil {
		return nil, fmt.Errorf("ring: encoding ring snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeState decodes a snapshot and checks the ring.State invariant. It
// never panics.
func DecodeState(b []byte) (State, error) {
	if len(b) == 0 {
		return State{}, fmt.Errorf("%w: empty snapshot", ErrBadRingData)
	}
	if b[0] != ringSnapshotV1 {
		return State{}, fmt.Errorf("%w: unknown snapshot format %d", ErrBadRingData, b[0])
	}
	var snap ringSnapshot
	if err := decodeExact(b[1:], &snap); err != nil {
		return State{}, fmt.Errorf("%w: snapshot: %v", ErrBadRingData, err)
	}
	s := State{
		Table:   Table{Version: snap.Version, Replicas: snap.Replicas, Owners: snap.Owners},
		Members: snap.Members,
	}
	if len(s.Table.Owners) > 1<<16 {
		return State{}, fmt.Errorf("%w: snapshot has %d partitions", ErrBadRingData, len(s.Table.Owners))
	}
	if !slices.IsSorted(s.Members) || len(slices.Compact(slices.Clone(s.Members))) != len(s.Members) {
		return State{}, fmt.Errorf("%w: snapshot member set is not sorted and unique", ErrBadRingData)
	}
	if s.Table.Version > 0 {
		if s.Table.Replicas < 1 || len(s.Members) == 0 {
			return State{}, fmt.Errorf("%w: snapshot table has no members or replicas", ErrBadRingData)
		}
		if err := s.Table.Check(s.Members); err != nil {
			return State{}, fmt.Errorf("%w: snapshot table: %v", ErrBadRingData, err)
		}
	}
	return s, nil
}

// decodeExact decodes one msgpack value filling all of b.
func decodeExact(b []byte, v any) error {
	r := bytes.NewReader(b)
	// A fresh decoder (not a pooled one): see storage.DecodeValue.
	if err := msgpack.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}
