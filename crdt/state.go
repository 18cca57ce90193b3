package crdt

import "fmt"

// State is the player state reported with a position.
//
// Wire enum: values are stored on disk and sent between nodes. Append only;
// never renumber (the cursor golden files in storage/testdata/golden pin
// them; V3 packs states up to 6 into the first byte).
type State uint8

const (
	StateUnknown   State = 0
	StatePlaying   State = 1
	StatePaused    State = 2
	StateStopped   State = 3
	StateCompleted State = 4
)

var stateNames = [...]string{"", "playing", "paused", "stopped", "completed"}

// String returns the API name of the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState parses an API state name. The empty string means playing (the
// API default).
func ParseState(s string) (State, bool) {
	if s == "" {
		return StatePlaying, true
	}
	for i, n := range stateNames {
		if i > 0 && n == s {
			return State(i), true
		}
	}
	return StateUnknown, false
}

// Valid reports whether s is a known state.
func (s State) Valid() bool { return s >= StatePlaying && s <= StateCompleted }
