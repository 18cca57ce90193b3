// Package clusterkey generates, parses and loads the cluster key: the
// 32-byte secret that encrypts membership gossip and authenticates and
// encrypts replication traffic. Key files hold one base64 key per line; the
// first is the primary, the rest are accepted during a rotation.
package clusterkey
