package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Every subcommand's --help goes to stdout, exits 0 and lists its flags.
func TestEveryHelpGoesToStdout(t *testing.T) {
	for _, cmd := range []string{"serve", "dev", "token", "keygen", "sim", "health", "status", "backup", "restore"} {
		code, out, errs := runCLI(cmd, "--help")
		if code != 0 || !strings.Contains(out, "usage:") || errs != "" {
			t.Errorf("%s --help: exit %d, stdout %.60q, stderr %.60q; want 0, the usage on stdout, nothing on stderr", cmd, code, out, errs)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	code, _, errs := runCLI("token", "--account", "a")
	if code != 2 || !strings.Contains(errs, "--secret-file") || !strings.Contains(errs, "required") {
		t.Errorf("missing --secret-file: exit %d, stderr %q; want 2 and the flag named", code, errs)
	}
	code, _, errs = runCLI("token", "--bogus")
	if code != 2 || strings.Count(errs, "flag provided but not defined") != 1 {
		t.Errorf("unknown flag: exit %d, stderr %q; want 2 and the error once", code, errs)
	}
	dir := t.TempDir()
	secret := dir + "/secret"
	if err := os.WriteFile(secret, bytes.Repeat([]byte("s"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI("token", "--secret-file", secret, "--account", "a", "extra")
	if code != 2 || out != "" || !strings.Contains(errs, `"extra"`) {
		t.Errorf("token … extra: exit %d, stdout %q, stderr %q; want 2, no token, the extra word named", code, out, errs)
	}
	if code, out, _ := runCLI("token", "--secret-file", secret, "--account", "a", "--admin"); code != 0 || out == "" {
		t.Errorf("token --admin: exit %d", code)
	}
}

// The README's flag table lists every flag of playhead serve.
func TestReadmeFlagTable(t *testing.T) {
	_, help, _ := runCLI("serve", "--help")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `--") {
			table.WriteString(line + "\n")
		}
	}
	flags := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllStringSubmatch(help, -1)
	if len(flags) < 10 {
		t.Fatalf("found %d flags in serve --help", len(flags))
	}
	for _, f := range flags {
		if !strings.Contains(table.String(), "`--"+f[1]+"`") {
			t.Errorf("--%s (playhead serve) is not in the README's flag table", f[1])
		}
	}
}
