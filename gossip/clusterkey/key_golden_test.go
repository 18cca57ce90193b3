package clusterkey

import (
	"encoding/base64"
	"regexp"
	"testing"

	"github.com/playhead/playhead/gossip/internal/goldentest"
)

// TestGoldenKeyFiles pins the key file format operators write and every
// node of a cluster reads: testdata/key.txt (one key, as `playhead keygen >
// cluster.key` writes it) and testdata/keyring.txt (a rotation: comments, a
// blank line, surrounding white space, a CRLF line end, the primary first)
// must parse to the pinned key bytes, and keygen must keep printing keys in
// that format (standard base64, padded, 32 bytes).
func TestGoldenKeyFiles(t *testing.T) {
	one, err := Load("testdata/key.txt")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := LoadAll("testdata/keyring.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := []goldentest.Case{{Name: "key.txt", Bytes: one}}
	for i, k := range ring {
		cases = append(cases, goldentest.Case{Name: "keyring.txt/" + string(rune('0'+i)), Bytes: k})
	}
	goldentest.Check(t, "testdata/keys.golden",
		"The keys the files testdata/key.txt and testdata/keyring.txt hold, in file order\n"+
			"(keyring.txt/0 is the primary): Size (32) bytes each, standard base64 with\n"+
			"padding, one per line; blank lines, lines starting with # and white space\n"+
			"around a key are ignored.", cases)

	g, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9+/]{43}=$`).MatchString(g) {
		t.Errorf("keygen printed %q: not the key file format (44 characters of padded standard base64)", g)
	}
	if k, err := Parse(g); err != nil || base64.StdEncoding.EncodeToString(k) != g {
		t.Errorf("keygen's %q does not parse back: %v", g, err)
	}
}
