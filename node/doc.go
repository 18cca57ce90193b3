// Package node is playhead's device-facing server: the HTTP and WebSocket
// API of API.md, auth, device subscriptions and push delivery, config,
// metrics, and the wiring of storage and the coordinator into a running
// node. It holds no merge rules (crdt/) and no replication logic (gossip/):
// handlers decode a request into typed values, call one gossip.Service
// method, and encode the answer.
//
// # Order of operations of a request
//
//  1. instrument (middleware.go): Playhead-HLC and X-Request-Id headers on
//     every response, panic recovery, request metrics and the debug log.
//  2. the mux (server.go, the one place routes are listed).
//  3. profile (server.go): token (401), profile id (400), profile allowed
//     by the token (403, no data), per-account rate limit (429).
//  4. the handler: body (413 over MaxBodyBytes, 400 if malformed; decode.go),
//     per-device rate limit for writes, the service call, the answer
//     (json.go). Service errors map in errors.go.
//
// # Push
//
// The Hub (hub.go) is the coordinator's gossip.Notifier: it is called after
// each durable change, in commit order per profile, and hands the events to
// every subscriber of that exact (account, profile) without blocking; a
// subscriber whose buffer is full is dropped and its device reconnects with
// after=. WebSocket and SSE streams (events*.go) and long-polls (changes.go)
// subscribe before they read the current cursors, so nothing committed in
// between is missed; updated_hlc is the resume watermark.
//
// # Auth
//
// HS256 JWTs (auth.go) with claims acct (required), profiles (optional: the
// only profiles allowed), admin and exp (required). Verified tokens are
// cached by their raw text until exp. GET …/events also accepts the token in
// ?access_token=, because browsers cannot set headers on a WebSocket.
//
// # Lifecycle
//
// New opens Pebble and builds the coordinator; Run (or Serve) serves until
// its context ends and then shuts down gracefully (node.go): readiness goes
// 503, push streams close with "going away", in-flight requests finish,
// tracked goroutines (tracker.go) end, and the store closes last.
package node
