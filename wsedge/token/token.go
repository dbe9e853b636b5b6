// Package token verifies the signed tokens browsers present to join rooms.
//
// A token is a JWT (HS256 with a shared secret, or RS256/ES256 with the
// issuer's public key). Its claims: sub is the user id; rooms lists the rooms
// it may join, each an exact room id or a "prefix*" pattern ("*" alone is any
// room); exp and nbf bound when it is valid (exp is optional: a token without
// one never expires); publish false makes a read-only member.
//
// Clock skew between the issuer and this server is forgiven for nbf only: a
// token whose exp has passed on this server's clock is refused, since the
// connection it opened would be closed at exp anyway, right after its
// member had been announced to the room.
package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"roomd/rooms"
)

// MaxLength bounds a token before it is parsed at all.
const MaxLength = 4096

// leeway absorbs clock skew between the token issuer and this server for
// nbf (a token minted just now by an issuer whose clock runs ahead). It does
// not extend exp: see the package comment.
const leeway = 5 * time.Second

// ErrInvalid is the kind of every verification failure; the message says
// what was wrong in words fit for a close reason.
var ErrInvalid = errors.New("invalid token")

// Claims is the JSON payload of a client token.
type Claims struct {
	jwt.RegisteredClaims
	Rooms   []string `json:"rooms,omitempty"`
	Publish *bool    `json:"publish,omitempty"`
}

// Grant is what a verified token allows.
type Grant struct {
	UserID string
	// Rooms are exact ids or "prefix*" patterns.
	Rooms []string
	// CanPublish is false for read-only members.
	CanPublish bool
	// Expires is zero for a token without exp.
	Expires time.Time
}

// AllowsRoom reports whether the token lets its holder join roomID.
func (g *Grant) AllowsRoom(roomID string) bool {
	for _, pattern := range g.Rooms {
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			if strings.HasPrefix(roomID, prefix) {
				return true
			}
		} else if pattern == roomID {
			return true
		}
	}
	return false
}

// Verifier checks tokens against the configured keys.
type Verifier struct {
	secret    []byte
	publicKey any
	methods   []string
	now       func() time.Time
}

// NewVerifier returns a verifier for HS256 tokens signed with secret and/or
// RS256 or ES256 tokens signed by the holder of publicKeyPEM (a PKIX "PUBLIC
// KEY" block, RSA or P-256). Either may be empty, not both.
func NewVerifier(secret, publicKeyPEM []byte) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	if len(secret) > 0 {
		if len(secret) < 32 {
			return nil, fmt.Errorf("the HS256 secret is %d bytes; use at least 32", len(secret))
		}
		v.secret = secret
		v.methods = append(v.methods, "HS256")
	}
	if len(publicKeyPEM) > 0 {
		block, _ := pem.Decode(publicKeyPEM)
		if block == nil {
			return nil, errors.New("the public key is not PEM")
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the public key: %w", err)
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.methods = append(v.methods, "RS256")
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, errors.New("the ECDSA public key must be on P-256 (ES256)")
			}
			v.methods = append(v.methods, "ES256")
		default:
			return nil, fmt.Errorf("the public key is a %T; want RSA or ECDSA P-256", key)
		}
		v.publicKey = key
	}
	if len(v.methods) == 0 {
		return nil, errors.New("no secret and no public key")
	}
	return v, nil
}

// SetClock replaces time.Now, for tests.
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// Verify checks a token and returns what it grants. Errors are of kind
// ErrInvalid with a message fit for a close reason.
func (v *Verifier) Verify(raw string) (*Grant, error) {
	if raw == "" {
		return nil, invalid("no token: pass ?token=")
	}
	if len(raw) > MaxLength {
		return nil, invalid("token longer than %d bytes", MaxLength)
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, v.key,
		jwt.WithValidMethods(v.methods), jwt.WithLeeway(leeway), jwt.WithTimeFunc(v.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, invalid("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, invalid("token not valid yet")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, invalid("token signature invalid")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, invalid("token malformed")
	case err != nil:
		return nil, invalid("token rejected")
	}
	// The parser allowed exp the leeway meant for nbf.
	if claims.ExpiresAt != nil && !v.now().Before(claims.ExpiresAt.Time) {
		return nil, invalid("token expired")
	}
	switch n := len(claims.Subject); {
	case n == 0:
		return nil, invalid("token has no sub")
	case n > rooms.MaxIDBytes:
		// The admin API takes user ids of at most this, so a longer one
		// could neither be kicked by user nor unbanned.
		return nil, invalid("token sub is %d bytes; user ids are at most %d", n, rooms.MaxIDBytes)
	}
	g := &Grant{UserID: claims.Subject, Rooms: claims.Rooms, CanPublish: claims.Publish == nil || *claims.Publish}
	if claims.ExpiresAt != nil {
		g.Expires = claims.ExpiresAt.Time
	}
	return g, nil
}

func (v *Verifier) key(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		return v.secret, nil
	}
	return v.publicKey, nil
}

// verifyError is an ErrInvalid whose message stands alone ("token expired").
type verifyError string

func (e verifyError) Error() string        { return string(e) }
func (e verifyError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return verifyError(fmt.Sprintf(format, args...))
}
