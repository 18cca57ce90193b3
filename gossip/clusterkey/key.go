package clusterkey

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
)

// Size is the size of a cluster key: 32 bytes (AES-256).
const Size = 32

// Generate returns a new random gossip key (Size bytes from
// crypto/rand), base64-encoded (standard alphabet, padded): what `playhead
// keygen` prints and what a key file holds.
func Generate() (string, error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("clusterkey: generating a gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// Parse decodes one base64 gossip key (surrounding whitespace
// ignored) and checks its size.
func Parse(s string) ([]byte, error) {
	key, err := parseGossipKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("clusterkey: gossip key %s", err)
	}
	return key, nil
}

// parseGossipKey is clusterkey.Parse with an error message that reads after
// "gossip key".
func parseGossipKey(b []byte) ([]byte, error) {
	const hint = " (generate one with `playhead keygen`)"
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("is empty" + hint)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(key, b)
	if err != nil {
		return nil, fmt.Errorf("is not valid base64: %v%s", err, hint)
	}
	if n != Size {
		return nil, fmt.Errorf("is %d bytes, want %d%s", n, Size, hint)
	}
	return key[:n], nil
}

// Load reads a key file: the base64 of one Size-byte key,
// surrounding whitespace (a trailing newline) ignored.
func Load(path string) ([]byte, error) {
	keys, err := LoadAll(path)
	if err != nil {
		return nil, err
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("clusterkey: gossip key file %s holds %d keys, want exactly 1", path, len(keys))
	}
	return keys[0], nil
}

// LoadAll reads a keyring file: one base64 key per line, the primary
// (the one that encrypts) first; blank lines and lines starting with # are
// ignored. During a rotation the file holds the new and the old key.
// FORMAT: operators' files and keygen's output; see key_golden_test.go.
func LoadAll(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clusterkey: reading gossip key file: %w", err)
	}
	var keys [][]byte
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, err := parseGossipKey(line)
		if err != nil {
			return nil, fmt.Errorf("clusterkey: gossip key at %s:%d %s", path, i+1, err)
		}
		for _, k := range keys {
			if bytes.Equal(k, key) {
				return nil, fmt.Errorf("clusterkey: %s:%d: the same key is listed twice", path, i+1)
			}
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("clusterkey: gossip key file %s holds no key (generate one with `playhead keygen`)", path)
	}
	return keys, nil
}
