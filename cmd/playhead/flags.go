package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envName is the environment variable that stands for a flag:
// PLAYHEAD_ and the flag name in upper case with dashes as underscores.
func envName(flagName string) string {
	return "PLAYHEAD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args into fs; a flag not given on the command line takes
// its environment variable when that is set. Precedence: flag, env, default.
//
// --help (or -h) prints the usage to stdout and returns flag.ErrHelp. A flag
// error has been printed, with the usage, by the flag package: it returns
// errReported. A word that is not a flag is refused (errUsage): no command
// takes arguments, so "token … extra" is a mistake, not something to ignore.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
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
		return fmt.Errorf("%w: %v", errReported, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q: every option is a flag (--name value)", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// usage prints a command's synopsis and its flags, each with its env var
// and default.
func usage(w io.Writer, fs *flag.FlagSet, synopsis, about string) func() {
	return func() {
		w := fs.Output() // stderr, or stdout for --help
		fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags (each also read from its environment variable):\n", synopsis, about)
		fs.VisitAll(func(f *flag.Flag) {
			def := f.DefValue
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(w, "  --%s\t%s\n  \t    env %s, default %s\n", f.Name, f.Usage, envName(f.Name), def)
		})
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
