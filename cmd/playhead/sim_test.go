package main

import (
	"path/filepath"
	"regexp"
	"testing"
)

// playhead sim --plan-out writes the run's plan; --replay runs it again to
// the same trace hash.
func TestSimPlanOutAndReplay(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.json")
	hash := regexp.MustCompile(`trace hash: ([0-9a-f]{64})`)
	code, out, errs := runCLI("sim", "--seed", "3", "--nodes", "3", "--devices", "6", "--duration", "15s", "--plan-out", plan)
	m := hash.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("sim --plan-out: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, again, errs := runCLI("sim", "--replay", plan)
	m2 := hash.FindStringSubmatch(again)
	if code != 0 || m2 == nil || m2[1] != m[1] {
		t.Fatalf("sim --replay: exit %d, stdout %q, stderr %q; want trace hash %s", code, again, errs, m[1])
	}
	if code, _, errs := runCLI("sim", "--replay", plan, "--seeds", "1-2"); code == 0 {
		t.Errorf("--replay with --seeds: exit 0 (stderr %q); want refused", errs)
	}
	if code, _, errs := runCLI("sim", "--replay", filepath.Join(t.TempDir(), "none.json")); code == 0 {
		t.Errorf("--replay of a missing file: exit 0 (stderr %q)", errs)
	}
}
