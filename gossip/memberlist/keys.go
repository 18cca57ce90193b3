package memberlist

import (
	"fmt"
	"slices"

	"github.com/playhead/playhead/gossip/clusterkey"
)

// InstallKey adds a key to this node's keyring for decryption; it does not
// encrypt with it yet. Rotation, cluster-wide: InstallKey(new) on every
// node, then UseKey(new) on every node, then RemoveKey(old) on every node,
// each step finished everywhere before the next begins. Keys are held in
// memory only: also update the key file, or a restart brings the old set
// back.
func (m *Memberlist) InstallKey(key []byte) error {
	if m.keyring == nil {
		return ErrGossipPlaintext
	}
	if len(key) != clusterkey.Size {
		return fmt.Errorf("memberlist: gossip key is %d bytes, want %d", len(key), clusterkey.Size)
	}
	if err := m.keyring.AddKey(slices.Clone(key)); err != nil {
		return fmt.Errorf("memberlist: install key: %w", err)
	}
	return nil
}

// UseKey makes an installed key the primary: everything this node sends is
// encrypted with it from now on. Every member must have installed it first.
func (m *Memberlist) UseKey(key []byte) error {
	if m.keyring == nil {
		return ErrGossipPlaintext
	}
	if err := m.keyring.UseKey(key); err != nil {
		return fmt.Errorf("memberlist: use key: %w", err)
	}
	return nil
}

// RemoveKey drops a key from the keyring; the primary cannot be removed
// (UseKey another first). Removing a key that is not installed is a no-op.
func (m *Memberlist) RemoveKey(key []byte) error {
	if m.keyring == nil {
		return ErrGossipPlaintext
	}
	// memberlist removes a key by shifting the keys after it in place, in
	// the slice its receive path may be reading at that moment (a data
	// race). Removing the last key shifts nothing, and in the rotation above
	// the old key is always last (UseKey moved the new one to the front), so
	// rotate with two keys at a time.
	if err := m.keyring.RemoveKey(key); err != nil {
		return fmt.Errorf("memberlist: remove key: %w", err)
	}
	return nil
}

// Keys returns copies of the installed keys, the primary first; nil when
// gossip is plaintext.
func (m *Memberlist) Keys() [][]byte {
	if m.keyring == nil {
		return nil
	}
	return cloneKeys(m.keyring.GetKeys())
}

func cloneKeys(keys [][]byte) [][]byte {
	if keys == nil {
		return nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(k)
	}
	return out
}
