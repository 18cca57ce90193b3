package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/playhead/playhead/gossip/clusterkey"
)

const keygenUsage = `usage: playhead keygen

Prints a new cluster key: 32 random bytes, base64-encoded. Put it in a file
and give every node that file with --gossip-key-file; it encrypts membership
gossip (memberlist's AES keyring) and authenticates node-to-node replication.
A key file may hold several keys, one per line: the first is used to send,
all are accepted, so keys can be rotated without downtime (add the new key
second everywhere, then first, then drop the old one).
`

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), keygenUsage) }
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	key, err := clusterkey.Generate()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}
