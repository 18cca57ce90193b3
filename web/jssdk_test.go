package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The JavaScript SDK's own tests (client/js/test/sdk_test.js) in headless
// Chromium against a real node: HLC, versions, the IndexedDB queue, the
// tracker, reports with Playhead-Seen reads, offline flush in true order,
// clock-skew recovery, history controls and settings, and push over each
// transport (WebSocket, SSE, long-poll) with takeover and cleared events.
func TestJSSDK(t *testing.T) {
	// The test page is served beside the API, on the node's origin, as the
	// embedded page is.
	page, tok := startNodeWrapped(t, func(api http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /jstest/", http.StripPrefix("/jstest/", http.FileServer(http.Dir("../client/js/test"))))
		mux.Handle("/", api)
		return mux
	})
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(page.URL+"/jstest/index.html#token="+tok))
	waitFor(t, ctx, 45*time.Second, "the JS tests finish", `window.done === true`)
	type result struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	results := eval[[]result](t, ctx, `window.results`)
	if len(results) < 10 {
		t.Fatalf("only %d JS tests ran", len(results))
	}
	for _, r := range results {
		if r.OK {
			t.Logf("ok   %s", r.Name)
		} else {
			t.Errorf("FAIL %s\n%s", r.Name, strings.TrimSpace(r.Error))
		}
	}
	screenshot(t, ctx, "jssdk")
}
