package main

import "github.com/playhead/playhead/internal/cliflag"

// The flag conventions (internal/cliflag): every flag has an environment
// variable, PLAYHEAD_ + the flag name upper-cased with dashes as underscores.
var (
	envName    = cliflag.EnvName
	parseFlags = cliflag.Parse
	usage      = cliflag.Usage
)

// stringList is a repeatable string flag.
type stringList = cliflag.StringList
