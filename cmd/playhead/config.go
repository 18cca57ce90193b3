package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/playhead/playhead/internal/cliflag"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// A config file (--config playhead.toml) holds flags as TOML keys: the flag
// name, dashes and all (data-dir = "/var/lib/playhead"), its value a TOML
// string, integer, float, boolean, or for a list flag (join) an array of
// strings. Durations and sizes are strings ("60s", "1GiB").
//
// Precedence, highest first: the command line, the environment
// (PLAYHEAD_*), the file, the defaults.

// source says where a flag's effective value came from.
type source string

const (
	fromFlag    source = "flag"
	fromEnv     source = "env"
	fromFile    source = "file"
	fromDefault source = "default"
)

// configKeys are flags that never come from the file.
var configKeys = map[string]bool{"config": true, "print-config": true}

// parseFlagsConfig parses args into fs, then fills flags not given on the
// command line from their environment variable, then from the TOML file
// named by the --config flag (or PLAYHEAD_CONFIG). It returns where each
// flag's value came from.
func parseFlagsConfig(fs *flag.FlagSet, args []string, stdout io.Writer) (map[string]source, error) {
	if err := cliflag.ParseArgs(fs, args, stdout); err != nil {
		return nil, err
	}
	src := map[string]source{}
	fs.VisitAll(func(f *flag.Flag) { src[f.Name] = fromDefault })
	fs.Visit(func(f *flag.Flag) { src[f.Name] = fromFlag })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if src[f.Name] == fromFlag || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
			src[f.Name] = fromEnv
		}
	})
	if err != nil {
		return nil, err
	}
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return src, nil
	}
	path := cf.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %v", err)
	}
	vals, err := loadConfig(fs, path, data)
	if err != nil {
		return nil, err
	}
	for _, kv := range vals {
		if src[kv.name] != fromDefault {
			continue // the command line or the environment wins
		}
		if err := fs.Set(kv.name, kv.value); err != nil {
			return nil, fmt.Errorf("%s:%d: key %q: %v (%s)", path, kv.line, kv.name, err, allowedValue(fs.Lookup(kv.name)))
		}
		src[kv.name] = fromFile
	}
	return src, nil
}

type configValue struct {
	name, value string
	line        int
}

// loadConfig decodes a config file and checks each key names a flag of fs
// and has a value of the right kind; errors name the file, line and key,
// and say what is allowed.
func loadConfig(fs *flag.FlagSet, path string, data []byte) ([]configValue, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s (the file is TOML: key = value, one a line; see deploy/playhead.toml)", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var allowed []string
	fs.VisitAll(func(f *flag.Flag) {
		if !configKeys[f.Name] {
			allowed = append(allowed, f.Name)
		}
	})
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []configValue
	for _, k := range keys {
		line := keyLine(data, k)
		f := fs.Lookup(k)
		if f == nil || configKeys[k] {
			hint := ""
			if g := fs.Lookup(strings.ReplaceAll(k, "_", "-")); g != nil && !configKeys[g.Name] {
				hint = fmt.Sprintf(" (did you mean %q? keys are the flag names, with dashes)", g.Name)
			}
			return nil, fmt.Errorf("%s:%d: unknown key %q%s; allowed keys: %s", path, line, k, hint, strings.Join(allowed, ", "))
		}
		v, err := tomlString(raw[k], f)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: key %q: %v (%s)", path, line, k, err, allowedValue(f))
		}
		out = append(out, configValue{name: k, value: v, line: line})
	}
	slices.SortFunc(out, func(a, b configValue) int { return a.line - b.line })
	return out, nil
}

// keyLine is the line where key is assigned in a flat TOML file (0 when not
// found, e.g. written inside a table).
func keyLine(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*("` + regexp.QuoteMeta(key) + `"|` + regexp.QuoteMeta(key) + `)\s*=`)
	for i, l := range strings.Split(string(data), "\n") {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}

// tomlString turns a decoded TOML value into the flag's string form.
func tomlString(v any, f *flag.Flag) (string, error) {
	if g, ok := f.Value.(flag.Getter); ok {
		_, isBool := g.Get().(bool)
		if _, given := v.(bool); isBool != given {
			return "", fmt.Errorf("a %s is not allowed here", tomlKind(v))
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		if _, ok := f.Value.(*stringList); !ok {
			return "", errors.New("an array is only allowed for a list (join)")
		}
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("element %d of the array is %T, not a string", i, e)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("a table is not allowed: every key is top level")
	}
	return "", fmt.Errorf("a %s is not allowed", tomlKind(v))
}

func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// allowedValue describes what a flag accepts, for error messages.
func allowedValue(f *flag.Flag) string {
	if f == nil {
		return ""
	}
	switch f.Value.(type) {
	case *stringList:
		return "allowed: an array of strings, or one comma-separated string"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return `allowed: a duration string such as "60s", "5m", "720h"`
		case bool:
			return "allowed: true or false"
		case int, int64, uint, uint64:
			return "allowed: an integer"
		case float64:
			return "allowed: a number"
		}
	}
	return "allowed: a string; " + f.Usage
}

// printConfig writes the effective configuration as a TOML file a node can
// be started with, each key commented with where its value came from.
func printConfig(w io.Writer, fs *flag.FlagSet, src map[string]source) {
	fmt.Fprintln(w, "# playhead serve: the effective configuration (precedence: flag > env > file > default)")
	fs.VisitAll(func(f *flag.Flag) {
		if configKeys[f.Name] {
			return
		}
		v := f.Value.String()
		var lit string
		switch x := f.Value.(type) {
		case *stringList:
			q := make([]string, len(*x))
			for i, s := range *x {
				q[i] = strconv.Quote(s)
			}
			lit = "[" + strings.Join(q, ", ") + "]"
		default:
			lit = strconv.Quote(v)
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case bool, int, int64, uint, uint64, float64:
					lit = v
				}
			}
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", f.Name, lit, src[f.Name])
	})
}
