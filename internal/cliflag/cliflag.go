// Package cliflag holds the flag conventions shared by playhead's commands
// (cmd/playhead, cmd/playhead-bench): every flag has an environment
// variable, PLAYHEAD_ and the flag name in upper case with dashes as
// underscores, and usage lists both with the default.
package cliflag

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvName is the environment variable that stands for a flag.
func EnvName(flagName string) string {
	return "PLAYHEAD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs; a flag not given on the command line takes
// its environment variable when that is set. Precedence: flag, env, default.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// Usage prints a command's synopsis and its flags, each with its env var
// and default.
func Usage(w io.Writer, fs *flag.FlagSet, synopsis, about string) func() {
	return func() {
		fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags (each also read from its environment variable):\n", synopsis, about)
		fs.VisitAll(func(f *flag.Flag) {
			def := f.DefValue
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(w, "  --%s\t%s\n  \t    env %s, default %s\n", f.Name, f.Usage, EnvName(f.Name), def)
		})
	}
}

// StringList is a repeatable string flag.
type StringList []string

func (s *StringList) String() string { return strings.Join(*s, ",") }

func (s *StringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
