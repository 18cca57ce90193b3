package web_test

// Browser tests: the demo page and the JavaScript SDK in a real headless
// Chromium (Debian's chromium package; .ci/run installs it), driven by
// chromedp. Each test saves a screenshot in its artifact directory
// (go test -artifacts ./web/ keeps them under -outputdir).

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"

	"github.com/playhead/playhead/api"
	js "github.com/playhead/playhead/client/js"
	"github.com/playhead/playhead/node"
	"github.com/playhead/playhead/storage"
)

var secret = []byte("0123456789abcdef0123456789abcdef-web-tests")

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PLAYHEAD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser tests skipped: no chromium on PATH (Debian: apt-get install -y chromium; or set PLAYHEAD_CHROMIUM)")
	return ""
}

// startNode runs a node over an in-memory store behind a real HTTP server.
func startNode(t *testing.T, origins ...string) (*httptest.Server, string) {
	t.Helper()
	return startNodeWrapped(t, nil, origins...)
}

// startNodeWrapped is startNode with the node's handler wrapped (nil: not).
func startNodeWrapped(t *testing.T, wrap func(http.Handler) http.Handler, origins ...string) (*httptest.Server, string) {
	t.Helper()
	n, err := node.NewWithStore(node.Config{NodeID: "web-1", AuthSecret: secret, Logger: slog.New(slog.DiscardHandler),
		DeviceRate: -1, AccountRate: -1, CORSOrigins: origins}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	h := n.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	tok, err := api.IssueToken(secret, "acct-web", nil, false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return srv, tok
}

// browser starts a headless Chromium of its own (fresh profile: fresh
// IndexedDB) and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Skipf("browser tests skipped: %s does not start: %v", path, err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		screenshot(t, ctx, "failure")
		t.Fatal(err)
	}
}

// screenshot saves the page as PNG in the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		screenshot(t, ctx, "failure")
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// click clicks (with the mouse) the element a CSS selector names.
func click(css string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(css, chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		res, err := cdp.Call(ctx, t, dom.QuerySelectorAll, dom.QuerySelectorAllParams{NodeID: n.NodeID, Selector: css})
		return res.NodeIDs, err
	}))
}

// waitFor polls a JavaScript condition until it holds or d passes; it
// returns how long it took.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, what, cond string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")")); err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			log, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Object.values(window.playhead||{}).map(p => p.device+': '+p.root.querySelector('[data-role=log]').innerText).join('\n')`))
			screenshot(t, ctx, "failure")
			t.Fatalf("%s: not within %v (%s)\npage logs:\n%s", what, d, cond, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sel names an element of a pane.
func sel(pane, role string) string { return fmt.Sprintf(`[data-pane=%s] [data-role=%s]`, pane, role) }

// openPage opens the demo page with both panes and waits until each has
// its WebSocket push stream.
func openPage(t *testing.T, ctx context.Context, base, tok string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(base+"/#token="+tok+"&profile=me"))
	waitFor(t, ctx, 10*time.Second, "both panes connected",
		`window.playhead && ['tv','phone'].every(d => window.playhead[d] && window.playhead[d].sub && window.playhead[d].sub.transport === 'websocket')`)
}

// seek moves a pane's timeline to ms, as a drag of the slider ends.
func seek(t *testing.T, ctx context.Context, pane string, ms int) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const r = document.querySelector(%q); r.value = %d; r.dispatchEvent(new Event('change')); })()`, sel(pane, "position"), ms)))
}

// Play on the TV, pause: the phone shows the same position within 1 s.
func TestBrowserPhoneFollowsTV(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	openPage(t, ctx, srv.URL, tok)
	seek(t, ctx, "tv", 300_000)
	run(t, ctx, click(sel("tv", "play")))
	time.Sleep(1500 * time.Millisecond)
	paused := time.Now()
	run(t, ctx, click(sel("tv", "pause")))
	tvPos := eval[float64](t, ctx, `Math.round(window.playhead.tv.position)`)
	if tvPos < 301_000 {
		t.Fatalf("the TV played to %v ms in 1.5 s", tvPos)
	}
	waitFor(t, ctx, time.Second-time.Since(paused), "the phone shows the TV's position",
		fmt.Sprintf(`Math.round(window.playhead.phone.position) === %d && document.querySelector(%q).textContent === document.querySelector(%q).textContent`,
			int64(tvPos), sel("phone", "clock"), sel("tv", "clock")))
	t.Logf("the phone showed the TV's pause at %v ms %v after the click", tvPos, time.Since(paused))
	// The phone resumes there too: its continue-watching row has it.
	waitFor(t, ctx, 2*time.Second, "the phone's continue-watching row",
		fmt.Sprintf(`document.querySelector(%q) !== null`, sel("phone", "cw")+` li[data-video="ep-1"] progress`))
	screenshot(t, ctx, "phone-follows-tv")
}

// The phone takes over: the TV pane says so and stops.
func TestBrowserTakeover(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	openPage(t, ctx, srv.URL, tok)
	run(t, ctx, click(sel("tv", "play")))
	waitFor(t, ctx, 2*time.Second, "the phone hears the TV", `window.playhead.phone.events.some(e => e.type === 'cursor' && e.cursor.device === 'tv')`)
	run(t, ctx, click(sel("phone", "play")))
	waitFor(t, ctx, 2*time.Second, "the TV shows the takeover",
		fmt.Sprintf(`!document.querySelector(%q).hidden && document.querySelector(%q).textContent.includes('Taken over by phone') && !window.playhead.tv.playing`,
			sel("tv", "banner"), sel("tv", "banner")))
	ev := eval[map[string]any](t, ctx, `window.playhead.tv.events.find(e => e.type === 'takeover')`)
	if by, _ := ev["by"].(map[string]any); by["device"] != "phone" || ev["video"] != "ep-1" {
		t.Fatalf("takeover event %v", ev)
	}
	// The TV's superseded tracker sends nothing more.
	sent := eval[bool](t, ctx, `window.playhead.tv.tracker.observe(window.playhead.tv.client.nowMs() + 60000, 600000) !== null`)
	if sent {
		t.Fatal("a superseded tracker still reports")
	}
	screenshot(t, ctx, "takeover")
}

// The TV goes offline, plays two videos, comes back: the queued updates
// reach the node in their true order and the phone hears them so.
func TestBrowserOfflineQueueReconciles(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	openPage(t, ctx, srv.URL, tok)
	run(t, ctx, click(sel("tv", "offline")))
	waitFor(t, ctx, time.Second, "the TV is offline", `window.playhead.tv.client.offline && window.playhead.tv.sub.transport === 'offline'`)
	play := func(video string) {
		run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change')); })()`, sel("tv", "video"), video)))
		waitFor(t, ctx, time.Second, "video loaded", fmt.Sprintf(`window.playhead.tv.video.id === %q`, video))
		seek(t, ctx, "tv", 300_000)
		run(t, ctx, click(sel("tv", "play")))
		time.Sleep(700 * time.Millisecond)
		run(t, ctx, click(sel("tv", "pause")))
	}
	play("ep-1")
	pos1 := eval[float64](t, ctx, `Math.round(window.playhead.tv.position)`)
	play("ep-2")
	pos2 := eval[float64](t, ctx, `Math.round(window.playhead.tv.position)`)
	waitFor(t, ctx, time.Second, "two updates queued", fmt.Sprintf(`document.querySelector(%q).textContent === '2 queued'`, sel("tv", "queued")))
	screenshot(t, ctx, "offline-queued")
	heard := eval[int](t, ctx, `window.playhead.phone.events.length`)
	if heard != 0 {
		t.Fatalf("the phone heard %d events from an offline TV", heard)
	}
	run(t, ctx, click(sel("tv", "offline")))
	waitFor(t, ctx, 3*time.Second, "the queue is sent", fmt.Sprintf(`document.querySelector(%q).textContent === '0 queued'`, sel("tv", "queued")))
	waitFor(t, ctx, 2*time.Second, "the phone hears both", `window.playhead.phone.events.filter(e => e.type === 'cursor').length >= 2`)
	order := eval[[]string](t, ctx, `window.playhead.phone.events.filter(e => e.type === 'cursor').map(e => e.cursor.video + '@' + e.cursor.position_ms)`)
	if len(order) != 2 || order[0] != fmt.Sprintf("ep-1@%d", int64(pos1)) || order[1] != fmt.Sprintf("ep-2@%d", int64(pos2)) {
		t.Fatalf("the phone heard %v; want ep-1@%v then ep-2@%v", order, pos1, pos2)
	}
	// Continue watching, newest first: ep-2, then ep-1.
	waitFor(t, ctx, 2*time.Second, "the phone's row in order",
		fmt.Sprintf(`[...document.querySelectorAll(%q)].map(li => li.dataset.video).join(',') === 'ep-2,ep-1'`, sel("phone", "cw")+" li"))
	screenshot(t, ctx, "offline-reconciled")
}

// Delete all history on the phone: both panes empty.
func TestBrowserDeleteAllEmptiesBothPanes(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	openPage(t, ctx, srv.URL, tok)
	seek(t, ctx, "tv", 300_000)
	run(t, ctx, click(sel("tv", "play")))
	time.Sleep(700 * time.Millisecond)
	run(t, ctx, click(sel("tv", "pause")))
	filled := `document.querySelectorAll(%q).length > 0 && document.querySelectorAll(%q).length > 0`
	for _, p := range []string{"tv", "phone"} {
		waitFor(t, ctx, 3*time.Second, p+" shows the row and the history", fmt.Sprintf(filled, sel(p, "cw")+" li", sel(p, "history")+" li"))
	}
	screenshot(t, ctx, "before-delete-all")
	run(t, ctx, click(sel("phone", "delete-all")))
	empty := `document.querySelectorAll(%q).length === 0 && document.querySelectorAll(%q).length === 0`
	for _, p := range []string{"phone", "tv"} {
		waitFor(t, ctx, 2*time.Second, p+" is empty", fmt.Sprintf(empty, sel(p, "cw")+" li", sel(p, "history")+" li"))
	}
	cleared := eval[bool](t, ctx, `window.playhead.tv.events.some(e => e.type === 'cleared' && e.video == null)`)
	if !cleared {
		t.Fatal("the TV heard no cleared event")
	}
	screenshot(t, ctx, "after-delete-all")
}

// A page served from another origin uses the API through CORS: the node
// that allows its origin answers; one that does not is refused by the
// browser.
func TestBrowserCrossOriginPage(t *testing.T) {
	page := http.NewServeMux()
	page.Handle("GET /sdk/", http.StripPrefix("/sdk/", http.FileServerFS(js.FS)))
	var html string
	page.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, html)
	})
	other := httptest.NewServer(page)
	t.Cleanup(func() { other.CloseClientConnections(); other.Close() }) // after the browser's (cleanups run last-first)
	allowed, tok := startNode(t, other.URL)
	refused, _ := startNode(t) // the serve default: no origin
	html = `<!doctype html><title>other origin</title><pre id=out>running</pre><script type=module>
import { Client } from '/sdk/playhead.js';
const heard = (c, transport) => new Promise((resolve) => {
  const s = c.subscribe('me', (ev) => { if (ev.type === 'cursor') { s.close(); resolve(transport); } }, {
    onStatus: (t) => { if (t === transport) ready[transport](); } });
  setTimeout(() => { s.close(); resolve(transport + ' heard nothing'); }, 4000);
});
const ready = {};
async function tryNode(base, device) {
  const c = await Client.open({ baseURL: base, token: '` + tok + `', device, queueName: 'q-' + device });
  // Push across origins too: an SSE stream and a WebSocket, each must hear the write.
  const pushes = [];
  for (const tr of base === '` + allowed.URL + `' ? ['sse', 'websocket'] : []) {
    const sc = await Client.open({ baseURL: base, token: '` + tok + `', device: device + '-' + tr, queueName: 'q-' + device + tr, transports: [tr] });
    const up = new Promise((r) => { ready[tr] = r; setTimeout(r, 2000); });
    pushes.push(heard(sc, tr));
    await up;
  }
  const t = c.tracker({ session: 's-' + device, video: 'ep-9' });
  const r = await c.report('me', t.start(c.nowMs(), 60000, 600000));
  const got = (await Promise.all(pushes)).join('+');
  if (r.outcome !== 'applied') return r.outcome;
  if (pushes.length && got !== 'sse+websocket') return 'push: ' + got;
  const cur = await c.resume('me', 'ep-9'); // sends Playhead-Seen: a preflighted header
  const row = await c.continueWatching('me');
  await c.deleteVideo('me', 'ep-9');
  return r.outcome + ' ' + cur.position_ms + ' ' + row.length + ' ' + (await c.resume('me', 'ep-9')) + ' hlc:' + (c.serverHLC > 0n);
}
const out = document.getElementById('out');
out.textContent = (await tryNode('` + allowed.URL + `', 'a')) + ' | ' + (await tryNode('` + refused.URL + `', 'b'));
</script>`
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(other.URL+"/"))
	waitFor(t, ctx, 20*time.Second, "the page's calls end", `document.getElementById('out').textContent !== 'running'`)
	out := eval[string](t, ctx, `document.getElementById('out').textContent`)
	// Allowed: an SSE stream and a WebSocket heard the write, the write
	// applied, the read (with Playhead-Seen) and the row came back, the
	// delete went through, and Playhead-HLC was readable.
	// Refused: the browser blocked the call, so the SDK queued the update.
	if want := "applied 60000 1 null hlc:true | queued"; out != want {
		t.Fatalf("cross-origin page: %q, want %q", out, want)
	}
	if !strings.Contains(allowed.URL, "127.0.0.1") {
		t.Fatalf("node URL %s", allowed.URL)
	}
	screenshot(t, ctx, "cross-origin")
}

// One pane opened alone, on a phone-sized screen: only that pane, nothing
// wider than the screen, every control labelled and reachable by Tab.
func TestBrowserPhonePaneAlone(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	run(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/?pane=phone#token="+tok+"&profile=me"))
	waitFor(t, ctx, 10*time.Second, "the phone pane connected", `window.playhead && window.playhead.phone && window.playhead.phone.sub && window.playhead.phone.sub.transport === 'websocket'`)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-pane]').length`); n != 1 {
		t.Fatalf("%d panes on ?pane=phone", n)
	}
	if over := eval[int](t, ctx, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		screenshot(t, ctx, "failure")
		t.Fatalf("the page is %d px wider than a 390 px screen", over)
	}
	// Every input, select and button has an accessible name (a label,
	// aria-label or text).
	unlabelled := eval[[]string](t, ctx, `[...document.querySelectorAll('input, select, button')].filter(e =>
		!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)`)
	if len(unlabelled) > 0 {
		t.Fatalf("controls without a name: %v", unlabelled)
	}
	// The keyboard reaches Play: Tab until it has focus, Enter plays.
	for i := 0; i < 10 && !eval[bool](t, ctx, `document.activeElement && document.activeElement.dataset.role === 'play'`); i++ {
		run(t, ctx, chromedp.KeyEvent("\t"))
	}
	run(t, ctx, chromedp.KeyEvent("\r"))
	waitFor(t, ctx, time.Second, "Enter on Play plays", `window.playhead.phone.playing`)
	screenshot(t, ctx, "phone-pane-alone")
}

// The history view: search, date filter, delete one entry, delete a video,
// pause history — each through the page's controls.
func TestBrowserHistoryView(t *testing.T) {
	srv, tok := startNode(t)
	ctx := browser(t)
	openPage(t, ctx, srv.URL, tok)
	playTV := func(video string) {
		run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change')); })()`, sel("tv", "video"), video)))
		waitFor(t, ctx, time.Second, "video loaded", fmt.Sprintf(`window.playhead.tv.video.id === %q`, video))
		seek(t, ctx, "tv", 300_000)
		run(t, ctx, click(sel("tv", "play")))
		time.Sleep(300 * time.Millisecond)
		run(t, ctx, click(sel("tv", "pause")))
	}
	playTV("ep-1")
	playTV("ep-2")
	playTV("film")
	playTV("ep-1") // a second entry of ep-1
	rows := func(p string) string {
		return fmt.Sprintf(`[...document.querySelectorAll(%q)].map(li => li.dataset.video).join(',')`, sel(p, "history")+" li")
	}
	waitFor(t, ctx, 3*time.Second, "the phone's history", rows("phone")+` === 'ep-1,film,ep-2,ep-1'`)

	// Search by title.
	run(t, ctx, chromedp.SendKeys(sel("phone", "q"), "long film", byCSS(sel("phone", "q"))), click(sel("phone", "search")+" button"))
	waitFor(t, ctx, 2*time.Second, "search", rows("phone")+` === 'film'`)
	run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel("phone", "q"))))
	// A date range that ends yesterday holds nothing; one that holds today, everything.
	setDate := func(role, v string) {
		run(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, sel("phone", role), v)))
	}
	setDate("to", time.Now().AddDate(0, 0, -1).Format("2006-01-02"))
	run(t, ctx, click(sel("phone", "search")+" button"))
	waitFor(t, ctx, 2*time.Second, "date filter: nothing before today", rows("phone")+` === ''`)
	setDate("from", time.Now().Format("2006-01-02"))
	setDate("to", time.Now().AddDate(0, 0, 1).Format("2006-01-02"))
	run(t, ctx, click(sel("phone", "search")+" button"))
	waitFor(t, ctx, 2*time.Second, "date filter: today", rows("phone")+` === 'ep-1,film,ep-2,ep-1'`)

	// Delete one entry (the older ep-1 one): the other ep-1 entry and its cursor stay.
	run(t, ctx, click(sel("phone", "history")+` li:last-child button:first-of-type`))
	waitFor(t, ctx, 2*time.Second, "one entry deleted", rows("phone")+` === 'ep-1,film,ep-2'`)
	// Delete a video: its entries and its place in continue watching, on both panes.
	run(t, ctx, click(sel("phone", "history")+` li[data-video="film"] button:last-of-type`))
	for _, p := range []string{"phone", "tv"} {
		waitFor(t, ctx, 2*time.Second, p+": video deleted", rows(p)+` === 'ep-1,ep-2' && !document.querySelector(`+fmt.Sprintf("%q", sel(p, "cw")+` li[data-video="film"]`)+`)`)
	}
	// Pause history: the next play still saves its position but adds no entry.
	run(t, ctx, click(sel("phone", "paused")))
	waitFor(t, ctx, 2*time.Second, "history paused", `document.querySelector(`+fmt.Sprintf("%q", sel("phone", "log"))+`).textContent.includes('history paused')`)
	playTV("ep-3")
	waitFor(t, ctx, 2*time.Second, "ep-3 in the row", fmt.Sprintf(`!!document.querySelector(%q)`, sel("phone", "cw")+` li[data-video="ep-3"]`))
	if got := eval[string](t, ctx, rows("phone")); got != "ep-1,ep-2" {
		t.Fatalf("a paused history got an entry: %s", got)
	}
	screenshot(t, ctx, "history-view")
}

// byCSS makes a query option that finds elements by CSS selector.
func byCSS(css string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		res, err := cdp.Call(ctx, t, dom.QuerySelectorAll, dom.QuerySelectorAllParams{NodeID: n.NodeID, Selector: css})
		return res.NodeIDs, err
	})
}
