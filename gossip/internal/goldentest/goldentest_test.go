package goldentest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.TB.Fatalf("unexpected Fatalf: "+format, args...)
}

// TestCheckFails: Check passes on the pinned bytes and fails on a changed
// byte, a case the file lacks and a case no longer tested.
func TestCheckFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("# header\n\na 0102\nb ff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	got := Check(r, path, "", []Case{{"a", []byte{1, 2}}, {"b", []byte{0xff}}})
	if len(r.errs) != 0 || string(got["a"]) != "\x01\x02" {
		t.Fatalf("pinned bytes: %q, %x", r.errs, got)
	}
	r = &recorder{TB: t}
	Check(r, path, "", []Case{{"a", []byte{1, 3}}, {"c", nil}})
	want := []string{"a encodes differently", "no case c", "case b is not tested"}
	if len(r.errs) != len(want) {
		t.Fatalf("got %d failures, want %d: %q", len(r.errs), len(want), r.errs)
	}
	for i, w := range want {
		if !strings.Contains(r.errs[i], w) {
			t.Errorf("failure %d: %q, want it to say %q", i, r.errs[i], w)
		}
	}
}
