package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The clients: devices that write, read and delete through random nodes,
// and one push subscriber per profile. Every request and every push goes
// into the phase's History.

var videos = []string{"v1", "v2", "v3"}

const durationMs = 3_600_000

type workload struct {
	e        *env
	h        *History
	profiles []string
	client   *http.Client
}

func newWorkload(e *env, h *History, phase string, profiles int) *workload {
	w := &workload{e: e, h: h, client: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	for p := range profiles {
		w.profiles = append(w.profiles, fmt.Sprintf("%s-p%d", phase, p+1))
	}
	return w
}

// device is one player. Its Seen per video is what the Go SDK keeps: the
// largest version it read, was pushed or wrote (acknowledged), forgotten
// after its own delete.
type device struct {
	name, profile, session string
	sessions               int
	rng                    *rand.Rand
	pos                    int64
	seen                   map[string]Version
}

func (w *workload) do(ctx context.Context, method string, node int, path string, body string, hdr map[string]string) (int, []byte, string) {
	req, _ := http.NewRequestWithContext(ctx, method, w.e.url(node)+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, ""
}

// runDevice plays until ctx ends.
func (w *workload) runDevice(ctx context.Context, d *device) {
	for ctx.Err() == nil {
		node := 1 + d.rng.IntN(nodes)
		video := videos[d.rng.IntN(len(videos))]
		base := "/v1/profiles/" + d.profile
		op := Op{Device: d.name, Profile: d.profile, Video: video, Node: node, Start: w.h.Since()}
		r := d.rng.IntN(100)
		switch {
		case r < 55:
			op.Kind = OpWrite
			if d.rng.IntN(15) == 0 {
				// a new playback session (a new, larger epoch): it takes
				// over from the other device's
				d.sessions++
				d.session = fmt.Sprintf("%s-s%d", d.name, d.sessions)
			}
			d.pos += 1000
			op.Pos, op.Session = d.pos, d.session
			body := fmt.Sprintf(`{"position_ms":%d,"duration_ms":%d,"device":%q,"session":%q}`, d.pos, durationMs, d.name, d.session)
			st, b, err := w.do(ctx, "PUT", node, base+"/positions/"+video, body, nil)
			op.Status, op.Err = st, err
			if st == 200 || st == 409 {
				var res struct {
					Applied bool       `json:"applied"`
					Cursor  cursorJSON `json:"cursor"`
				}
				json.Unmarshal(b, &res)
				op.Applied = st == 200 && res.Applied
				if op.Applied {
					op.Ver = res.Cursor.version()
					if d.seen[video].Less(op.Ver) {
						d.seen[video] = op.Ver
					}
				}
			}
		case r < 80:
			op.Kind = OpRead
			op.Seen = d.seen[video]
			hdr := map[string]string{}
			if !op.Seen.IsZero() {
				hdr["Playhead-Seen"] = op.Seen.Header()
			}
			w.read(ctx, &op, base+"/positions/"+url.PathEscape(video), hdr)
			if op.Found && d.seen[video].Less(op.Ver) {
				d.seen[video] = op.Ver
			}
		case r < 87:
			op.Kind = OpPlainRead
			w.read(ctx, &op, base+"/positions/"+url.PathEscape(video), nil)
		case r < 94:
			op.Kind, op.Video = OpList, ""
			st, b, err := w.do(ctx, "GET", node, base+"/continue-watching?limit=50", "", nil)
			op.Status, op.Err = st, err
			if st == 200 {
				var res struct {
					Items []cursorJSON `json:"items"`
				}
				json.Unmarshal(b, &res)
				for _, c := range res.Items {
					op.Items = append(op.Items, c.item())
				}
			}
		case r < 98:
			op.Kind = OpDeleteVideo
			st, _, err := w.do(ctx, "DELETE", node, base+"/history?video="+url.QueryEscape(video), "", nil)
			op.Status, op.Err = st, err
			delete(d.seen, video)
		default:
			op.Kind, op.Video = OpDeleteAll, ""
			st, _, err := w.do(ctx, "DELETE", node, base+"/history", "", nil)
			op.Status, op.Err = st, err
			clear(d.seen)
		}
		op.End = w.h.Since()
		if ctx.Err() != nil && op.Status == 0 {
			// cancelled by the end of the workload, not by the cluster: its
			// outcome is unknown, which the checker allows for.
			op.Err = "cancelled at the end of the workload"
		}
		w.h.Add(op)
		time.Sleep(time.Duration(20+d.rng.IntN(40)) * time.Millisecond)
	}
}

func (w *workload) read(ctx context.Context, op *Op, path string, hdr map[string]string) {
	st, b, err := w.do(ctx, "GET", op.Node, path, "", hdr)
	op.Status, op.Err = st, err
	if st == 200 {
		var c cursorJSON
		json.Unmarshal(b, &c)
		op.Found, op.Pos, op.Session, op.Writer, op.Ver = true, c.PositionMs, c.Session, c.Device, c.version()
	}
}

// runSubscriber holds a push stream (SSE) on profile, on a random node,
// and reconnects with after=<watermark> to another node when it breaks or
// stays silent longer than a heartbeat (15 s) and a margin.
func (w *workload) runSubscriber(ctx context.Context, name, profile string, rng *rand.Rand, opened chan<- struct{}) {
	var once sync.Once
	watermark := ""
	for ctx.Err() == nil {
		node := 1 + rng.IntN(nodes)
		path := "/v1/profiles/" + profile + "/events"
		if watermark != "" {
			path += "?after=" + watermark
		}
		sctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(sctx, "GET", w.e.url(node)+path, nil)
		req.Header.Set("Authorization", "Bearer "+w.e.token)
		req.Header.Set("Accept", "text/event-stream")
		start := w.h.Since()
		resp, err := (&http.Client{}).Do(req)
		if err != nil || resp.StatusCode != 200 {
			if err == nil {
				resp.Body.Close()
			}
			cancel()
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if watermark == "" {
			watermark = resp.Header.Get("Playhead-HLC")
		}
		w.h.Add(Op{Kind: OpSubscribe, Device: name, Profile: profile, Node: node, Start: start, End: w.h.Since(), Status: 200})
		once.Do(func() { close(opened) })
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-sctx.Done():
					return
				}
			}
		}()
		idle := time.NewTimer(20 * time.Second)
		event := ""
	stream:
		for {
			select {
			case <-ctx.Done():
				break stream
			case <-idle.C:
				break stream // silent past the heartbeat: the node is gone
			case l, ok := <-lines:
				if !ok {
					break stream
				}
				idle.Reset(20 * time.Second)
				switch {
				case strings.HasPrefix(l, "id: "):
					watermark = strings.TrimPrefix(l, "id: ")
				case strings.HasPrefix(l, "event: "):
					event = strings.TrimPrefix(l, "event: ")
				case strings.HasPrefix(l, "data: "):
					var ev struct {
						Type   string     `json:"type"`
						Video  *string    `json:"video"`
						Cursor cursorJSON `json:"cursor"`
					}
					json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &ev)
					at := w.h.Since()
					switch event {
					case "cursor":
						c := ev.Cursor
						w.h.Add(Op{Kind: OpPush, Device: name, Profile: profile, Video: c.Video, Node: node, Start: at, End: at, Status: 200,
							Found: true, Pos: c.PositionMs, Session: c.Session, Writer: c.Device, Ver: c.version()})
					case "cleared":
						v := ""
						if ev.Video != nil {
							v = *ev.Video
						}
						w.h.Add(Op{Kind: OpCleared, Device: name, Profile: profile, Video: v, Node: node, Start: at, End: at, Status: 200})
					}
				}
			}
		}
		idle.Stop()
		cancel()
		resp.Body.Close()
		for range lines {
		}
		if ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
}
