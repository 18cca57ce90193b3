// Package goldentest pins byte formats for the tests of gossip/ and its
// subpackages: each case's bytes are compared with a golden file,
// testdata/<name>.golden, so that reordering, renaming or retyping a field
// of a format fails a test instead of breaking a mixed-version cluster.
//
// A golden file is "# " header lines, then one "name hex" line per case.
// go test ./<pkg> -run Golden -update rewrites the files with the current
// encodings: only for an intended change that every peer can read (a new
// format version, with the old one still decoded), never to make a test
// pass.
package goldentest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current encodings")

// Case is one named byte string of a golden file.
type Case struct {
	Name  string
	Bytes []byte
}

// Check compares cases with the golden file at path, rewriting it first
// under -update (header: its comment, one line per "\n"). It fails t for a
// case whose bytes differ, a case the file lacks and a case the file has
// but cases do not. It returns the file's bytes by case name, for the
// caller to decode.
func Check(t testing.TB, path, header string, cases []Case) map[string][]byte {
	t.Helper()
	if *update {
		write(t, path, header, cases)
	}
	want, err := Read(path)
	if err != nil {
		t.Fatalf("%v (go test -run Golden -update writes it)", err)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Fatalf("%s: case %q listed twice", path, c.Name)
		}
		seen[c.Name] = true
		w, ok := want[c.Name]
		switch {
		case !ok:
			t.Errorf("%s: no case %s (a new case: go test -run Golden -update adds it)", path, c.Name)
		case !bytes.Equal(c.Bytes, w):
			t.Errorf("%s: %s encodes differently from its golden bytes: a format changed, and a node of the previous release cannot read it.\n"+
				" got  %x\n want %x\nRestore the field order, names and types; an intended change needs a new format version (then -update).",
				path, c.Name, c.Bytes, w)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("%s: case %s is not tested any more (a format someone may still send)", path, n)
		}
	}
	return want
}

// Read parses a golden file.
func Read(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, hx, ok := strings.Cut(s, " ")
		b, err := hex.DecodeString(strings.TrimSpace(hx))
		if !ok || err != nil {
			return nil, fmt.Errorf("%s:%d: want \"name hex\"", path, line)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: case %q twice", path, line, name)
		}
		out[name] = b
	}
	return out, sc.Err()
}

func write(t testing.TB, path, header string, cases []Case) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		buf.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	buf.WriteString("#\n# Written by go test -run Golden -update. Nodes of other releases read these\n" +
		"# bytes: never reorder, rename, retype or remove a field.\n\n")
	for _, c := range cases {
		if strings.ContainsAny(c.Name, " \t\n") {
			t.Fatalf("%s: case name %q has white space", path, c.Name)
		}
		fmt.Fprintf(&buf, "%s %x\n", c.Name, c.Bytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
