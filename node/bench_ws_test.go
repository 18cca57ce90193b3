package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/playhead/playhead/api"
)

// BenchmarkWSMsgpack measures the playhead.v1.msgpack WebSocket path as
// bench/compare.sh's ws-msgpack case drives it: 4 profiles with 3 connected
// devices each; an op is one device sending 50 updates as one array message
// and reading the array of their answers, while every device of the profile
// is pushed the changes (echo: its own too; omit: with
// omit_device=ITS-ID). ns/op and allocs/op include the client's work, the
// same in both variants and before and after a server change.
//
//	go test ./node -run '^$' -bench WSMsgpack -benchtime 400x
func BenchmarkWSMsgpack(b *testing.B) {
	for _, omit := range []bool{false, true} {
		name := "echo"
		if omit {
			name = "omit"
		}
		b.Run(name, func(b *testing.B) { benchWSMsgpack(b, omit) })
	}
}

func benchWSMsgpack(b *testing.B, omit bool) {
	n, err := New(Config{NodeID: "bench", DataDir: b.TempDir(), AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	defer n.Shutdown(context.Background())
	tok, _ := api.IssueToken(testSecret, "bench", nil, false, time.Hour, time.Now())
	const profiles, devices, batch = 4, 3, 50
	type dev struct {
		c    *websocket.Conn
		p, d int
	}
	var devs []*dev
	ctx := context.Background()
	for p := range profiles {
		for d := range devices {
			u := "ws" + strings.TrimPrefix(srv.URL, "http") + fmt.Sprintf("/v1/profiles/p%d/events", p)
			if omit {
				u += fmt.Sprintf("?omit_device=d%d-%d", p, d)
			}
			c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
				HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: []string{wsSubprotocolMsgpack}})
			if err != nil {
				b.Fatal(err)
			}
			c.SetReadLimit(1 << 20)
			defer c.CloseNow()
			devs = append(devs, &dev{c: c, p: p, d: d})
		}
	}
	type update struct {
		Type       string `msgpack:"type"`
		ID         string `msgpack:"id"`
		Video      string `msgpack:"video"`
		PositionMs int    `msgpack:"position_ms"`
		DurationMs int    `msgpack:"duration_ms"`
		State      string `msgpack:"state"`
		Device     string `msgpack:"device"`
		Session    string `msgpack:"session"`
		Epoch      uint64 `msgpack:"epoch"`
		Seq        uint64 `msgpack:"seq"`
	}
	var clock atomic.Uint64
	clock.Store(uint64(time.Now().UnixMilli()) << 16)
	var ops atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ups := make([]update, batch)
			for i := range ups {
				ups[i] = update{Type: "update", ID: strconv.Itoa(i), DurationMs: 2_700_000, State: "playing",
					Device: fmt.Sprintf("d%d-%d", d.p, d.d)}
			}
			for k := 0; ops.Add(1) <= int64(b.N); k++ {
				for i := range ups {
					v := clock.Add(1)
					video := (k*batch + i) % 100
					ups[i].Video, ups[i].Session = videoNames[video], sessionNames[d.d][video]
					ups[i].PositionMs, ups[i].Epoch, ups[i].Seq = 1000*i, v, v
				}
				msg, _ := msgpack.Marshal(ups)
				if err := d.c.Write(ctx, websocket.MessageBinary, msg); err != nil {
					b.Error(err)
					return
				}
				for {
					_, m, err := d.c.Read(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					// Answers are an array whose first element is an ack;
					// pushes are a map or an array of cursor/takeover events.
					if len(m) > 10 && (m[0]&0xf0 == 0x90 || m[0] == 0xdc) && strings.Contains(string(m[:24]), "ack") {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

var videoNames, sessionNames = func() ([]string, [3][]string) {
	var v []string
	var s [3][]string
	for i := range 100 {
		v = append(v, "v-"+strconv.Itoa(i))
		for d := range 3 {
			s[d] = append(s[d], "s"+strconv.Itoa(d)+"-"+strconv.Itoa(i))
		}
	}
	return v, s
}()
