package raftring

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// hclogBridge is an hclog.Logger (what hashicorp/raft logs through) that
// writes to a *slog.Logger, dropping records below a minimum level. hclog's
// alternating key-value arguments are slog's too.
type hclogBridge struct {
	log   *slog.Logger
	name  string
	args  []any
	level *atomic.Int32 // hclog.Level; shared by derived loggers, as in hclog
}

var _ hclog.Logger = (*hclogBridge)(nil)

// newHclogBridge returns an hclog.Logger writing records at min or above to
// l.
func newHclogBridge(l *slog.Logger, min hclog.Level) *hclogBridge {
	b := &hclogBridge{log: l, level: new(atomic.Int32)}
	b.level.Store(int32(min))
	return b
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (b *hclogBridge) enabled(l hclog.Level) bool {
	min := hclog.Level(b.level.Load())
	if min == hclog.Off || l == hclog.Off {
		return false
	}
	if l == hclog.NoLevel {
		l = hclog.Info
	}
	return l >= min && b.log.Enabled(context.Background(), slogLevel(l))
}

// routine are raft's warnings and errors that a healthy cluster prints
// while it starts, changes its configuration or shuts down: logged at debug.
// A peer that is really gone shows in membership's logs and /v1/cluster.
var routine = map[string]bool{
	"no known peers, aborting election":                             true, // a joining node before it is added
	"heartbeat timeout reached, starting election":                  true, // the first election
	"failed to get previous log":                                    true, // a new follower: "log not found"
	"appendEntries rejected, sending older logs":                    true, // the leader catching that follower up
	"peer has newer term, stopping replication":                     true, // after a leadership transfer
	"failed to contact":                                             true, // lease check under load, or a peer stopping
	"failed to appendEntries to":                                    true, // a peer stopped or restarting
	"failed to heartbeat to":                                        true, // idem
	"failed to decode incoming command":                             true, // the transport closing at shutdown
	"failed to contact quorum of nodes, stepping down":              true, // the others stopped first
	"failed to make requestVote RPC":                                true, // a peer stopped or restarting
	"Election timeout reached, restarting election":                 true, // idem
	"rejecting pre-vote request since we have a leader":             true, // a restarted member catching up
	"rejecting vote request since we have a leader":                 true, // idem
	"rejecting pre-vote request since node is not in configuration": true, // a removed member coming back
	"not part of stable configuration, aborting election":           true, // a member not yet (re-)added
	"heartbeat timeout reached, not part of a stable configuration or a non-voter, not triggering a leader election": true,
	"nothing new to snapshot":                                  true,
	"unable to get address for server, using fallback address": true,
}

// quietLevel is the level a raft record is logged at: routine ones at debug.
func quietLevel(level hclog.Level, msg string) hclog.Level {
	if level >= hclog.Warn && routine[msg] {
		return hclog.Debug
	}
	return level
}

func (b *hclogBridge) Log(level hclog.Level, msg string, args ...any) {
	level = quietLevel(level, msg)
	if !b.enabled(level) {
		return
	}
	all := make([]any, 0, len(b.args)+len(args)+2)
	if b.name != "" {
		all = append(all, "logger", b.name)
	}
	all = append(all, b.args...)
	all = append(all, args...)
	b.log.Log(context.Background(), slogLevel(level), msg, all...)
}

func (b *hclogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *hclogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *hclogBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *hclogBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *hclogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }
func (b *hclogBridge) IsTrace() bool                 { return b.enabled(hclog.Trace) }
func (b *hclogBridge) IsDebug() bool                 { return b.enabled(hclog.Debug) }
func (b *hclogBridge) IsInfo() bool                  { return b.enabled(hclog.Info) }
func (b *hclogBridge) IsWarn() bool                  { return b.enabled(hclog.Warn) }
func (b *hclogBridge) IsError() bool                 { return b.enabled(hclog.Error) }
func (b *hclogBridge) ImpliedArgs() []any            { return b.args }
func (b *hclogBridge) Name() string                  { return b.name }
func (b *hclogBridge) SetLevel(l hclog.Level)        { b.level.Store(int32(l)) }
func (b *hclogBridge) GetLevel() hclog.Level         { return hclog.Level(b.level.Load()) }

func (b *hclogBridge) With(args ...any) hclog.Logger {
	c := *b
	c.args = append(append([]any(nil), b.args...), args...)
	return &c
}

func (b *hclogBridge) Named(name string) hclog.Logger {
	c := *b
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (b *hclogBridge) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = name
	return &c
}

func (b *hclogBridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

func (b *hclogBridge) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return hclogLineWriter{b: b, level: level}
}

// hclogLineWriter logs each written line at a fixed level.
type hclogLineWriter struct {
	b     *hclogBridge
	level hclog.Level
}

func (w hclogLineWriter) Write(p []byte) (int, error) {
	w.b.Log(w.level, string(bytes.TrimSpace(p)))
	return len(p), nil
}
