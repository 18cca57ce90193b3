package node

import (
	"net/http"
	"strings"
	"testing"
)

// Every route of server.go, as a browser would preflight it.
var corsRoutes = []struct{ method, path string }{
	{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/v1/cluster"},
	{"PUT", "/v1/profiles/me/positions/ep-1"}, {"GET", "/v1/profiles/me/positions/ep-1"},
	{"POST", "/v1/profiles/me/positions"}, {"GET", "/v1/profiles/me/changes"},
	{"GET", "/v1/profiles/me/events"}, {"GET", "/v1/profiles/me/continue-watching"},
	{"GET", "/v1/profiles/me/history"}, {"DELETE", "/v1/profiles/me/history"},
	{"DELETE", "/v1/profiles/me/history/e-1"}, {"GET", "/v1/profiles/me/settings"},
	{"PUT", "/v1/profiles/me/settings"},
}

func TestCORSPreflightEveryRoute(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"https://player.example"} })
	for _, rt := range corsRoutes {
		r := e.do("OPTIONS", rt.path, "", nil, "Origin", "https://player.example",
			"Access-Control-Request-Method", rt.method,
			"Access-Control-Request-Headers", "authorization, content-type, playhead-hlc, playhead-seen, last-event-id")
		want(t, r, http.StatusNoContent, "")
		h := r.header
		if h.Get("Access-Control-Allow-Origin") != "https://player.example" {
			t.Fatalf("%s %s: Allow-Origin %q", rt.method, rt.path, h.Get("Access-Control-Allow-Origin"))
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), rt.method) {
			t.Fatalf("%s %s: Allow-Methods %q", rt.method, rt.path, h.Get("Access-Control-Allow-Methods"))
		}
		allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"authorization", "content-type", "playhead-hlc", "playhead-seen", "last-event-id"} {
			if !strings.Contains(allowed, want) {
				t.Fatalf("%s %s: Allow-Headers %q lacks %s", rt.method, rt.path, allowed, want)
			}
		}
	}
}

func TestCORSActualRequestExposesHeaders(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"https://player.example"} })
	tok := e.token("acct-1")
	r := e.do("GET", "/v1/profiles/me/continue-watching", tok, nil, "Origin", "https://player.example")
	want(t, r, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != "https://player.example" {
		t.Fatalf("Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	exposed := strings.ToLower(r.header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"playhead-hlc", "retry-after", "x-request-id"} {
		if !strings.Contains(exposed, h) {
			t.Fatalf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if !strings.Contains(r.header.Get("Vary"), "Origin") {
		t.Fatalf("Vary %q lacks Origin", r.header.Get("Vary"))
	}
	// Errors carry the headers too, so a browser app can read them.
	r = e.do("GET", "/v1/profiles/me/continue-watching", "", nil, "Origin", "https://player.example")
	want(t, r, 401, "unauthorized")
	if r.header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatal("a 401 to an allowed origin has no Allow-Origin: the app cannot read why")
	}
}

func TestCORSOriginNotAllowed(t *testing.T) {
	// The default (serve): no origin allowed.
	e := newEnv(t)
	tok := e.token("acct-1")
	r := e.do("OPTIONS", "/v1/profiles/me/history", "", nil, "Origin", "https://evil.example",
		"Access-Control-Request-Method", "DELETE")
	want(t, r, http.StatusForbidden, "forbidden")
	if r.header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(string(r.body), "--cors-origins") {
		t.Fatalf("refused preflight: %v %s", r.header, r.body)
	}
	r = e.do("GET", "/v1/profiles/me/continue-watching", tok, nil, "Origin", "https://evil.example")
	want(t, r, 200, "") // a non-browser caller is not stopped; a browser drops the answer
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("Allow-Origin %q for an origin not listed", r.header.Get("Access-Control-Allow-Origin"))
	}
	// A plain OPTIONS (no preflight) is still the mux's 405.
	r = e.do("OPTIONS", "/v1/profiles/me/history", tok, nil)
	want(t, r, http.StatusMethodNotAllowed, "bad_request")
}

func TestCORSAnyOrigin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{CORSAny} })
	r := e.do("OPTIONS", "/v1/profiles/me/positions/x", "", nil, "Origin", "http://localhost:3000",
		"Access-Control-Request-Method", "PUT")
	want(t, r, http.StatusNoContent, "")
	if r.header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, bad := range []string{"player.example", "https://player.example/app", "ftp://x", "https://"} {
		cfg := Config{AuthSecret: testSecret, CORSOrigins: []string{bad}}
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cors-origins") {
			t.Fatalf("origin %q: %v", bad, err)
		}
	}
	cfg := Config{AuthSecret: testSecret, CORSOrigins: []string{"*", "https://a.example", "http://localhost:8080"}}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
