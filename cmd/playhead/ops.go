package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/node"
)

// adminFlags are the flags of the commands that talk to a node's admin
// endpoints: where it is and how to get an admin token.
type adminFlags struct {
	url, token, secretFile *string
	timeout                *time.Duration
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		url:        fs.String("url", "http://127.0.0.1:8080", "base URL of a node's device API"),
		token:      fs.String("token", "", "an admin token (playhead token --admin); or --secret-file"),
		secretFile: fs.String("secret-file", "", "the cluster's auth secret file: an admin token valid for a minute is minted with it"),
		timeout:    fs.Duration("timeout", 10*time.Second, "give up on a node after this long"),
	}
}

func (a adminFlags) bearer() (string, error) {
	if *a.token != "" {
		return *a.token, nil
	}
	if *a.secretFile == "" {
		return "", fmt.Errorf("%w: give --token (an admin token: playhead token --admin) or --secret-file", errUsage)
	}
	secret, err := node.LoadSecret(*a.secretFile)
	if err != nil {
		return "", err
	}
	return api.IssueToken(secret, "operator", nil, true, time.Minute, time.Now())
}

// getJSON GETs url with the token into v.
func getJSON(ctx context.Context, url, tok string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// statusReport is `playhead status --json`.
type statusReport struct {
	Cluster node.ClusterStatus `json:"cluster"`
	Nodes   []memberStatus     `json:"nodes"`
}

type memberStatus struct {
	node.ClusterMember
	Node  *node.NodeStatus `json:"node,omitempty"` // nil when it did not answer
	Error string           `json:"error,omitempty"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usage(stderr, fs, "playhead status [--url URL] (--token T | --secret-file F) [--json]",
		"Shows the cluster as the node at --url sees it (GET /v1/cluster) and asks every member for its own\nstate (GET /v1/node): version, partitions held, partitions still to pull (handoff), hints held\nfor unreachable owners (replication owed), and the raft leader. Exits 1 when a member does not answer.")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	tok, err := af.bearer()
	if err != nil {
		return err
	}
	base := strings.TrimRight(*af.url, "/")
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	var rep statusReport
	if err := getJSON(ctx, base+"/v1/cluster", tok, &rep.Cluster); err != nil {
		return fmt.Errorf("%v (is --url a running node, and the token an admin one?)", err)
	}
	failed := 0
	for _, m := range rep.Cluster.Members {
		ms := memberStatus{ClusterMember: m}
		if m.HTTPAddr != "" && (m.State == "alive" || m.State == "suspect") {
			var ns node.NodeStatus
			if err := getJSON(ctx, "http://"+m.HTTPAddr+"/v1/node", tok, &ns); err != nil {
				ms.Error = err.Error()
			} else {
				ms.Node = &ns
			}
		} else {
			ms.Error = "not asked: " + m.State
		}
		if ms.Node == nil {
			failed++
		}
		rep.Nodes = append(rep.Nodes, ms)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printStatus(stdout, rep)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d members did not answer", failed, len(rep.Nodes))
	}
	return nil
}

func printStatus(w io.Writer, rep statusReport) {
	fmt.Fprintf(w, "cluster: %d members, %d partitions, replication %d, raft leader %s\n\n",
		len(rep.Cluster.Members), rep.Cluster.Partitions, rep.Cluster.Replication, orDash(rep.Cluster.RaftLeader))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMEMBER\tSTATE\tVERSION\tHTTP\tPARTITIONS\tHANDOFF\tHINTS\tLEADER")
	for _, m := range rep.Nodes {
		state, version, handoff, hints := "-", "-", "-", "-"
		if n := m.Node; n != nil {
			state, version = n.State, n.Version
			handoff, hints = fmt.Sprint(n.PendingHandoffs), fmt.Sprint(n.PendingHints)
		} else {
			state = "unreachable"
		}
		leader := ""
		if m.ID == rep.Cluster.RaftLeader {
			leader = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, m.State, state, version, orDash(m.HTTPAddr), m.Partitions, handoff, hints, leader)
	}
	tw.Flush()
	for _, m := range rep.Nodes {
		if m.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", m.ID, m.Error)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdBackup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	*af.timeout = 30 * time.Minute
	to := fs.String("to", "", "directory to write the backup to; must not exist or be empty; required")
	fs.Usage = usage(stderr, fs, "playhead backup --to DIR [--url URL] (--token T | --secret-file F)",
		"Takes a checkpoint of the store of the node at --url while it serves (POST /v1/node/backup: every\nwrite it acknowledged before is in it) and writes its files to --to. `playhead restore` installs it.")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *to == "" {
		fs.Usage()
		return fmt.Errorf("%w: --to is required", errUsage)
	}
	if err := emptyDir(*to); err != nil {
		return fmt.Errorf("--to: %v", err)
	}
	tok, err := af.bearer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*af.url, "/")+"/v1/node/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST /v1/node/backup: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	files, size, err := untar(resp.Body, *to)
	if err != nil {
		return fmt.Errorf("receiving the backup (the directory %s is incomplete; remove it and retry): %v", *to, err)
	}
	fmt.Fprintf(stdout, "backup of %s in %s: %d files, %d bytes\n", *af.url, *to, files, size)
	return nil
}

func cmdRestore(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "a directory written by playhead backup; required")
	dataDir := fs.String("data-dir", "", "the new node's data directory; must not exist or be empty; required")
	fs.Usage = usage(stderr, fs, "playhead restore --from DIR --data-dir DIR",
		"Installs a backup as a node's store in an empty --data-dir. Then start the node on it with\nplayhead serve: alone it serves the backup's data; in a cluster give it a new --node-id and\n--join, and anti-entropy brings it up to date (docs/OPERATIONS.md).")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *from == "" || *dataDir == "" {
		fs.Usage()
		return fmt.Errorf("%w: --from and --data-dir are required", errUsage)
	}
	if m, _ := filepath.Glob(filepath.Join(*from, "MANIFEST-*")); len(m) == 0 {
		return fmt.Errorf("--from %s is not a backup (no MANIFEST file: make one with playhead backup)", *from)
	}
	if err := emptyDir(*dataDir); err != nil {
		return fmt.Errorf("--data-dir: %v (restore never overwrites a node's data)", err)
	}
	entries, err := os.ReadDir(*from)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(*from, e.Name()), filepath.Join(*dataDir, e.Name())); err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(stdout, "restored %d files into %s; start it with: playhead serve --data-dir %s …\n", n, *dataDir, *dataDir)
	return nil
}

// emptyDir creates dir, or accepts it when it exists and is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

func untar(r io.Reader, dir string) (files int, size int64, err error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, size, nil
		}
		if err != nil {
			return files, size, err
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || h.Name == ".." || h.Name == "." {
			return files, size, fmt.Errorf("unexpected entry %q in the backup stream", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return files, size, err
		}
		n, err := io.Copy(f, tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, size, err
		}
		files++
		size += n
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
