package baseline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// tokenCacheSize bounds the verified-token cache, as playhead's.
const tokenCacheSize = 10_000

var errToken = errors.New("baseline: bad token")

// claims of a device token (playhead's format: HS256 JWT, acct, profiles,
// exp).
type claims struct {
	Account  string   `json:"acct"`
	Profiles []string `json:"profiles"`
	Exp      int64    `json:"exp"`
}

// authenticator verifies HS256 tokens and caches the verified ones by raw
// text until their exp, as playhead does, so neither side pays HMAC on
// every request.
type authenticator struct {
	secret []byte
	mu     sync.RWMutex
	cache  map[string]*claims // guarded by mu
}

func newAuthenticator(secret []byte) *authenticator {
	return &authenticator{secret: secret, cache: map[string]*claims{}}
}

func (a *authenticator) verify(tok string, now time.Time) (*claims, error) {
	a.mu.RLock()
	c, ok := a.cache[tok]
	a.mu.RUnlock()
	if ok && now.Unix() < c.Exp {
		return c, nil
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errToken
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errToken
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return nil, errToken
	}
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(tok[:len(parts[0])+1+len(parts[1])]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return nil, errToken
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errToken
	}
	c = &claims{}
	if json.Unmarshal(body, c) != nil || c.Account == "" || c.Exp == 0 || now.Unix() >= c.Exp {
		return nil, errToken
	}
	a.mu.Lock()
	if len(a.cache) >= tokenCacheSize {
		clear(a.cache) // crude but bounded; tokens re-verify once
	}
	a.cache[tok] = c
	a.mu.Unlock()
	return c, nil
}

func (c *claims) allows(profile string) bool {
	return c.Profiles == nil || slices.Contains(c.Profiles, profile)
}
