package api

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Device tokens (docs/API.md "Auth"): HS256 JWTs signed with the cluster's
// secret. The node verifies them (node/auth.go); operators, tests and the
// bench sign them here without linking the server.

// MinSecretBytes is the shortest accepted auth secret (HS256 wants at least
// the hash's size).
const MinSecretBytes = 32

// Claims is a device token's JWT payload (docs/API.md "Auth").
type Claims struct {
	Account string `json:"acct"`
	// Profiles, when present (even empty), lists the only profiles the
	// token may touch; absent means every profile of the account.
	Profiles []string `json:"profiles,omitempty"`
	Admin    bool     `json:"admin,omitempty"`
	jwt.RegisteredClaims
}

// IssueToken returns a device token for account, valid for ttl from now.
// profiles, if non-empty, restricts the token to those profiles; admin
// allows the cluster endpoints. The secret must be at least MinSecretBytes.
func IssueToken(secret []byte, account string, profiles []string, admin bool, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("api: the auth secret is %d bytes; it must be at least %d", len(secret), MinSecretBytes)
	}
	if !ValidID(account) {
		return "", fmt.Errorf("api: account %q is not an id (1-%d bytes of printable ASCII without '/')", account, MaxIDLen)
	}
	for _, p := range profiles {
		if !ValidID(p) {
			return "", fmt.Errorf("api: profile %q is not an id (1-%d bytes of printable ASCII without '/')", p, MaxIDLen)
		}
	}
	if ttl <= 0 {
		return "", fmt.Errorf("api: token ttl must be positive, got %v", ttl)
	}
	c := Claims{
		Account: account,
		Admin:   admin,
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if len(profiles) > 0 {
		c.Profiles = profiles
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
