package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"roomd/rooms"
	"roomd/wsedge/token"
)

// secretEnv holds the HS256 secret, as ROOMD_JWT_SECRET does roomd's.
const secretEnv = envPrefix + "JWT_SECRET"

var gentokenCmd = &command{
	path:    "gentoken",
	summary: "mint a client token (HS256 JWT) for development",
	help: `Signs a token with roomd's -jwt-secret, which a client passes as
?token= (ws://host/ws/lobby?token=...). Prints the token alone, so that
TOKEN=$(roomctl gentoken ...) works; -o json adds what it grants. It needs
no server.

The secret comes from -secret, -secret-file (surrounding whitespace
trimmed) or ` + secretEnv + `, which keeps it out of ps and shell
history. Tokens for production come from the application's own backend;
this is for trying roomd out and for tests.`,
	setup: func(fs *flag.FlagSet) action {
		user := fs.String("user", "", "the user id, the token's sub (required)")
		roomList := fs.String("rooms", "", `comma-separated rooms the token may join: ids, "prefix*" patterns, "*" for every room (required)`)
		ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid (its exp); 0: it never expires")
		readOnly := fs.Bool("read-only", false, "the holder receives but may not send (publish: false)")
		secret := fs.String("secret", "", "roomd's -jwt-secret (prefer "+secretEnv+": flags show in ps)")
		secretFile := fs.String("secret-file", "", "file holding the secret, surrounding whitespace trimmed")
		return func(_ context.Context, s *session, _ []string) error {
			key, err := hmacSecret(*secret, *secretFile, s.getenv(secretEnv))
			if err != nil {
				return err
			}
			patterns, err := roomPatterns(*roomList)
			if err != nil {
				return err
			}
			switch {
			case *user == "":
				return usageErrorf("-user is required: the user id the token is for")
			case *ttl < 0:
				return usageErrorf("-ttl must not be negative, got %v", *ttl)
			}
			now := time.Now()
			claims := token.Claims{
				RegisteredClaims: jwt.RegisteredClaims{Subject: *user, IssuedAt: jwt.NewNumericDate(now)},
				Rooms:            patterns,
			}
			if *ttl > 0 {
				claims.ExpiresAt = jwt.NewNumericDate(now.Add(*ttl))
			}
			if *readOnly {
				publish := false
				claims.Publish = &publish
			}
			signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
			if err != nil {
				return err
			}
			grant, err := checkToken(key, signed)
			if err != nil {
				return err
			}
			if !s.json() {
				_, err = fmt.Fprintln(s.stdout, signed)
				return err
			}
			return printGrant(s, signed, grant)
		}
	},
}

// hmacSecret is the secret from whichever one place it was given.
func hmacSecret(flagValue, file, env string) ([]byte, error) {
	switch {
	case flagValue != "" && file != "":
		return nil, usageErrorf("-secret and -secret-file are both given; give one")
	case flagValue != "":
		return []byte(flagValue), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErrorf("-secret-file: %v", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	case env != "":
		return []byte(env), nil
	}
	return nil, usageErrorf("no secret: give roomd's -jwt-secret as %s, -secret-file or -secret", secretEnv)
}

// roomPatterns splits -rooms. A token without rooms joins none, and an
// entry with a character no room id has would match none: both are
// mistakes to say now, not at the client's 4403.
func roomPatterns(list string) ([]string, error) {
	var patterns []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if id := strings.TrimSuffix(p, "*"); id != "" {
			if err := rooms.ValidateRoomID(id); err != nil {
				return nil, usageErrorf("-rooms %q: %v", p, err)
			}
		}
		patterns = append(patterns, p)
	}
	if len(patterns) == 0 {
		return nil, usageErrorf(`-rooms is required: the rooms the token may join ("*" for every room)`)
	}
	return patterns, nil
}

// checkToken verifies the token as roomd does, with roomd's own verifier,
// so that what roomd would refuse (a secret under 32 bytes, a user id
// over 128) is refused here, in roomd's words.
func checkToken(key []byte, signed string) (*token.Grant, error) {
	v, err := token.NewVerifier(key, nil)
	if err != nil {
		return nil, usageErrorf("the secret: %v", err)
	}
	grant, err := v.Verify(signed)
	if err != nil {
		return nil, usageErrorf("roomd would refuse this token: %v", err)
	}
	return grant, nil
}

// printGrant is gentoken -o json: the token and what it grants, with the
// REST API's lowerCamelCase names.
func printGrant(s *session, signed string, g *token.Grant) error {
	out := struct {
		Token      string     `json:"token"`
		User       string     `json:"user"`
		Rooms      []string   `json:"rooms"`
		Publish    bool       `json:"publish"`
		ExpireTime *time.Time `json:"expireTime,omitempty"`
	}{Token: signed, User: g.UserID, Rooms: g.Rooms, Publish: g.CanPublish}
	if !g.Expires.IsZero() {
		utc := g.Expires.UTC()
		out.ExpireTime = &utc
	}
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
