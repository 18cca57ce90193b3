package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/playhead/playhead/gossip"
)

// buildHandler is the one place that builds the HTTP mux: every endpoint of
// API.md, with the auth and rate-limit class of each.
func (n *Node) buildHandler() http.Handler {
	mux := http.NewServeMux()

	// Operations: no token.
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/cluster", n.authed(n.cluster))
	mux.Handle("GET /v1/node", n.authed(n.nodeInfo))
	mux.Handle("POST /v1/node/backup", n.authed(n.backup))

	// Positions. Writes are rate limited per (account, device) inside the
	// handler, once the device is known from the body.
	mux.Handle("PUT /v1/profiles/{profile}/positions/{video}", n.profile(limitDevice, n.putPosition))
	mux.Handle("GET /v1/profiles/{profile}/positions/{video}", n.profile(limitAccount, n.getPosition))
	mux.Handle("POST /v1/profiles/{profile}/positions", n.profile(limitDevice, n.postPositions))

	// Push.
	mux.Handle("GET /v1/profiles/{profile}/changes", n.profile(limitAccount, n.changes))
	mux.Handle("GET /v1/profiles/{profile}/events", n.profile(limitAccountQueryToken, n.events))

	// Continue watching and history.
	mux.Handle("GET /v1/profiles/{profile}/continue-watching", n.profile(limitAccount, n.continueWatching))
	mux.Handle("GET /v1/profiles/{profile}/history", n.profile(limitAccount, n.history))
	mux.Handle("DELETE /v1/profiles/{profile}/history", n.profile(limitAccount, n.deleteHistory))
	mux.Handle("DELETE /v1/profiles/{profile}/history/{entry_id}", n.profile(limitAccount, n.deleteEntry))

	// Settings.
	mux.Handle("GET /v1/profiles/{profile}/settings", n.profile(limitAccount, n.getSettings))
	mux.Handle("PUT /v1/profiles/{profile}/settings", n.profile(limitAccount, n.putSettings))

	n.viewerRoutes(mux)

	// The demo page and the JavaScript SDK (web.go).
	n.mountWeb(mux)

	// CORS outermost (inside the metrics), so that every answer — an
	// error from canonical included — carries its headers.
	return n.instrument(n.cors(canonical(mux)))
}

// limitClass says how a route is authenticated and rate limited.
type limitClass int

const (
	limitAccount           limitClass = iota // per-account bucket before the handler
	limitAccountQueryToken                   // same, and the token may come in ?access_token=
	limitDevice                              // per-(account, device) buckets, taken by the handler
)

// call is one authenticated request to a profile's endpoint.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	p     *principal
	ref   gossip.Ref
	reqID string // for logs
}

// profileHandler serves a profile endpoint; an error it returns is
// answered as JSON (apiError, or a service error mapped by serviceError).
type profileHandler func(c *call) error

// profile wraps a profile endpoint: authenticate (401), check the profile
// id (400) and that the token allows it (403, no data), rate limit (429),
// then run h and answer its error.
func (n *Node) profile(class limitClass, h profileHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := n.authenticate(w, r, class == limitAccountQueryToken)
		if err != nil {
			n.fail(w, r, err)
			return
		}
		if e := checkQuery(r); e != nil {
			n.fail(w, r, e)
			return
		}
		profile := r.PathValue("profile")
		if e := checkID("profile", profile); e != nil {
			n.fail(w, r, e)
			return
		}
		if !p.allows(profile) {
			n.fail(w, r, errForbidden("this token does not allow profile "+truncate(profile)))
			return
		}
		if class != limitDevice {
			if err := n.limitAccount(p.account); err != nil {
				n.fail(w, r, err)
				return
			}
		}
		if err := n.serving(r, p); err != nil {
			n.fail(w, r, err)
			return
		}
		c := &call{w: w, r: r, p: p, ref: p.ref(profile)}
		if rw, ok := w.(*respWriter); ok {
			c.reqID = rw.reqID
		}
		if err := h(c); err != nil {
			n.fail(w, r, err)
		}
	})
}

// authed wraps an endpoint that needs a token but no profile.
func (n *Node) authed(h func(w http.ResponseWriter, r *http.Request, p *principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := n.authenticate(w, r, false)
		if err == nil {
			if e := checkQuery(r); e != nil {
				err = e
			}
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			n.fail(w, r, err)
		}
	})
}

func (n *Node) authenticate(w http.ResponseWriter, r *http.Request, allowQuery bool) (*principal, error) {
	p, err := n.auth.verify(bearer(r, allowQuery))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="playhead"`)
		return nil, err
	}
	if rw, ok := w.(*respWriter); ok {
		rw.account = p.account
	}
	return p, nil
}

// limitAccount takes a token from the account's bucket.
func (n *Node) limitAccount(account string) error {
	if ok, retry := n.accountLimit.allow(account, n.clock.NowMs()); !ok {
		n.metrics.rateLimited.WithLabelValues("account").Inc()
		return errRateLimited(retry)
	}
	return nil
}

// limitDevices takes one token from the bucket of each distinct device.
func (n *Node) limitDevices(account string, devices ...string) error {
	if !n.deviceLimit.enabled() {
		return nil
	}
	now := n.clock.NowMs()
	seen := make(map[string]struct{}, len(devices))
	for _, d := range devices {
		if _, dup := seen[d]; dup {
			continue
		}
		seen[d] = struct{}{}
		if ok, retry := n.deviceLimit.allow(account+"\x00"+d, now); !ok {
			n.metrics.rateLimited.WithLabelValues("device").Inc()
			return errRateLimited(retry)
		}
	}
	return nil
}

// fail answers err. Unexpected errors are logged with the request id.
func (n *Node) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := serviceError(err)
	if e.status >= 500 {
		id := ""
		if rw, ok := w.(*respWriter); ok {
			id = rw.reqID
		}
		n.log.Warn("request failed", "request_id", id, "method", r.Method, "route", r.Pattern, "status", e.status, "err", err)
	}
	writeError(w, e)
}

// serving refuses profile requests while a cluster node is not part of its
// ring (readyCheck, the same test as /readyz): 503 with Retry-After, never
// an answer from a node that is cut off. An admin's ?replica=local read is
// let through: it asks what this replica holds, which is what an operator
// needs while the node is out.
func (n *Node) serving(r *http.Request, p *principal) error {
	if n.readyCheck == nil {
		return nil
	}
	if p.admin && r.Method == http.MethodGet && r.URL.Query().Get("replica") == "local" {
		return nil
	}
	if err := n.readyCheck(); err != nil {
		return errUnavailable("this node is not serving: "+err.Error()+"; retry, or use another node", nil)
	}
	return nil
}
