package baseline

import (
	"testing"
	"time"

	"github.com/playhead/playhead/api"
)

// The baseline verifies playhead's device tokens itself (no Redis needed).
func TestAuthenticator(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef-auth")
	now := time.Now()
	a := newAuthenticator(secret)
	good, _ := api.IssueToken(secret, "acme", []string{"kids"}, false, time.Hour, now)
	c, err := a.verify(good, now)
	if err != nil || c.Account != "acme" || !c.allows("kids") || c.allows("adults") {
		t.Fatalf("good token: %+v %v", c, err)
	}
	if _, err := a.verify(good, now); err != nil { // cached
		t.Fatal(err)
	}
	if _, err := a.verify(good, now.Add(2*time.Hour)); err == nil {
		t.Fatal("expired token accepted (from the cache)")
	}
	other, _ := api.IssueToken([]byte("another-secret-another-secret-0123456789"), "acme", nil, false, time.Hour, now)
	for _, bad := range []string{"", "a.b", "a.b.c", other, good[:len(good)-2]} {
		if _, err := a.verify(bad, now); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
