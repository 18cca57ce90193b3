package node

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/playhead/playhead/client"
)

// TestClockSkewRefusalIsRecognisedBySDK: the node's refusal of a write
// stamped too far ahead is what the SDKs recognise (client.APIError's
// ClockSkew; client/js matches the same word), so their clock-skew recovery
// runs against a real node, not only against a fake one with old wording.
func TestClockSkewRefusalIsRecognisedBySDK(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ahead := uint64(time.Now().Add(time.Hour).UnixMilli()) << 16
	r := e.do("PUT", "/v1/profiles/me/positions/film", tok, map[string]any{
		"position_ms": 1000, "duration_ms": 60000, "device": "tv", "session": "s1",
		"epoch": json.Number(itoa(ahead)), "seq": json.Number(itoa(ahead)),
	})
	want(t, r, http.StatusBadRequest, "bad_request")
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r.decode(t, &b)
	ae := &client.APIError{Status: r.status, Code: b.Error.Code, Message: b.Error.Message}
	if !ae.ClockSkew() {
		t.Fatalf("the SDK does not recognise the node's clock-skew refusal: %q", b.Error.Message)
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
