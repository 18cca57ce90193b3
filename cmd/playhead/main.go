// Command playhead runs and operates playhead nodes.
//
//	playhead serve   run a node
//	playhead dev     run a ready-to-use local service (temp storage, a token, curl lines)
//	playhead token   print a device token signed with the cluster secret
//	playhead keygen  print a new cluster key for --gossip-key-file
//	playhead health  exit 0 when a node is ready (container health checks)
//	playhead status  members, versions, partitions, pending handoffs and hints, raft leader
//	playhead backup  a checkpoint of a node's store while it serves
//	playhead restore install a backup as a new node's data directory
//	playhead sim     run the deterministic cluster simulator
//
// The load generator, the Redis baseline and the comparison with its plots
// are cmd/playhead-bench, so that what operators run does not link them.
//
// Every flag has an environment variable (PLAYHEAD_ and the flag name, upper
// case, dashes as underscores); `playhead CMD --help` lists them with their
// defaults.
package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/playhead/playhead/internal/cliflag"
	"io"
	"os"
	"strings"
)

const topUsage = `playhead remembers where every viewer stopped watching, on every device.

usage: playhead <command> [flags]

commands:
  serve   run a node (storage in --data-dir, API on --http-addr)
  dev     run a ready-to-use local service with embedded storage; prints URL, token and curl lines
  token   print a device token signed with the cluster secret
  keygen  print a new cluster key (for --gossip-key-file)
  health  exit 0 when a node answers /readyz with 200 (container health checks)
  status  the cluster's members, their state, version, partitions, pending handoffs and hints, raft leader
  backup  a checkpoint of a node's store taken while it serves, into a directory
  restore install a backup as a new node's data directory
  version print the version
  sim     run the deterministic cluster simulator (faults, invariants, replayable seeds)
  bench   moved to playhead-bench (go run ./cmd/playhead-bench --help), out of the product binary

Run 'playhead <command> --help' for a command's flags and their environment variables.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a command and returns the process exit code: 0 on
// success, 2 on a usage error, 1 on any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "dev":
		err = cmdDev(args[1:], stdout, stderr)
	case "token":
		err = cmdToken(args[1:], stdout, stderr)
	case "keygen":
		err = cmdKeygen(args[1:], stdout, stderr)
	case "health":
		err = cmdHealth(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "backup":
		err = cmdBackup(args[1:], stdout, stderr)
	case "restore":
		err = cmdRestore(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "playhead", buildVersion())
		return 0
	case "sim":
		err = cmdSim(args[1:], stdout, stderr)
	case "bench":
		fmt.Fprint(stderr, benchMoved)
		return 2
	case "-h", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "playhead: unknown command %q\n\n%s", args[0], topUsage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errReported):
		return 2 // the flag package printed the error and the usage
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintf(stderr, "playhead %s: %s\n", args[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		}
		return 2
	default:
		fmt.Fprintf(stderr, "playhead %s: %v\n", args[0], err)
		return 1
	}
}

// benchMoved answers `playhead bench`.
const benchMoved = `playhead bench moved to its own binary, playhead-bench, so that the product binary does not link
the load generator's plotting or the Redis baseline:

  go run ./cmd/playhead-bench --help                  # the load generator (same flags as before)
  go run ./cmd/playhead-bench compare --help          # playhead vs the Redis baseline (bench/compare.sh)
`

// errUsage marks a usage error: the command printed its usage, run prints
// the error's message (which names what is wrong) and exits 2.
var errUsage = cliflag.ErrUsage

// errReported marks a usage error already printed in full (by the flag
// package): run only exits 2.
var errReported = cliflag.ErrReported
