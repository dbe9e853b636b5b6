package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"roomd/rooms"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publicPEM(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyHS256(t *testing.T) {
	v, err := NewVerifier(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	v.SetClock(func() time.Time { return now })
	good := jwt.MapClaims{"sub": "ann", "rooms": []string{"lobby", "team-*"}, "exp": now.Add(time.Hour).Unix()}

	g, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, good))
	if err != nil {
		t.Fatal(err)
	}
	if g.UserID != "ann" || !g.CanPublish || !g.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("grant = %+v", g)
	}
	for room, want := range map[string]bool{"lobby": true, "team-a": true, "team-": true, "lobby2": false, "team": false, "other": false} {
		if g.AllowsRoom(room) != want {
			t.Errorf("AllowsRoom(%q) = %v, want %v", room, !want, want)
		}
	}

	readOnly := jwt.MapClaims{"sub": "viewer", "rooms": []string{"*"}, "publish": false}
	if g, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, readOnly)); err != nil || g.CanPublish || !g.AllowsRoom("anything") || !g.Expires.IsZero() {
		t.Errorf("read-only grant = %+v, %v", g, err)
	}

	for name, tc := range map[string]struct {
		token string
		want  string
	}{
		"empty":    {"", "no token"},
		"garbage":  {"not.a.jwt", "token malformed"},
		"too long": {strings.Repeat("a", MaxLength+1), "token longer than"},
		"expired":  {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Minute).Unix()}), "token expired"},
		// Inside the nbf leeway, but exp gets none: it would be closed at once.
		"just expired": {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": now.Add(-2 * time.Second).Unix()}), "token expired"},
		"expires now":  {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": now.Unix()}), "token expired"},
		// The admin API could not name this user to kick or unban it.
		"long sub":    {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("u", rooms.MaxIDBytes+1)}), "token sub is 129 bytes; user ids are at most 128"},
		"not yet":     {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "nbf": now.Add(time.Minute).Unix()}), "token not valid yet"},
		"wrong key":   {sign(t, jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes!"), good), "token signature invalid"},
		"no sub":      {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"rooms": []string{"*"}}), "token has no sub"},
		"alg none":    {sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), "token"},
		"wrong alg":   {sign(t, jwt.SigningMethodHS512, secret, good), "token"},
		"bad rooms":   {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "rooms": "lobby"}), "token"},
		"bad publish": {sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "publish": "no"}), "token"},
	} {
		_, err := v.Verify(tc.token)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalid saying %q", name, err, tc.want)
		}
	}
}

// Clock skew is forgiven where it would refuse a token just minted (nbf a
// little ahead), and a sub of exactly the limit is a user id like any other.
func TestVerifyEdges(t *testing.T) {
	v, err := NewVerifier(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	v.SetClock(func() time.Time { return now })
	for name, claims := range map[string]jwt.MapClaims{
		"nbf inside the leeway": {"sub": "a", "nbf": now.Add(3 * time.Second).Unix()},
		"exp a second ahead":    {"sub": "a", "exp": now.Add(time.Second).Unix()},
		"128-byte sub":          {"sub": strings.Repeat("u", rooms.MaxIDBytes)},
	} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims)); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
}

func TestVerifyPublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := jwt.MapClaims{"sub": "bob", "rooms": []string{"r"}}

	rv, err := NewVerifier(nil, publicPEM(t, &rsaKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := rv.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims)); err != nil || g.UserID != "bob" {
		t.Errorf("RS256: %+v %v", g, err)
	}
	// The classic confusion: an HS256 token "signed" with the public key.
	pemKey := publicPEM(t, &rsaKey.PublicKey)
	if _, err := rv.Verify(sign(t, jwt.SigningMethodHS256, pemKey, claims)); !errors.Is(err, ErrInvalid) {
		t.Errorf("HS256 signed with the RSA public key was accepted: %v", err)
	}

	ev, err := NewVerifier(nil, publicPEM(t, &ecKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := ev.Verify(sign(t, jwt.SigningMethodES256, ecKey, claims)); err != nil || g.UserID != "bob" {
		t.Errorf("ES256: %+v %v", g, err)
	}
	if _, err := ev.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims)); !errors.Is(err, ErrInvalid) {
		t.Errorf("RS256 token accepted by an ES256 verifier: %v", err)
	}
}

func TestNewVerifierRefusesWeakOrOddKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, tc := range map[string]struct{ secret, pem []byte }{
		"nothing":      {nil, nil},
		"short secret": {[]byte("short"), nil},
		"not pem":      {nil, []byte("hello")},
		"P-384":        {nil, publicPEM(t, &p384.PublicKey)},
	} {
		if _, err := NewVerifier(tc.secret, tc.pem); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic
// and never accept anything not signed with the secret.
func FuzzVerify(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	f.Add(sign(f, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ann", "rooms": []string{"*"}}))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	v, err := NewVerifier(secret, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		g, err := v.Verify(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		// Accepted: it must really carry an HS256 signature by the secret.
		if _, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil || g.UserID == "" {
			t.Fatalf("accepted a token jwt itself rejects: %v", err)
		}
		if len(g.UserID) > rooms.MaxIDBytes {
			t.Fatalf("accepted a %d-byte sub", len(g.UserID))
		}
	})
}
