package node

import (
	"io/fs"
	"mime"
	"net/http"
	"path"

	js "github.com/playhead/playhead/client/js"
	"github.com/playhead/playhead/web"
)

// The demo page and the JavaScript SDK, embedded in the binary (no token:
// they hold no data; the page asks for a token in its URL fragment).
//
//	GET /             the page (web/index.html); ?pane=tv or ?pane=phone for one pane
//	GET /ui/{file}    its script and style
//	GET /sdk/{file}   the SDK's ES modules (client/js/*.js)
func (n *Node) mountWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveEmbedded(w, r, web.FS, "index.html")
	})
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveEmbedded(w, r, web.FS, r.PathValue("file"))
	})
	mux.HandleFunc("GET /sdk/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveEmbedded(w, r, js.FS, r.PathValue("file"))
	})
}

func serveEmbedded(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil || name == "embed.go" {
		writeError(w, errNotFound("no such file: %s", truncate(name)))
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if path.Ext(name) == ".html" {
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:")
		h.Set("Referrer-Policy", "no-referrer")
	}
	w.Write(b)
}
