package node

import (
	"strings"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// seenHeader carries, with a resume read, the largest version of the
// video's cursor the device has seen: "<epoch> <seq> <session>", the
// cursor's own fields. The answer is never older (gossip/seen.go): the
// node reads more replicas, or answers 503 with Retry-After when none it
// can reach has that version yet. The SDKs send it.
const seenHeader = "Playhead-Seen"

// parseSeen parses a Playhead-Seen value.
func parseSeen(h string) (crdt.Version, error) {
	f := strings.SplitN(strings.TrimSpace(h), " ", 3) // a session id may hold spaces
	if len(f) != 3 {
		return crdt.Version{}, errBadRequest("%s: want \"<epoch> <seq> <session>\" (the cursor's epoch, seq and session), got %q", seenHeader, truncate(h))
	}
	epoch, err := crdt.ParseHLC(f[0])
	if err != nil {
		return crdt.Version{}, errBadRequest("%s: epoch %q is not a timestamp", seenHeader, truncate(f[0]))
	}
	seq, err := crdt.ParseHLC(f[1])
	if err != nil {
		return crdt.Version{}, errBadRequest("%s: seq %q is not a timestamp", seenHeader, truncate(f[1]))
	}
	if !api.ValidID(f[2]) {
		return crdt.Version{}, errBadRequest("%s: session %q is not a valid id", seenHeader, truncate(f[2]))
	}
	return crdt.Version{Epoch: epoch, Seq: seq, Session: f[2]}, nil
}

// formatSeen is the Playhead-Seen value of v.
func formatSeen(v crdt.Version) string {
	return v.Epoch.String() + " " + v.Seq.String() + " " + v.Session
}
