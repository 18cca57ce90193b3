package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
)

// BenchmarkHTTPPut measures a PUT round trip through the whole stack: HTTP
// (httptest, keep-alive), auth (token cache), decoding, the coordinator and
// a synced write to Pebble on disk; parallel clients share WAL syncs (group
// commit). Each client reports positions for its own video, node-stamped.
//
//	go test ./node -run '^$' -bench HTTPPut -benchtime 2000x
func BenchmarkHTTPPut(b *testing.B) {
	n, err := New(Config{NodeID: "bench", DataDir: b.TempDir(), AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	defer n.Shutdown(context.Background())
	tok, _ := api.IssueToken(testSecret, "bench", nil, false, time.Hour, time.Now())
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
	var clients atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients.Add(1)
		url := fmt.Sprintf("%s/v1/profiles/p%d/positions/video-%d", srv.URL, c%16, c)
		for i := int64(1); pb.Next(); i++ {
			body := fmt.Sprintf(`{"position_ms":%d,"duration_ms":360000000,"device":"dev-%d","session":"s-%d"}`, i*1000, c, c)
			req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
