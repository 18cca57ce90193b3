package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "playhead.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// printed runs `serve --print-config` with args and returns the effective
// value line of key.
func printed(t *testing.T, key string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"serve", "--print-config"}, args...), &out, &errb); code != 0 {
		t.Fatalf("serve --print-config %v: exit %d: %s", args, code, errb.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, key+" = ") {
			return l
		}
	}
	t.Fatalf("no %s in\n%s", key, out.String())
	return ""
}

// Precedence: flag > env > file > default, and --print-config says which.
func TestConfigPrecedence(t *testing.T) {
	cfg := writeConfig(t, "data-dir = \"/from/file\"\nhttp-addr = \"0.0.0.0:9000\"\nmax-clock-skew = \"90s\"\njoin = [\"a:7946\", \"b:7946\"]\nreplication = 5\nloopback-timings = true\n")
	if l := printed(t, "data-dir", "--config", cfg); l != `data-dir = "/from/file"  # file` {
		t.Errorf("file over default: %s", l)
	}
	if l := printed(t, "log-level", "--config", cfg); l != `log-level = "info"  # default` {
		t.Errorf("default: %s", l)
	}
	if l := printed(t, "join", "--config", cfg); l != `join = ["a:7946", "b:7946"]  # file` {
		t.Errorf("array: %s", l)
	}
	if l := printed(t, "replication", "--config", cfg); l != `replication = 5  # file` {
		t.Errorf("integer: %s", l)
	}
	t.Setenv("PLAYHEAD_DATA_DIR", "/from/env")
	if l := printed(t, "data-dir", "--config", cfg); l != `data-dir = "/from/env"  # env` {
		t.Errorf("env over file: %s", l)
	}
	if l := printed(t, "data-dir", "--config", cfg, "--data-dir", "/from/flag"); l != `data-dir = "/from/flag"  # flag` {
		t.Errorf("flag over env: %s", l)
	}
	t.Setenv("PLAYHEAD_CONFIG", cfg)
	if l := printed(t, "http-addr"); l != `http-addr = "0.0.0.0:9000"  # file` {
		t.Errorf("PLAYHEAD_CONFIG names the file: %s", l)
	}
}

// Every flag of serve can be set from the file: --print-config's output is
// itself a valid config file that reproduces the same configuration.
func TestConfigEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"serve", "--print-config"}, &out, io.Discard); code != 0 {
		t.Fatal("print-config failed")
	}
	cfg := writeConfig(t, out.String())
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var names []string
	var again bytes.Buffer
	if code := run([]string{"serve", "--config", cfg, "--print-config"}, &again, io.Discard); code != 0 {
		t.Fatal("print-config of its own output failed")
	}
	for _, l := range strings.Split(again.String(), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		names = append(names, strings.Fields(l)[0])
		if !strings.HasSuffix(l, "# file") {
			t.Errorf("not taken from the file: %s", l)
		}
	}
	_ = fs
	if len(names) < 30 {
		t.Errorf("only %d keys printed: %v", len(names), names)
	}
}

// Validation errors name the file, the line, the key and what is allowed.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"data-dir = \"x\"\n\nmax-clock-skew = \"soon\"\n", `playhead.toml:3: key "max-clock-skew"`},
		{"data-dir = \"x\"\nmax-clock-skew = \"soon\"\n", `a duration string`},
		{"# c\ndata_dir = \"x\"\n", `playhead.toml:2: unknown key "data_dir" (did you mean "data-dir"?`},
		{"colour = 1\n", `allowed keys: account-burst, account-rate,`},
		{"replication = \"three\"\n", `playhead.toml:1: key "replication"`},
		{"replication = \"three\"\n", `allowed: an integer`},
		{"node-id = [\"a\"]\n", `an array is only allowed for a list`},
		{"loopback-timings = 1\n", `allowed: true or false`},
		{"replication = true\n", `a boolean is not allowed`},
		{"a = \n", `playhead.toml:1:`},
		{"[cluster]\njoin = [\"x\"]\n", `unknown key "cluster"`},
	} {
		var errb bytes.Buffer
		code := run([]string{"serve", "--print-config", "--config", writeConfig(t, c.body)}, io.Discard, &errb)
		if code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want it to contain %q", c.body, code, errb.String(), c.want)
		}
	}
	var errb bytes.Buffer
	if code := run([]string{"serve", "--config", "/nonexistent/playhead.toml"}, io.Discard, &errb); code == 0 || !strings.Contains(errb.String(), "--config") {
		t.Errorf("missing file: %d %s", code, errb.String())
	}
}

// The sample config in deploy/ is valid.
func TestSampleConfigIsValid(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--print-config", "--config", "../../deploy/playhead.toml"}, &out, &errb); code != 0 {
		t.Fatalf("deploy/playhead.toml: %s", errb.String())
	}
	if !strings.Contains(out.String(), `bootstrap-expect = 3  # file`) {
		t.Errorf("sample not read:\n%s", out.String())
	}
}
