package gossip

import (
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/storage"
)

// TestCoreConfigValidate: every setting that cannot work is refused by
// NewCore with an error naming it, after defaults are filled in.
func TestCoreConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*CoreConfig)
		want string
	}{
		{"no id", func(c *CoreConfig) { c.Self = "" }, "Self"},
		{"negative write quorum", func(c *CoreConfig) { c.WriteQuorum = -1 }, "write quorum"},
		{"negative read quorum", func(c *CoreConfig) { c.ReadQuorum = -2 }, "read quorum"},
		{"negative timeout", func(c *CoreConfig) { c.RequestTimeout = -time.Second }, "request timeout"},
		{"negative ae interval", func(c *CoreConfig) { c.AEInterval = -1 }, "anti-entropy interval"},
		{"negative ae partitions", func(c *CoreConfig) { c.AEPartitions = -1 }, "anti-entropy partitions"},
		{"negative hint interval", func(c *CoreConfig) { c.HintInterval = -1 }, "hint interval"},
		{"negative lease", func(c *CoreConfig) { c.InterestLease = -1 }, "interest lease"},
		{"negative skew", func(c *CoreConfig) { c.Local.MaxClockSkew = -1 }, "clock skew"},
		{"too many partitions", func(c *CoreConfig) { c.Local.Partitions = 1 << 17 }, "partitions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := CoreConfig{Self: "a"}
			tc.mod(&cfg)
			_, err := NewCore(cfg, storage.NewMem(), 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCore: err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	if _, err := NewCore(CoreConfig{Self: "a"}, storage.NewMem(), 1); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}
