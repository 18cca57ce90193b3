// Package storage holds playhead's durable state: the Store interface, its
// Pebble implementation and an in-memory implementation with crash semantics
// for tests and the simulator.
//
// A store holds crdt.Records under Keys. Keys begin with their partition, so
// one partition is one contiguous key range (anti-entropy, handoff and purge
// scan it), and within it one profile's records are contiguous too. Values
// are msgpack. A store knows nothing about HTTP, the cluster or merge rules:
// callers read, merge (crdt) and write.
package storage

import (
	"errors"

	"github.com/playhead/playhead/crdt"
)

// Errors returned by stores.
var (
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("storage: store is closed")
	// ErrCorrupt reports a stored key or value that does not decode.
	ErrCorrupt = errors.New("storage: corrupt record")
	// ErrBadKey reports a key that cannot be encoded (an id over MaxIDLen,
	// an unknown kind, or a profile key with an id).
	ErrBadKey = errors.New("storage: bad key")
	// ErrBadRecord reports a record that cannot be stored under its key: its
	// kind differs from the key's, or a cursor names another video than the
	// key's id.
	ErrBadRecord = errors.New("storage: bad record")
)

// MaxIDLen is the longest account, profile or record id a key can hold.
const MaxIDLen = 255

// Key identifies one record.
type Key struct {
	Partition uint16
	Account   string
	Profile   string
	Kind      crdt.Kind
	// ID is the video for a cursor, the entry id for an entry, empty for the
	// profile record.
	ID string
}

// Put is one record to write.
type Put struct {
	Key    Key
	Record crdt.Record
}

// Store is a durable map from Key to crdt.Record.
//
// Implementations are safe for concurrent use. Write returns only once its
// batch is durable (synced); concurrent Writes share syncs (group commit), so
// many writers cost few fsyncs. A record returned by Get or a scan is one
// that some completed or in-progress Write put there; after a crash every
// completed Write survives and no Write is seen half-applied.
type Store interface {
	// Get returns the record at k; ok is false when there is none.
	Get(k Key) (rec crdt.Record, ok bool, err error)
	// ScanProfile calls fn for each record of one profile in key order,
	// restricted to kind unless kind is 0. fn must not call Write; returning
	// an error stops the scan and returns that error.
	ScanProfile(partition uint16, account, profile string, kind crdt.Kind, fn func(Key, crdt.Record) error) error
	// ScanPartition calls fn for every record of partition p in key order.
	ScanPartition(p uint16, fn func(Key, crdt.Record) error) error
	// Write atomically and durably applies puts, then deletes.
	Write(puts []Put, deletes []Key) error
	// Close releases the store. Completed Writes are durable.
	Close() error
}

// AsyncWriter is implemented by stores that can make a Write visible before
// it is durable. WriteNoWait applies puts and deletes atomically, as Write
// does, and returns once later Gets and scans see them; wait returns once
// they are durable (or with the error that kept them from it). A caller can
// release its locks between the two, so that writers of the same keys
// queue on the store's group commit instead of on each other's syncs.
//
// A store makes writes durable in the order they became visible, so wait
// returning nil for one Write implies every Write visible before it is
// durable too. wait must be called exactly once.
type AsyncWriter interface {
	WriteNoWait(puts []Put, deletes []Key) (wait func() error, err error)
}

// WriteNoWait is s's WriteNoWait if it has one; otherwise it runs the whole
// Write and returns a wait that reports nothing more.
func WriteNoWait(s Store, puts []Put, deletes []Key) (wait func() error, err error) {
	if a, ok := s.(AsyncWriter); ok {
		return a.WriteNoWait(puts, deletes)
	}
	if err := s.Write(puts, deletes); err != nil {
		return nil, err
	}
	return noWait, nil
}

func noWait() error { return nil }
