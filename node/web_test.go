package node

import (
	"strings"
	"testing"
)

// The demo page and the JavaScript SDK are served without a token, with
// their content types; anything else under them is a JSON 404.
func TestWebPageAndSDKServed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"https://player.example"} })
	for path, ctype := range map[string]string{
		"/": "text/html", "/ui/app.js": "text/javascript", "/ui/style.css": "text/css",
		"/sdk/playhead.js": "text/javascript", "/sdk/hlc.js": "text/javascript",
		"/sdk/queue.js": "text/javascript", "/sdk/tracker.js": "text/javascript",
	} {
		r := e.do("GET", path, "", nil, "Origin", "https://player.example")
		want(t, r, 200, "")
		if !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || len(r.body) == 0 {
			t.Fatalf("%s: %s, %d bytes", path, r.header.Get("Content-Type"), len(r.body))
		}
		// A page on an allowed origin may import the SDK as a module.
		if r.header.Get("Access-Control-Allow-Origin") != "https://player.example" {
			t.Fatalf("%s: no Allow-Origin for an allowed origin", path)
		}
	}
	if r := e.do("GET", "/", "", nil); !strings.Contains(string(r.body), `src="/ui/app.js"`) {
		t.Fatalf("the page does not load its script: %s", r.body)
	}
	for _, path := range []string{"/sdk/nope.js", "/ui/embed.go", "/sdk/embed.go", "/ui/index.html.bak", "/nothing"} {
		want(t, e.do("GET", path, "", nil), 404, "not_found")
	}
}
