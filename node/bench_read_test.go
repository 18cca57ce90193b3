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

// BenchmarkHTTPGet measures a resume read (GET …/positions/{video}) through
// the whole stack: HTTP (httptest, keep-alive), auth (token cache), the
// read-quorum path, the record cache and Pebble, JSON. The cursors are
// written first; each op reads one of them. allocs/op counts both the
// server's and the client's allocations (the client's are the same before
// and after a server change).
//
//	go test ./node -run '^$' -bench HTTPGet -benchtime 20000x
func BenchmarkHTTPGet(b *testing.B) {
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
	const profiles, videos = 16, 64
	for p := range profiles {
		var ups []string
		for v := range videos {
			ups = append(ups, fmt.Sprintf(`{"video":"video-%d","position_ms":1000,"duration_ms":360000000,"device":"dev","session":"s-%d"}`, v, v))
		}
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/profiles/p%d/positions", srv.URL, p), strings.NewReader(`{"updates":[`+strings.Join(ups, ",")+`]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("prefill: %v %v", err, res)
		}
		res.Body.Close()
	}
	var clients atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients.Add(1)
		for i := c; pb.Next(); i++ {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/profiles/p%d/positions/video-%d", srv.URL, i%profiles, (i*7)%videos), nil)
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
