// Package cliflag holds the flag conventions shared by playhead's commands
// (cmd/playhead, cmd/playhead-bench): every flag has an environment
// variable, PLAYHEAD_ and the flag name in upper case with dashes as
// underscores, and usage lists both with the default.
package cliflag

import (
	"errors"
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

// ErrUsage marks a usage error: the command printed its usage; the caller
// prints the error's message (which names what is wrong) and exits 2.
var ErrUsage = errors.New("usage")

// ErrReported marks a usage error already printed in full (by the flag
// package): the caller only exits 2.
var ErrReported = errors.New("reported")

// ParseArgs parses the command line into fs. --help (or -h) prints the
// usage to stdout and returns flag.ErrHelp. A flag error has been printed,
// with the usage, by the flag package: it returns ErrReported. A word that
// is not a flag is refused (ErrUsage): no command takes arguments, so
// "token … extra" is a mistake, not something to ignore.
func ParseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrReported, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q: every option is a flag (--name value)", ErrUsage, fs.Arg(0))
	}
	return nil
}

// Parse is ParseArgs, then a flag not given on the command line takes its
// environment variable when that is set. Precedence: flag, env, default.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := ParseArgs(fs, args, stdout); err != nil {
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
// and default, to the flag set's output (stderr, or stdout for --help).
func Usage(_ io.Writer, fs *flag.FlagSet, synopsis, about string) func() {
	return func() {
		w := fs.Output()
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
