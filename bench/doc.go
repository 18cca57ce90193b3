// Package bench is playhead's load generator: simulated devices against any
// service that speaks playhead's device API (API.md), with HDR latency
// histograms, open- and closed-loop modes, a JSON result and a human table.
//
// Workloads (Config.Workload):
//
//   - put: one position update per HTTP PUT, on keep-alive connections.
//   - batch: Config.Batch updates per POST …/positions (one profile, one device,
//     as the SDK replays its offline queue).
//   - ws: updates over a WebSocket per simulated device, each waiting for its ack.
//   - read: GET …/positions/{video} (the resume read) over cursors written by a
//     prefill phase, so reads find data.
//   - propagation: writers PUT to Config.Subscribers profiles while one other
//     device per profile listens on WebSocket or SSE; the latency is the time from
//     the write's send to the push of that exact version (matched by seq).
//
// Devices stamp their own versions (epoch = seq = the generator's HLC, one
// session per device and video) as the SDK does, so a 409 only comes from two
// writes racing on one cursor and any two services implementing the
// (epoch, seq, session) rule refuse the same writes.
//
// Open loop (Config.Rate > 0) issues requests on a fixed schedule and measures
// each latency from its intended send time, so a server that stalls is charged
// for the queue it causes (no coordinated omission); at most Concurrency are in
// flight, and requests the schedule wanted but that could not start by the end
// are reported as Unsent. Closed loop (Rate 0) runs Concurrency workers back to
// back at the highest rate the server allows.
//
// Nothing here asserts a timing; the package's tests check only that a run
// succeeds and its result is well formed. compare.go drives playhead and the
// Redis baseline (bench/baseline) side by side and writes docs/BENCHMARKS.md.
package bench
