package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/node"
)

func cmdToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secretFile := fs.String("secret-file", "", "file holding the cluster's auth secret (at least 32 bytes; a trailing newline is ignored); required")
	account := fs.String("account", "", "the account the token acts for (claim acct); required")
	var profiles stringList
	fs.Var(&profiles, "profile", "a profile the token may touch (repeatable, or comma-separated); none means every profile of the account")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	admin := fs.Bool("admin", false, "allow the cluster endpoints (GET /v1/cluster)")
	fs.Usage = usage(stderr, fs, "playhead token --secret-file FILE --account A [--profile P]... [--ttl 24h] [--admin]",
		"Prints a device token (JWT, HS256) signed with the cluster's secret: the token is the last word of the output.")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *secretFile == "" || *account == "" {
		fs.Usage()
		return fmt.Errorf("%w: --secret-file and --account are required", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl must be positive, got %v", *ttl)
	}
	secret, err := node.LoadSecret(*secretFile)
	if err != nil {
		return err
	}
	tok, err := api.IssueToken(secret, *account, profiles, *admin, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
