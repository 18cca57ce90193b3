// Package api is the device API's JSON contract (docs/API.md) as Go types,
// shared by the server (node/) and the device SDK (client/), and the signing
// of device tokens.
//
// It is a leaf: it imports the standard library, crdt/ (for crdt.HLC, whose
// JSON form — a decimal string in, a string or a number accepted — is the
// API's) and the JWT library, and nothing of the server. The field names and
// shapes here are the wire format: they may gain fields but never rename or
// drop one (testdata/wire.golden pins them).
package api
