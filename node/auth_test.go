package node

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/playhead/playhead/api"
)

func TestIsolationBetweenAccountsAndProfiles(t *testing.T) {
	e := newEnv(t)
	a := e.token("acct-A")
	b := e.token("acct-B")
	wsA := e.wsDial(a, "me", "")
	wsB := e.wsDial(b, "me", "")
	sseB := e.sseOpen(b, "me", "")
	time.Sleep(20 * time.Millisecond)
	e.mustPut(a, "me", "ep-1", upd(10*minute, hour, "tv", "s1", "title", "A's show"))

	if ev := wsNext(t, wsA, deliveryDeadline); ev.Cursor == nil || ev.Cursor.Video != "ep-1" {
		t.Fatalf("A's own stream: %+v", ev)
	}
	// B: same profile and video names, nothing visible anywhere.
	want(t, e.do("GET", "/v1/profiles/me/positions/ep-1", b, nil), 404, "not_found")
	if items := e.continueOf(b, "me", ""); len(items) != 0 {
		t.Fatalf("B sees A's continue watching: %+v", items)
	}
	if h := e.historyOf(b, "me", ""); len(h.Entries) != 0 {
		t.Fatalf("B sees A's history: %+v", h)
	}
	r := e.do("GET", "/v1/profiles/me/changes?wait=0", b, nil)
	if strings.Contains(string(r.body), "ep-1") {
		t.Fatalf("B's changes carry A's data: %s", r.body)
	}
	if ev, err := tryWSNext(wsB, 300*time.Millisecond); err == nil {
		t.Fatalf("B's stream got A's event: %+v", ev)
	}
	select {
	case ev := <-sseB.events:
		t.Fatalf("B's SSE stream got A's event: %s", ev.data)
	case <-time.After(50 * time.Millisecond):
	}
	// B deleting its history does not touch A's.
	want(t, e.do("DELETE", "/v1/profiles/me/history", b, nil), 204, "")
	if _, ok := e.get(a, "me", "ep-1"); !ok {
		t.Fatal("B's delete removed A's cursor")
	}

	// A token restricted to "kids": 403 on "me", with no data.
	kids := e.token("acct-A", "kids")
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/profiles/me/positions/ep-1"},
		{"PUT", "/v1/profiles/me/positions/ep-1"},
		{"POST", "/v1/profiles/me/positions"},
		{"GET", "/v1/profiles/me/continue-watching"},
		{"GET", "/v1/profiles/me/history"},
		{"DELETE", "/v1/profiles/me/history"},
		{"GET", "/v1/profiles/me/settings"},
		{"GET", "/v1/profiles/me/changes?wait=0"},
		{"GET", "/v1/profiles/me/events"},
	} {
		r := e.do(req.method, req.path, kids, upd(1, hour, "d", "s"))
		want(t, r, 403, "forbidden")
		if strings.Contains(string(r.body), "ep-1") || strings.Contains(string(r.body), "position") || strings.Contains(string(r.body), "A's") {
			t.Fatalf("403 body carries data: %s", r.body)
		}
	}
	if c, _ := e.get(a, "me", "ep-1"); c.PositionMs != 10*minute {
		t.Fatal("a forbidden write changed the cursor")
	}
	e.mustPut(kids, "kids", "cartoon", upd(5*minute, hour, "tablet", "s9"))
	if _, ok := e.get(a, "kids", "cartoon"); !ok {
		t.Fatal("the account's unrestricted token does not see its kids profile")
	}
	// An empty profiles claim allows nothing.
	none := signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"acct": "acct-A", "profiles": []string{}, "exp": e.clock.Now().Add(time.Hour).Unix()})
	want(t, e.do("GET", "/v1/profiles/kids/positions/cartoon", none, nil), 403, "forbidden")
}

// tryWSNext reads one event within d. On timeout the library closes the
// connection: use it last on a connection.
func tryWSNext(c *websocket.Conn, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.Read(ctx)
	return string(data), err
}

func signClaims(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokensAre401(t *testing.T) {
	e := newEnv(t)
	e.mustPut(e.token("acct-1"), "me", "v", upd(10*minute, hour, "tv", "s1"))
	now := e.clock.Now()
	exp := now.Add(time.Hour).Unix()
	good := jwt.MapClaims{"acct": "acct-1", "exp": exp}
	expired, err := api.IssueToken(testSecret, "acct-1", nil, false, time.Hour, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"missing":      "",
		"garbage":      "not-a-jwt",
		"expired":      expired,
		"alg none":     signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS512":        signClaims(t, jwt.SigningMethodHS512, testSecret, good),
		"RS256":        signClaims(t, jwt.SigningMethodRS256, rsaKey, good),
		"wrong secret": signClaims(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), good),
		"no exp":       signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"acct": "acct-1"}),
		"no acct":      signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"exp": exp}),
		"bad acct":     signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"acct": "a/b", "exp": exp}),
		"acct number":  signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"acct": 7, "exp": exp}),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.do("GET", "/v1/profiles/me/positions/v", tok, nil)
			want(t, r, 401, "unauthorized")
			if strings.Contains(string(r.body), "position") {
				t.Fatalf("401 body carries data: %s", r.body)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}
	r := e.do("GET", "/v1/profiles/me/positions/v", "", nil, "Authorization", "Basic YTpi")
	want(t, r, 401, "unauthorized")
	// The good claims, correctly signed, work.
	want(t, e.do("GET", "/v1/profiles/me/positions/v", signClaims(t, jwt.SigningMethodHS256, testSecret, good), nil), 200, "")
}

func TestTokenCacheHonoursExpiry(t *testing.T) {
	e := newEnv(t)
	tok, err := api.IssueToken(testSecret, "acct-1", nil, false, time.Hour, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		want(t, e.do("GET", "/v1/profiles/me/settings", tok, nil), 200, "")
	}
	m := string(e.do("GET", "/metrics", "", nil).body)
	if !strings.Contains(m, `playhead_token_cache_total{result="hit"} 2`) || !strings.Contains(m, `playhead_token_cache_total{result="miss"} 1`) {
		t.Fatalf("token cache metrics:\n%s", grepLines(m, "token_cache"))
	}
	e.clock.Advance(61 * time.Minute)
	want(t, e.do("GET", "/v1/profiles/me/settings", tok, nil), 401, "unauthorized")
}

func TestIssueTokenAndLoadSecret(t *testing.T) {
	if _, err := api.IssueToken([]byte("short"), "a", nil, false, time.Hour, time.Now()); err == nil {
		t.Fatal("IssueToken accepted a short secret")
	}
	if _, err := api.IssueToken(testSecret, "a/b", nil, false, time.Hour, time.Now()); err == nil {
		t.Fatal("IssueToken accepted a bad account")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	os.WriteFile(p, append([]byte(testSecret), '\n'), 0o600)
	s, err := LoadSecret(p)
	if err != nil || string(s) != string(testSecret) {
		t.Fatalf("LoadSecret: %q %v", s, err)
	}
	os.WriteFile(p, []byte("0123456789abcdef0123456789abcde\n"), 0o600) // 31 bytes + newline
	if _, err := LoadSecret(p); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("LoadSecret of a short secret: %v", err)
	}
	if _, err := LoadSecret(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("LoadSecret of a missing file")
	}
	// Claims round trip.
	tok, _ := api.IssueToken(testSecret, "acct", []string{"p1", "p2"}, true, time.Hour, time.Now())
	a := newAuthenticator(testSecret, time.Now, 10, func(bool) {})
	p1, err := a.verify(tok)
	if err != nil || p1.account != "acct" || !p1.admin || !p1.allows("p2") || p1.allows("p3") {
		t.Fatalf("verify: %+v %v", p1, err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
