package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/playhead/playhead/gossip/clusterkey"
)

func TestKeygenPrintsAUsableKey(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"keygen"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	key, err := clusterkey.Parse(out.String())
	if err != nil || len(key) != clusterkey.Size {
		t.Fatalf("keygen printed %q: %v", out.String(), err)
	}
	var again bytes.Buffer
	run([]string{"keygen"}, &again, &errb)
	if strings.TrimSpace(again.String()) == strings.TrimSpace(out.String()) {
		t.Fatal("two keygen runs printed the same key")
	}
	if code := run([]string{"keygen", "extra"}, &out, &errb); code != 2 {
		t.Fatalf("keygen with an argument: exit %d, want 2", code)
	}
}
