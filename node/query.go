package node

import (
	"net/http"
	"path"
	"slices"
	"strings"
)

// queryParams lists, per route pattern (as registered in server.go), the
// query parameters the endpoint reads. Every other parameter is refused with
// 400 bad_request before the handler runs: a typo such as
// DELETE …/history?vidoe=a must not be read as "no parameter" and wipe the
// whole history. A route that reads no parameter has an empty list.
//
// The operations endpoints without a token (/healthz, /readyz, /metrics)
// are not checked: probes and scrapers add parameters of their own, and
// those endpoints change nothing.
//
// TestEveryRouteDeclaresItsQuery checks that every route of server.go is
// listed here.
var queryParams = map[string][]string{
	"GET /v1/cluster":      {},
	"GET /v1/node":         {},
	"POST /v1/node/backup": {},

	"PUT /v1/profiles/{profile}/positions/{video}":         {},
	"GET /v1/profiles/{profile}/positions/{video}":         {"replica"},
	"POST /v1/profiles/{profile}/positions":                {},
	"PUT /v1/profiles/{profile}/positions/{video}/watched": {},

	"GET /v1/profiles/{profile}/changes": {"after", "since", "wait", "include", "poll"},
	"GET /v1/profiles/{profile}/events":  {"after", "access_token", "omit_device"},

	"GET /v1/profiles/{profile}/continue-watching":            {"limit"},
	"DELETE /v1/profiles/{profile}/continue-watching/{video}": {},
	"GET /v1/profiles/{profile}/history":                      {"limit", "page", "from", "to", "q"},
	"DELETE /v1/profiles/{profile}/history":                   {"video"},
	"DELETE /v1/profiles/{profile}/history/{entry_id}":        {},
	"GET /v1/profiles/{profile}/export":                       {},

	"GET /v1/profiles/{profile}/settings": {},
	"PUT /v1/profiles/{profile}/settings": {},
}

// checkQuery refuses a query parameter the route does not read. Routes not
// in queryParams are not checked (the test above keeps that set empty).
func checkQuery(r *http.Request) *apiError {
	allowed, ok := queryParams[r.Pattern]
	if !ok || r.URL.RawQuery == "" { // nothing to parse (most requests)
		return nil
	}
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return errBadRequest("unknown query parameter %q: this endpoint takes no query parameters", truncate(name))
			}
			return errBadRequest("unknown query parameter %q: this endpoint takes %s", truncate(name), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// canonical answers a JSON 400 for a path that is not in canonical form
// (a "." or ".." segment, an empty segment, a trailing slash), instead of
// the HTML redirect http.ServeMux would send: ids "." and ".." would be
// written by one call and unreachable by the next.
func canonical(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p != "" && p != "/" && path.Clean(p) != p {
			writeError(w, errBadRequest("path %q is not canonical: ids \".\" and \"..\", empty segments and a trailing slash are not allowed; send the path as the API documents it", truncate(p)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
