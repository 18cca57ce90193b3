package node

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIValid loads docs/openapi.yaml with a maintained OpenAPI
// library (kin-openapi) and validates it.
func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatalf("loading docs/openapi.yaml: %v", err)
	}
	return doc
}

// routePattern finds the routes registered on the mux in this package's
// sources ("METHOD /path").
var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/[^"]*)"`)

// serverRoutes returns every route the node's mux serves, read from the
// package's sources (server.go builds the mux; route groups live beside it).
func serverRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d routes in the sources; has the mux moved?", len(out))
	}
	return out
}

// TestEveryRouteInOpenAPI: every route the server answers is described in
// docs/openapi.yaml, and every profile and admin route lists the answers its
// wrapper gives to every request (400 bad input or unknown query parameter,
// 401 no token, 403 profile not allowed, 429 rate limited, 503 unavailable).
func TestEveryRouteInOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, route := range serverRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		path = strings.Replace(path, "{$}", "", 1) // "/{$}": exactly "/"
		item := doc.Paths.Find(path)
		if item == nil {
			t.Errorf("%s: path not in docs/openapi.yaml", route)
			continue
		}
		op := item.GetOperation(method)
		if op == nil {
			t.Errorf("%s: method not in docs/openapi.yaml", route)
			continue
		}
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for _, status := range []string{"400", "401", "403", "429", "503"} {
			if op.Responses.Value(status) == nil {
				t.Errorf("%s: answer %s not in docs/openapi.yaml", route, status)
			}
		}
	}
}

// TestEveryRouteDeclaresItsQuery: every /v1 route is in queryParams (so an
// unknown query parameter is refused there), and every parameter it reads
// is in docs/openapi.yaml.
func TestEveryRouteDeclaresItsQuery(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, route := range serverRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		path = strings.Replace(path, "{$}", "", 1) // "/{$}": exactly "/"
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		params, ok := queryParams[route]
		if !ok {
			t.Errorf("%s: not in node/query.go queryParams", route)
			continue
		}
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			continue // reported by TestEveryRouteInOpenAPI
		}
		op := item.GetOperation(method)
		for _, name := range params {
			if op.Parameters.GetByInAndName("query", name) == nil && item.Parameters.GetByInAndName("query", name) == nil {
				t.Errorf("%s: query parameter %s not in docs/openapi.yaml", route, name)
			}
		}
	}
}
