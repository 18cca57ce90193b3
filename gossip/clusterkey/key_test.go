package clusterkey

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemberlistGossipKeyGenerate(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	key, err := Parse(a + "\n")
	if err != nil || len(key) != Size {
		t.Fatalf("parse %q: %d bytes, %v", a, len(key), err)
	}
}

func TestMemberlistGossipKeyLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, _ := Generate()
	k2, _ := Generate()
	short := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))

	key, err := Load(write("one", k1+"\n"))
	if err != nil || base64.StdEncoding.EncodeToString(key) != k1 {
		t.Fatalf("one key with a newline: %v", err)
	}
	if _, err := Load(write("crlf", k1+"\r\n")); err != nil {
		t.Fatalf("CRLF: %v", err)
	}
	keys, err := LoadAll(write("ring", "# rotation in progress\n"+k2+"\n\n"+k1+"\n"))
	if err != nil || len(keys) != 2 || base64.StdEncoding.EncodeToString(keys[0]) != k2 {
		t.Fatalf("keyring: %d keys, %v", len(keys), err)
	}

	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "\n", "holds no key"},
		{"not base64", "not-base64!!\n", "not valid base64"},
		{"short", short + "\n", "is 16 bytes, want 32"},
		{"two keys", k1 + "\n" + k2 + "\n", "holds 2 keys"},
		{"duplicate", k1 + "\n" + k1 + "\n", "listed twice"},
	} {
		_, err := Load(write(tc.name, tc.content))
		if err == nil || !strings.HasPrefix(err.Error(), "clusterkey: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Parse(short); err == nil || !strings.Contains(err.Error(), "playhead keygen") {
		t.Errorf("short key: %v", err)
	}
}
