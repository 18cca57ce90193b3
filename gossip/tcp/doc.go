// Package tcp is the replication transport between nodes (gossip.Transport):
// one connection per peer and direction, an HMAC handshake over the cluster
// key, then AES-256-GCM frames with counter nonces (wire v2, "PHRP2"). It is
// an I/O edge; the simulator delivers frames itself.
package tcp
