package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from the types")

const goldenPath = "testdata/wire.golden"

// goldenCase is one value whose JSON the golden file pins. full marks the
// case that sets every field of its type, so that every field name (also
// the omitempty ones) is in the file.
type goldenCase struct {
	name string
	v    any
	full bool
}

func goldenCases() []goldenCase {
	s := func(s string) *string { return &s }
	cur := Cursor{Video: "ep-1", PositionMs: 754000, DurationMs: 2580000, ResumeMs: 754000, State: "paused",
		Completed: true, Session: "s-7f3a", Device: "tv-livingroom", Epoch: 1, Seq: 2,
		UpdatedAt: "2026-11-22T18:02:11.512Z", UpdatedHLC: 18446744073709551615,
		Title: "Pilot", SeriesID: "show-1", NextVideo: "ep-2"}
	upd := UpdateBody{Video: "ep-1", PositionMs: 5, DurationMs: 10, Device: "tv", Session: "s1", State: "playing",
		Epoch: 1 << 40, Seq: 1<<40 + 1, Title: "Pilot", SeriesID: "show-1", NextVideo: "ep-2"}
	wr := WriteResult{Applied: true, Cursor: &cur}
	detail := ErrorDetail{Code: CodeStaleWrite, Message: "a larger version is stored"}
	entry := HistoryEntry{ID: "h-1", Video: "ep-1", Title: "Pilot", Session: "s-7f3a", Device: "tv",
		StartedAt: "2026-11-22T18:00:00.000Z", LastAt: "2026-11-22T18:02:11.512Z",
		PositionMs: 754000, DurationMs: 2580000, CompletionPct: 29.2}
	by := TakeoverBy{Device: "phone", Session: "s-new"}
	iat := time.Unix(1795000000, 0)
	return []goldenCase{
		{"Cursor", cur, true},
		{"Cursor/zero", Cursor{}, false},
		{"UpdateBody", upd, true},
		{"UpdateBody/zero", UpdateBody{}, false},
		{"BatchRequest", BatchRequest{Updates: []UpdateBody{upd}}, true},
		{"BatchRequest/empty", BatchRequest{Updates: []UpdateBody{}}, false},
		{"WriteResult", wr, true},
		{"WriteResult/no-cursor", WriteResult{}, false},
		{"StaleBody", StaleBody{Error: detail, Applied: false, Cursor: &cur}, false},
		{"StaleBody/full", StaleBody{Error: detail, Applied: true, Cursor: &cur}, true},
		{"BatchResponse", BatchResponse{Results: []WriteResult{wr, {}}}, true},
		{"Changes", Changes{Cursors: []Cursor{cur}, Cleared: &[]ClearedEvent{{Type: EventCleared, Video: s("ep-1")}}, HLC: 42, Poll: "p-1"}, true},
		{"Changes/plain", Changes{Cursors: []Cursor{cur}, HLC: 42}, false},
		{"Changes/empty", Changes{Cursors: []Cursor{}}, false},
		{"ContinueWatchingResponse", ContinueWatchingResponse{Items: []Cursor{cur}}, true},
		{"HistoryEntry", entry, true},
		{"HistoryEntry/zero", HistoryEntry{}, false},
		{"HistoryPage", HistoryPage{Entries: []HistoryEntry{entry}, NextPage: s("next")}, true},
		{"HistoryPage/last", HistoryPage{Entries: []HistoryEntry{}}, false},
		{"Settings", Settings{HistoryPaused: true}, true},
		{"ErrorBody", ErrorBody{Error: detail}, true},
		{"ErrorDetail", detail, true},
		{"CursorEvent", CursorEvent{Type: EventCursor, Cursor: cur}, true},
		{"TakeoverEvent", TakeoverEvent{Type: EventTakeover, Video: "ep-1", Session: "s-old", By: by}, true},
		{"TakeoverBy", by, true},
		{"ClearedEvent", ClearedEvent{Type: EventCleared, Video: s("ep-1"), Entry: "h-1"}, true},
		{"ClearedEvent/all", ClearedEvent{Type: EventCleared}, false},
		{"HiddenEvent", HiddenEvent{Type: EventHidden, Video: "ep-1"}, true},
		{"Ack", Ack{Type: EventAck, ID: s("m-1"), Applied: true, Cursor: &cur}, true},
		{"Ack/no-id", Ack{Type: EventAck}, false},
		{"ErrorEvent", ErrorEvent{Type: EventError, ID: s("m-1"), Error: detail}, true},
		{"ErrorEvent/no-id", ErrorEvent{Type: EventError, Error: detail}, false},
		{"Event/cursor", Event{Type: EventCursor, Cursor: &cur}, false},
		{"Event/takeover", Event{Type: EventTakeover, Video: "ep-1", Session: "s-old", By: &by}, false},
		{"Event/cleared-video", Event{Type: EventCleared, Video: "ep-1"}, false},
		{"Event/cleared-entry", Event{Type: EventCleared, Video: "ep-1", Entry: "h-1"}, false},
		{"Event/cleared-all", Event{Type: EventCleared}, false},
		// An unknown type keeps every set field (Event's fallback).
		{"Event/other", Event{Type: "other", Cursor: &cur, Video: "ep-1", Session: "s-old", By: &by, Entry: "h-1"}, true},
		{"Claims", Claims{Account: "acme", Profiles: []string{"kids"}, Admin: true,
			RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(iat),
				ExpiresAt: jwt.NewNumericDate(iat.Add(time.Hour))}}, true},
		{"Claims/every-profile", Claims{Account: "acme",
			RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(iat)}}, false},
	}
}

// TestWireGolden: every wire type round-trips through encoding/json, and
// its JSON — field names, omitted and null fields — is exactly the one in
// testdata/wire.golden. Renaming or dropping a field, or changing what is
// omitted, breaks this test: that is a change of the device API. Run with
// -update to rewrite the file, and review its diff.
func TestWireGolden(t *testing.T) {
	var out bytes.Buffer
	out.WriteString("# The device API's JSON (docs/API.md), one case a line: name, then the JSON.\n" +
		"# Written by go test ./api -run TestWireGolden -update; a changed line is a changed contract.\n")
	for _, c := range goldenCases() {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		back := reflect.New(reflect.TypeOf(c.v))
		if err := json.Unmarshal(b, back.Interface()); err != nil {
			t.Fatalf("%s: decoding %s: %v", c.name, b, err)
		}
		if !reflect.DeepEqual(back.Elem().Interface(), c.v) {
			t.Errorf("%s: round trip changed the value:\n got %+v\nwant %+v", c.name, back.Elem().Interface(), c.v)
		}
		if b2, _ := json.Marshal(back.Elem().Interface()); !bytes.Equal(b2, b) {
			t.Errorf("%s: round trip changed the JSON:\n got %s\nwant %s", c.name, b2, b)
		}
		fmt.Fprintf(&out, "%s %s\n", c.name, b)
	}
	if *update {
		if err := os.WriteFile(goldenPath, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := at(gl, i), at(wl, i)
			if g != w {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, g, w)
			}
		}
		t.Error("the wire format differs from " + goldenPath + "; if the change is meant, run with -update and review the diff")
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(no line)"
}

// TestWireGoldenCoversEveryType: each exported struct type of the package
// has a case that sets every one of its fields, so that no wire type or
// field escapes the golden file.
func TestWireGoldenCoversEveryType(t *testing.T) {
	full := map[string]bool{}
	for _, c := range goldenCases() {
		if !c.full {
			continue
		}
		v := reflect.ValueOf(c.v)
		full[v.Type().Name()] = true
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() && v.Field(i).IsZero() {
				t.Errorf("case %s leaves %s zero: it must set every field", c.name, f.Name)
			}
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() || ts.Assign.IsValid() {
				return true
			}
			if _, isStruct := ts.Type.(*ast.StructType); isStruct && !full[ts.Name.Name] {
				missing = append(missing, ts.Name.Name)
			}
			return true
		})
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("wire types without a full golden case: %v", missing)
	}
}
