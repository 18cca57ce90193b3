package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCPUPerUpdate measures the server CPU one acknowledged update
// costs, the input the capacity model (docs/CAPACITY.md) sizes cores
// with: the user + system CPU of the `playhead serve` processes
// (/proc/PID/stat) over the updates acknowledged, for one node and for a
// three-process RF=3, W=2 cluster on loopback (each update durable on two
// nodes before its answer, applied on the third), under the same load from
// this process (which is not counted). Each process's CPU while idle is
// measured for 2 s first and taken out (net-CPU-µs/update), so the figure
// is what updates cost, not what heartbeats and anti-entropy cost.
//
// Cases: "put" one update per HTTP PUT (a device's heartbeat); "batch50"
// 50 updates per POST (an SDK replaying its queue).
//
//	go test ./cmd/playhead -run '^$' -bench CPUPerUpdate -benchtime 4s
func BenchmarkCPUPerUpdate(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs the binary")
	}
	for _, sys := range []string{"single", "cluster3"} {
		for _, batch := range []int{1, 50} {
			name := "put"
			if batch > 1 {
				name = fmt.Sprintf("batch%d", batch)
			}
			b.Run(sys+"/"+name, func(b *testing.B) {
				var urls []string
				var pids []int
				var token string
				if sys == "single" {
					bin, err := buildOnce()
					if err != nil {
						b.Fatal(err)
					}
					dir := b.TempDir()
					secret := filepath.Join(dir, "secret")
					os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef-test-secret\n"), 0o600)
					addr := freeAddr(b)
					cmd := execServe(b, bin, "serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", addr,
						"--auth-secret-file", secret, "--device-rate", "-1", "--account-rate", "-1", "--log-level", "warn")
					waitReady(b, addr)
					urls, pids, token = []string{"http://" + addr}, []int{cmd.Process.Pid}, accountToken(b, bin, secret, "acct-1")
				} else {
					pc := newProcCluster(b)
					pc.startThree()
					for _, p := range pc.nodes {
						urls = append(urls, "http://"+p.http)
						pids = append(pids, p.cmd.Process.Pid)
					}
					token = accountToken(b, pc.bin, pc.secret, "acct-1")
				}
				serverCPU(b, urls, pids, token, batch)
			})
		}
	}
}

// execServe starts the binary with args, killed when the benchmark ends.
func execServe(b *testing.B, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// accountToken mints a token for every profile of account.
func accountToken(b *testing.B, bin, secret, account string) string {
	out, err := exec.Command(bin, "token", "--secret-file", secret, "--account", account).Output()
	if err != nil {
		b.Fatalf("playhead token: %v", err)
	}
	f := strings.Fields(string(out))
	return f[len(f)-1]
}

// BenchmarkCPUPerRole splits an update's CPU by role, for the capacity
// model's imbalance factor: a three-process cluster takes every PUT
// through node 1, once with --replication 1 (node 1 parses and routes
// every update; each update is coordinated, stored and answered by one
// owner) and once with RF 3, W 2 (each update also merged and stored by
// two more owners). Per update:
//
//   - front-CPU-µs: node 1's CPU minus the mean of the others' (RF 3):
//     what the node a device is connected to spends, beyond its share of
//     owner work (HTTP, JSON, auth, routing);
//
//   - replica-CPU-µs: (total at RF 3 − total at RF 1) ÷ 2, one replica's
//     merge, store write and ack;
//
//   - coord-CPU-µs: total at RF 1 − front: running the rules, storing,
//     answering (and, at RF 3, replicating: counted in replica).
//
//     go test ./cmd/playhead -run '^$' -bench CPUPerRole -benchtime 4s
func BenchmarkCPUPerRole(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs the binary")
	}
	total := map[int]float64{}
	var front float64
	for _, rf := range []int{1, 3} {
		b.Run(fmt.Sprintf("rf%d", rf), func(b *testing.B) {
			pc := newProcCluster(b)
			pc.extra = []string{"--replication", strconv.Itoa(rf), "--write-quorum", strconv.Itoa(min(2, rf))}
			pc.startThree()
			var pids []int
			for _, p := range pc.nodes {
				pids = append(pids, p.cmd.Process.Pid)
			}
			per := serverCPU(b, []string{"http://" + pc.nodes[0].http}, pids, accountToken(b, pc.bin, pc.secret, "acct-1"), 1)
			b.ReportMetric(per[0], "node1-µs/update")
			b.ReportMetric(per[1]+per[2], "nodes2+3-µs/update")
			total[rf] = per[0] + per[1] + per[2]
			if rf == 3 {
				front = per[0] - (per[1]+per[2])/2
			}
		})
	}
	if total[1] > 0 && total[3] > 0 {
		b.Logf("per update: front %.1f µs, coordinator %.1f µs, one replica %.1f µs; total at RF 1 %.1f µs, at RF 3 %.1f µs",
			front, total[1]-front, (total[3]-total[1])/2, total[1], total[3])
	}
}

// procCPU is the user + system CPU time of process pid.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start
	// after the last ')'; utime and stime are fields 14 and 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func procsCPU(b *testing.B, pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		d += procCPU(b, p)
	}
	return d
}

// serverCPU sends b.N requests of batch updates each from 64/batch (at
// least 4) writers per core, each writer its own profile and device,
// spread over urls. A 503 (no write quorum in time) is counted, not
// acknowledged: CPU is divided by the updates acknowledged. It returns
// each process's net CPU per update, in µs.
func serverCPU(b *testing.B, urls []string, pids []int, token string, batch int) []float64 {
	each := func() []time.Duration {
		out := make([]time.Duration, len(pids))
		for i, p := range pids {
			out[i] = procCPU(b, p)
		}
		return out
	}
	idleEach0, idle0, idleStart := each(), procsCPU(b, pids), time.Now()
	time.Sleep(2 * time.Second)
	idleWall := time.Since(idleStart).Seconds()
	idleEach := each()
	idleCores := (procsCPU(b, pids) - idle0).Seconds() / idleWall

	var ctr, refused atomic.Int64
	b.SetParallelism(max(4, 64/batch))
	tr := &http.Transport{MaxIdleConnsPerHost: 4096}
	defer tr.CloseIdleConnections()
	var once sync.Once
	b.ResetTimer()
	start, cpu0, each0 := time.Now(), procsCPU(b, pids), each()
	b.RunParallel(func(pb *testing.PB) {
		g := ctr.Add(1)
		client := &http.Client{Transport: tr}
		var body strings.Builder
		for i := int64(1); pb.Next(); i++ {
			url := urls[int(i+g)%len(urls)]
			var r *http.Request
			if batch == 1 {
				r, _ = http.NewRequest("PUT", fmt.Sprintf("%s/v1/profiles/p%d/positions/v", url, g),
					strings.NewReader(fmt.Sprintf(`{"position_ms":%d,"duration_ms":100000000,"device":"d%d","session":"s%d"}`, i*1000, g, g)))
			} else {
				body.Reset()
				body.WriteString(`{"updates":[`)
				for v := range batch {
					if v > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"video":"v%d","position_ms":%d,"duration_ms":100000000,"device":"d%d","session":"s%d"}`, v, i*1000, g, g)
				}
				body.WriteString(`]}`)
				r, _ = http.NewRequest("POST", fmt.Sprintf("%s/v1/profiles/p%d/positions", url, g), strings.NewReader(body.String()))
			}
			r.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(r)
			if err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
			case 503:
				refused.Add(1)
			default:
				once.Do(func() { b.Errorf("status %d", resp.StatusCode) })
				return
			}
		}
	})
	wall, cpu, each1 := time.Since(start).Seconds(), (procsCPU(b, pids) - cpu0).Seconds(), each()
	updates := float64((int64(b.N) - refused.Load()) * int64(batch))
	per := make([]float64, len(pids))
	for i := range pids {
		idle := (idleEach[i] - idleEach0[i]).Seconds() / idleWall
		per[i] = ((each1[i] - each0[i]).Seconds() - idle*wall) * 1e6 / updates
	}
	b.ReportMetric(updates/wall, "updates/s")
	b.ReportMetric(cpu*1e6/updates, "CPU-µs/update")
	b.ReportMetric((cpu-idleCores*wall)*1e6/updates, "net-CPU-µs/update")
	b.ReportMetric(cpu/wall, "server-cores")
	b.ReportMetric(idleCores, "idle-cores")
	b.ReportMetric(float64(refused.Load())/float64(b.N), "503/op")
	return per
}
