package api

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLeafImports: api stays a leaf that the SDK and the bench can link
// without the server: the standard library, crdt and jwt only (crdt itself
// imports only the standard library).
func TestLeafImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/playhead/playhead/crdt": true,
		"github.com/golang-jwt/jwt/v5":      true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			if !std && !allowed[path] {
				t.Errorf("%s imports %s: api may import only the standard library, crdt and jwt", name, path)
			}
		}
	}
}
