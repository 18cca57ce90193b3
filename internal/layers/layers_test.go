package layers

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const mod = "github.com/playhead/playhead/"

// goList runs `go list` in the module root with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("layers: the go command is not on PATH; these checks need `go list`")
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	return strings.Fields(string(out))
}

func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// rule: the transitive dependencies of pkg (non-test build) must not
// include any package whose import path has one of the forbidden prefixes
// ("!p" allows p inside a broader forbidden prefix). The standard library
// is not checked here (Pebble alone links net/http): what the sans-I/O
// packages import directly is checked by TestCoreIsSansIO.
type rule struct {
	pkg    string
	forbid []string
	why    string
}

// The "must not" column of DESIGN.md's package table, as import paths.
var rules = []rule{
	{"api", []string{mod, "!" + mod + "crdt", "!" + mod + "api"}, "api/ is a leaf: the standard library, crdt/ and the JWT library only"},
	{"crdt", []string{mod + "storage", mod + "gossip", mod + "node", mod + "client", "github.com/hashicorp", "github.com/cockroachdb"}, "crdt/ holds merge rules only: no I/O, no other playhead package"},
	{"storage", []string{mod + "gossip", mod + "node", mod + "client", mod + "cluster-sim", "github.com/hashicorp", "github.com/coder/websocket"}, "storage/ knows nothing of HTTP or the cluster"},
	{"gossip", []string{mod + "node", mod + "client", mod + "cluster-sim", mod + "gossip/raftring", mod + "gossip/memberlist", mod + "gossip/tcp", mod + "gossip/clusterkey", "github.com/hashicorp", "go.etcd.io/bbolt", "github.com/coder/websocket"}, "the replication core imports none of its I/O edges"},
	{"gossip/ring", []string{mod + "node", mod + "storage", "github.com/hashicorp", "go.etcd.io/bbolt"}, "gossip/ring/ is pure ring rules"},
	{"cluster-sim", []string{mod + "node", mod + "gossip/raftring", mod + "gossip/memberlist", mod + "gossip/tcp", mod + "gossip/clusterkey", "github.com/hashicorp", "go.etcd.io/bbolt"}, "the simulator runs the core without real sockets, raft or memberlist"},
	{"client", []string{mod + "node", mod + "gossip", mod + "storage", mod + "cluster-sim", "github.com/cockroachdb", "github.com/hashicorp"}, "the device SDK imports no server package but crdt/ and api/"},
	{"node", []string{mod + "cluster-sim", mod + "bench"}, "the node does not link the simulator or the benchmark"},
}

// matches reports whether path is p or below it (p "net" matches "net" and
// "net/http", not "netip").
func matches(path, p string) bool {
	p = strings.TrimSuffix(p, "/")
	return path == p || strings.HasPrefix(path, p+"/")
}

func TestPackageRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			deps := goList(t, "-deps", "./"+r.pkg)
			for _, d := range deps {
				if d == mod+r.pkg {
					continue
				}
				bad := ""
				for _, f := range r.forbid {
					if strings.HasPrefix(f, "!") {
						if matches(d, f[1:]) {
							bad = ""
							break
						}
						continue
					}
					if matches(d, f) && bad == "" {
						bad = f
					}
				}
				if bad != "" {
					t.Errorf("%s depends on %s (forbidden: %s): %s", r.pkg, d, bad, r.why)
				}
			}
		})
	}
}

// The sans-I/O packages and the files in them allowed to touch the world.
var sansIO = []struct {
	dir    string
	except map[string]string // file → why
}{
	{"crdt", nil},
	{"gossip/ring", nil},
	{"gossip/internal/bufstore", nil},
	{"gossip", map[string]string{"driver.go": "the production driver owns the core's goroutine", "local.go": "the single-node coordinator (locks; time is still passed in)"}},
	{"cluster-sim", nil},
}

// Calls that read the wall clock or wait on it.
var wallClock = map[string]bool{"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"NewTimer": true, "NewTicker": true, "Tick": true, "Sleep": true}

// Constructors are the only allowed uses of math/rand: randomness is a
// seeded *rand.Rand from configuration, never the package-global source.
var randCtors = map[string]bool{"New": true, "NewSource": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true}

var ioImports = map[string]bool{"net": true, "net/http": true, "os": true, "os/exec": true, "syscall": true, "crypto/rand": true}

func TestCoreIsSansIO(t *testing.T) {
	for _, p := range sansIO {
		dir := filepath.Join(root(t), p.dir)
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", p.dir, err)
		}
		for _, f := range files {
			base := filepath.Base(f)
			if strings.HasSuffix(base, "_test.go") || p.except[base] != "" {
				continue
			}
			checkFile(t, t.Errorf, p.dir+"/"+base, f)
		}
	}
}

// checkFile reports, through errorf, every sans-I/O violation in one file.
func checkFile(t *testing.T, errorf func(format string, args ...any), name, path string) {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]string{} // import name → path
	for _, im := range file.Imports {
		ip, _ := strconv.Unquote(im.Path.Value)
		if ioImports[ip] {
			errorf("%s imports %q: the core does no I/O (pass it in through an interface)", name, ip)
		}
		n := filepath.Base(ip)
		if ip == "math/rand/v2" {
			n = "rand"
		}
		if im.Name != nil {
			n = im.Name.Name
		}
		local[n] = ip
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			errorf("%s: a go statement at %s: the core starts no goroutines (the driver does)", name, fset.Position(n.Pos()))
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch local[id.Name] {
			case "time":
				if wallClock[n.Sel.Name] {
					errorf("%s: time.%s at %s: the core takes time as an input", name, n.Sel.Name, fset.Position(n.Pos()))
				}
			case "math/rand", "math/rand/v2":
				if !randCtors[n.Sel.Name] && n.Sel.Name != "Rand" && n.Sel.Name != "Source" {
					errorf("%s: rand.%s at %s: use a seeded *rand.Rand from configuration", name, n.Sel.Name, fset.Position(n.Pos()))
				}
			}
		}
		return true
	})
}

// TestRulesCatchViolations checks that the checks above can fail: a file
// with every forbidden construct yields one error for each.
func TestRulesCatchViolations(t *testing.T) {
	src := `package x
import (
	"math/rand"
	"net"
	"time"
)
var _ net.Conn
func f() {
	go f()
	_ = time.Now()
	_ = rand.Intn(3)
	_ = rand.New(rand.NewSource(1))
}
`
	path := filepath.Join(t.TempDir(), "bad.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var errs []string
	checkFile(t, func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }, "bad.go", path)
	want := []string{"imports \"net\"", "go statement", "time.Now", "rand.Intn"}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %q", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %d = %q, want it to mention %q", i, errs[i], w)
		}
	}
	if !matches("net/http", "net") || matches("netip", "net") {
		t.Error("matches: a prefix must end at a path element")
	}
}
