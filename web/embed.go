// Package web holds the page every node serves at / (index.html, app.js,
// style.css): a "TV" and a "phone" pane that use the JavaScript SDK
// (client/js, served at /sdk/) to stay in step. node/web.go mounts it.
package web

import "embed"

// FS holds the page's files.
//
//go:embed index.html app.js style.css
var FS embed.FS
