// Package js embeds the JavaScript SDK (plain ES modules in this
// directory) so that every node serves it at /sdk/ (see node/web.go).
package js

import "embed"

// FS holds playhead.js, hlc.js, queue.js and tracker.js.
//
//go:embed *.js
var FS embed.FS
