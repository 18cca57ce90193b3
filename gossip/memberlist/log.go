package memberlist

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
)

// mlLogWriter turns memberlist's "[LEVEL] memberlist: message" lines into
// debug records with the original level as an attribute.
type mlLogWriter struct{ log *slog.Logger }

func (w mlLogWriter) Write(p []byte) (int, error) {
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	line := string(bytes.TrimSpace(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Debug(line, "level_memberlist", level)
	return len(p), nil
}

var _ io.Writer = mlLogWriter{}
