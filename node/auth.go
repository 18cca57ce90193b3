package node

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/gossip"
)

// Device tokens (API.md "Auth"): HS256 JWTs signed with the cluster's
// secret (api.IssueToken signs them; their payload is api.Claims). The
// account comes only from the verified token, never from the URL; the URL's
// profile must be one the token allows.

// principal is who a verified token speaks for. Immutable once built (it is
// shared through the token cache).
type principal struct {
	account  string
	profiles []string // nil: every profile
	admin    bool
	exp      time.Time
}

// allows reports whether the principal may touch profile.
func (p *principal) allows(profile string) bool {
	return p.profiles == nil || slices.Contains(p.profiles, profile)
}

// ref is the shard key of one of the principal's profiles.
func (p *principal) ref(profile string) gossip.Ref {
	return gossip.Ref{Account: p.account, Profile: profile}
}

// authenticator verifies tokens and caches the verified ones.
//
// The cache is keyed by the raw token: the same bytes always carry the same
// claims, and only tokens whose signature verified are cached, so a hit is
// as good as a verification. Entries are dropped at their exp.
type authenticator struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
	max    int // cache bound; 0 disables the cache
	onHit  func(hit bool)

	mu    sync.RWMutex
	cache map[string]*principal // guarded by mu
}

func newAuthenticator(secret []byte, now func() time.Time, cacheSize int, onHit func(bool)) *authenticator {
	return &authenticator{
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // no alg=none, no RS256/HS256 confusion
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		),
		now:   now,
		max:   cacheSize,
		onHit: onHit,
		cache: map[string]*principal{},
	}
}

// bearer extracts the token of a request: the Authorization header, or the
// access_token query parameter when allowQuery (GET …/events only: browsers
// cannot set headers on a WebSocket).
func bearer(r *http.Request, allowQuery bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	if allowQuery {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

// verify returns the principal of a raw token, or a 401 error.
func (a *authenticator) verify(raw string) (*principal, error) {
	if raw == "" {
		return nil, errUnauthorized("missing token: send Authorization: Bearer <token>")
	}
	now := a.now()
	if a.max > 0 {
		a.mu.RLock()
		p, ok := a.cache[raw]
		a.mu.RUnlock()
		if ok {
			if now.Before(p.exp) {
				a.onHit(true)
				return p, nil
			}
			a.mu.Lock()
			delete(a.cache, raw)
			a.mu.Unlock()
			return nil, errUnauthorized("token expired; get a new one")
		}
		a.onHit(false)
	}
	var c api.Claims
	_, err := a.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errUnauthorized("token expired; get a new one")
	case err != nil:
		return nil, errUnauthorized("invalid token (must be an HS256 JWT signed with the cluster's secret, with acct and exp)")
	case !api.ValidID(c.Account):
		return nil, errUnauthorized("invalid token: acct must be an id (1-128 bytes of printable ASCII without '/')")
	}
	p := &principal{account: c.Account, admin: c.Admin, exp: c.ExpiresAt.Time}
	if c.Profiles != nil {
		p.profiles = slices.Clone(c.Profiles)
	}
	if a.max > 0 {
		a.mu.Lock()
		if len(a.cache) >= a.max {
			a.evictLocked(now)
		}
		a.cache[raw] = p
		a.mu.Unlock()
	}
	return p, nil
}

// evictLocked makes room: it drops expired entries and, if the cache is
// still full, an arbitrary eighth of it (they are simply verified again).
func (a *authenticator) evictLocked(now time.Time) {
	for k, p := range a.cache {
		if !now.Before(p.exp) {
			delete(a.cache, k)
		}
	}
	n := len(a.cache) - a.max*7/8
	for k := range a.cache {
		if n <= 0 {
			break
		}
		delete(a.cache, k)
		n--
	}
}
