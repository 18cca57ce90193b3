package node

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// checkFastUpdate fails t if the fast decoder accepts data and
// encoding/json decodes it differently (or refuses it).
func checkFastUpdate(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := fastUpdateBody(data)
	if !ok {
		return false
	}
	var slow updateBody
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast path decoded %+v, encoding/json %+v", data, dumpBody(fast), dumpBody(slow))
	}
	return true
}

func checkFastBatch(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := fastBatchBody(data)
	if !ok {
		return false
	}
	var slow batchBody
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast path decoded %d updates, encoding/json %d, or they differ", data, len(fast.Updates), len(slow.Updates))
	}
	return true
}

func dumpBody(b updateBody) string {
	out, _ := json.Marshal(b)
	return string(out)
}

// TestFastDecode: the plain bodies the SDKs send take the fast path and
// decode as encoding/json decodes them; everything unusual is left to
// encoding/json (whose answers, errors included, are the contract).
func TestFastDecode(t *testing.T) {
	fast := []string{
		`{"position_ms":1000,"duration_ms":3600000,"device":"tv","session":"0123456789abcdef"}`,
		` { "position_ms" : 0 , "duration_ms":1,"device":"tv","session":"s","state":"paused",` +
			`"epoch":"112233445566778899","seq":112233445566778899,"title":"Ep. 1 — «Pilot» <b>&","series_id":"sr","next_video":"v2"}` + "\n",
		`{"video":"v","position_ms":-0,"duration_ms":-5,"device":"d","session":"s","epoch":null,"seq":"00042","title":null}`,
		`{"position_ms":1,"position_ms":2,"device":"a","device":null,"duration_ms":9,"session":"x"}`,
		`{}`,
		"{\"video\":\"\x7f ok\"}",
	}
	for _, s := range fast {
		if !checkFastUpdate(t, []byte(s)) {
			t.Errorf("fast path refused the plain body %s", s)
		}
	}
	slow := []string{
		``, ` `, `null`, `[]`, `{`, `{"position_ms":1}x`, `{"position_ms":1,}`,
		`{"Position_MS":1}`, `{"unknown":1}`, `{"position_ms":1.0}`, `{"position_ms":1e3}`,
		`{"position_ms":01}`, `{"position_ms":"1"}`, `{"position_ms":1234567890123456789}`,
		`{"position_ms":- 1}`, `{"device":"a\"b"}`, `{"device":"\u0041"}`, "{\"device\":\"a\tb\"}",
		"{\"title\":\"\xff\"}", `{"epoch":"-1"}`, `{"epoch":""}`, `{"epoch":"99999999999999999999"}`,
		`{"epoch":1.5}`, `{"seq":true}`, `{"device":nul}`, `{"device":1}`,
	}
	for _, s := range slow {
		if checkFastUpdate(t, []byte(s)) {
			t.Errorf("fast path accepted %q, which encoding/json must decide", s)
		}
	}
	batch := `{"updates":[` + fast[0] + `,` + fast[1] + `, {"video":"v9"} ]}`
	if !checkFastBatch(t, []byte(batch)) {
		t.Errorf("fast path refused the plain batch %s", batch)
	}
	if !checkFastBatch(t, []byte(`{"updates":[]}`)) {
		t.Error("fast path refused an empty batch")
	}
	for _, s := range []string{`{"updates":null}`, `{"updates":[{}],"x":1}`, `{"updates":[{},]}`, `{"Updates":[]}`,
		`{"updates":[` + strings.Repeat(`{},`, MaxBatchUpdates) + `{}]}`} {
		if checkFastBatch(t, []byte(s)) {
			t.Errorf("fast path accepted the batch %.60q", s)
		}
	}
}

// TestDecodeBatchNamesTheItem: an item's error names it, also now that the
// prefix is formatted only on an error.
func TestDecodeBatchNamesTheItem(t *testing.T) {
	_, err := decodeBatch([]byte(`{"updates":[{"video":"v","position_ms":1,"duration_ms":9,"device":"d","session":"s"},{"video":"v"}]}`))
	if err == nil || !strings.Contains(err.Error(), "updates[1].position_ms is required") {
		t.Fatalf("got %v, want updates[1].position_ms is required", err)
	}
}

func FuzzFastDecode(f *testing.F) {
	f.Add([]byte(`{"position_ms":1000,"duration_ms":3600000,"device":"tv","session":"0123456789abcdef","state":"paused","epoch":"1","seq":2}`))
	f.Add([]byte(`{"updates":[{"video":"v","position_ms":1,"duration_ms":2,"device":"d","session":"s","title":"é"}]}`))
	f.Add([]byte(`{"title":"\u2028","epoch":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastUpdate(t, data)
		checkFastBatch(t, data)
	})
}

// fastEncodeCases are cursors with every kind of string json.Marshal
// escapes.
func fastEncodeCases(rng *rand.Rand) []crdt.Cursor {
	odd := []string{"", "plain", `q"uote\back`, "<b>&amp;</b>", "tab\tnl\ncr\rbs\bff\f\x00\x1f\x7f", "é—«»", "\u2028\u2029", "bad\xffutf8\xc3", "emoji 🎬"}
	var out []crdt.Cursor
	for i := range 200 {
		s := func() string { return odd[rng.IntN(len(odd))] }
		c := crdt.Cursor{
			Video: s(), PositionMs: rng.Int64N(1e7) - 10, DurationMs: rng.Int64N(1e7),
			State: crdt.State(rng.IntN(5)), Device: s(),
			Version:    crdt.Version{Epoch: crdt.HLC(rng.Uint64()), Seq: crdt.HLC(rng.Uint64()), Session: s()},
			UpdatedHLC: crdt.NewHLC(rng.Int64N(4e12), uint16(i)),
			Title:      crdt.Meta{Value: s()}, SeriesID: crdt.Meta{Value: s()}, NextVideo: crdt.Meta{Value: s()},
		}
		out = append(out, c)
	}
	return out
}

// TestFastEncodeMatchesMarshal: the hand-written answers are byte for byte
// what json.Marshal wrote for the api types.
func TestFastEncodeMatchesMarshal(t *testing.T) {
	pol := crdt.Policy{}
	pol.EnsureDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range fastEncodeCases(rng) {
		for _, found := range []bool{true, false} {
			var cp *crdt.Cursor
			if found {
				cp = &c
			}
			want, _ := json.Marshal(api.WriteResult{Applied: found, Cursor: cursorPtr(c, found, pol)})
			if got := appendWriteResult(nil, found, cp, pol); string(got) != string(want) {
				t.Fatalf("write result:\n got %s\nwant %s", got, want)
			}
			msg := c.Device + " stale"
			want, _ = json.Marshal(api.StaleBody{Error: api.ErrorDetail{Code: api.CodeStaleWrite, Message: msg}, Cursor: cursorPtr(c, found, pol)})
			if got := appendStaleBody(nil, msg, cp, pol); string(got) != string(want) {
				t.Fatalf("stale body:\n got %s\nwant %s", got, want)
			}
		}
	}
}

func FuzzFastEncode(f *testing.F) {
	f.Add("<&>\u2028", "\xff\x00", int64(5), uint64(7))
	f.Fuzz(func(t *testing.T, a, b string, pos int64, h uint64) {
		pol := crdt.Policy{}
		pol.EnsureDefaults()
		c := crdt.Cursor{Video: a, Device: b, PositionMs: pos, DurationMs: pos / 2, Version: crdt.Version{Epoch: crdt.HLC(h), Seq: crdt.HLC(h + 1), Session: b + a},
			UpdatedHLC: crdt.HLC(h % (1 << 62)), Title: crdt.Meta{Value: b}}
		want, _ := json.Marshal(toCursorJSON(c, pol))
		if got := appendCursorJSON(nil, &c, pol); string(got) != string(want) {
			t.Fatalf("cursor:\n got %s\nwant %s", got, want)
		}
	})
}
