package node

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Cross-origin requests (CORS): a player served from another origin calls
// the API from a browser. Config.CORSOrigins lists the origins allowed; the
// node answers every preflight (OPTIONS with Access-Control-Request-Method)
// itself, on every route, and adds the Access-Control-* headers to the
// answers of allowed origins. A request from an origin not listed gets no
// CORS header at all (the browser then refuses it), and its preflight a
// 403 saying which flag to set.

// CORSAny in Config.CORSOrigins allows every origin.
const CORSAny = "*"

// corsAllowHeaders are the request headers the SDKs send (client/ and
// client/js/): the token, JSON bodies, the device's HLC and seen version,
// the SSE resume id, a caller's request id.
const corsAllowHeaders = "Authorization, Content-Type, Accept, Playhead-HLC, Playhead-Seen, Last-Event-ID, X-Request-Id"

// corsExposeHeaders are the response headers the SDKs read.
const corsExposeHeaders = "Playhead-HLC, Retry-After, X-Request-Id, WWW-Authenticate"

// corsMethods are the methods of API.md.
const corsMethods = "GET, PUT, POST, DELETE, OPTIONS"

// corsMaxAge is how long (seconds) a browser may cache a preflight.
const corsMaxAge = "600"

// checkOrigins validates Config.CORSOrigins: "*" or scheme://host[:port].
func checkOrigins(origins []string) error {
	for _, o := range origins {
		if o == CORSAny {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("CORS origin %q must be * or scheme://host[:port], e.g. https://player.example.com", o)
		}
	}
	return nil
}

// corsPolicy decides which origins may call the API.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

func newCORSPolicy(origins []string) corsPolicy {
	p := corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		if o == CORSAny {
			p.any = true
		}
		p.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	return p
}

func (p corsPolicy) allows(origin string) bool {
	return origin != "" && (p.any || p.origins[strings.ToLower(origin)])
}

// cors wraps the mux: it answers preflights and stamps the CORS headers.
func (n *Node) cors(next http.Handler) http.Handler {
	p := newCORSPolicy(n.cfg.CORSOrigins)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		if origin != "" {
			h.Add("Vary", "Origin")
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !p.allows(origin) {
			if preflight {
				writeError(w, errForbidden("origin "+truncate(origin)+" may not call this API from a browser; add it to --cors-origins (PLAYHEAD_CORS_ORIGINS)"))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		// Tokens travel in the Authorization header, never in cookies:
		// no Allow-Credentials, so "*" is safe to echo as the origin.
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
