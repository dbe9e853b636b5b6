package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/wsedge/token"
)

const testSecret = "0123456789abcdef0123456789abcdef-roomctl"

// mint runs gentoken with the secret in ROOMCTL_JWT_SECRET and returns the
// token it printed.
func mint(t *testing.T, args ...string) string {
	t.Helper()
	r := invocation{env: map[string]string{"ROOMCTL_JWT_SECRET": testSecret}}.run(t, append([]string{"gentoken"}, args...)...)
	if r.code != exitOK || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("roomctl gentoken %s:\n%v", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

func verify(t *testing.T, tok string) *token.Grant {
	t.Helper()
	v, err := token.NewVerifier([]byte(testSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("roomd's verifier refused the token: %v", err)
	}
	return g
}

func TestGentokenVerifies(t *testing.T) {
	before := time.Now()
	g := verify(t, mint(t, "-user", "ann", "-rooms", "lobby, team-*", "-ttl", "1h"))
	if g.UserID != "ann" || !slices.Equal(g.Rooms, []string{"lobby", "team-*"}) || !g.CanPublish {
		t.Fatalf("grant %+v", g)
	}
	if left := g.Expires.Sub(before); left < 59*time.Minute || left > time.Hour+time.Second {
		t.Fatalf("a -ttl 1h token expires in %v", left)
	}

	g = verify(t, mint(t, "-user", "bob", "-rooms", "*", "-ttl", "0", "-read-only"))
	if !g.Expires.IsZero() || g.CanPublish || !g.AllowsRoom("anything") {
		t.Fatalf("-ttl 0 -read-only -rooms '*': grant %+v", g)
	}

	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := offline(t, "gentoken", "-secret-file", file, "-user", "cy", "-rooms", "lobby", "-o", "json")
	var out struct {
		Token      string
		User       string
		Rooms      []string
		Publish    bool
		ExpireTime time.Time
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); r.code != exitOK || err != nil {
		t.Fatalf("gentoken -o json (%v):\n%v", err, r)
	}
	if g := verify(t, out.Token); g.UserID != "cy" || out.User != "cy" || !slices.Equal(out.Rooms, []string{"lobby"}) || !out.Publish || !out.ExpireTime.Equal(g.Expires) {
		t.Fatalf("gentoken -o json printed\n%s", r.stdout)
	}
	if left := time.Until(out.ExpireTime); left < 23*time.Hour {
		t.Fatalf("the default -ttl gave a token that expires in %v, want 24h", left)
	}
}

// TestGentokenJoins connects with minted tokens to a roomd that checks
// them.
func TestGentokenJoins(t *testing.T) {
	s := startRoomd(t, "-jwt-secret", testSecret)
	dial := func(room, tok string) *websocket.Conn {
		t.Helper()
		u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws/" + room, RawQuery: "token=" + url.QueryEscape(tok)}
		ws, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
		if err != nil {
			t.Fatalf("joining %s with a minted token: %v", room, err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}

	ann := dial("lobby", mint(t, "-user", "ann", "-rooms", "lobby"))
	var clients roomdv1.ListClientsResponse
	eventually(t, "ann is in lobby", func() bool {
		s.okJSON(t, &clients, "clients", "list", "lobby")
		return len(clients.Clients) == 1 && clients.Clients[0].UserId == "ann"
	})
	if err := ann.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, ann); got.data != "hello" {
		t.Fatalf("ann's echo: %+v", got)
	}

	expectClose(t, dial("elsewhere", mint(t, "-user", "ann", "-rooms", "lobby")), 4403, "room elsewhere is not in your token")

	reader := dial("lobby", mint(t, "-user", "rea", "-rooms", "lobby", "-read-only"))
	if err := reader.WriteMessage(websocket.TextMessage, []byte("may I?")); err != nil {
		t.Fatal(err)
	}
	reader.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := reader.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 1008) {
				t.Fatalf("a read-only member that sent: %v, want close 1008", err)
			}
			break
		}
	}

	wrong := invocation{env: map[string]string{"ROOMCTL_JWT_SECRET": strings.Repeat("x", 32)}}.run(t, "gentoken", "-user", "ann", "-rooms", "lobby")
	expectClose(t, dial("lobby", strings.TrimSpace(wrong.stdout)), 4401, "token signature invalid")
}

func TestGentokenRefuses(t *testing.T) {
	secret := map[string]string{"ROOMCTL_JWT_SECRET": testSecret}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no secret", nil, []string{"-user", "ann", "-rooms", "lobby"}, "roomctl: no secret: give roomd's -jwt-secret as ROOMCTL_JWT_SECRET, -secret-file or -secret\n"},
		{"short secret", nil, []string{"-secret", "short", "-user", "ann", "-rooms", "lobby"}, "roomctl: the secret: the HS256 secret is 5 bytes; use at least 32\n"},
		{"no user", secret, []string{"-rooms", "lobby"}, "roomctl: -user is required"},
		{"no rooms", secret, []string{"-user", "ann", "-rooms", " , "}, "roomctl: -rooms is required"},
		{"bad room", secret, []string{"-user", "ann", "-rooms", "lobby,game room"}, `roomctl: -rooms "game room": invalid room id`},
		{"long user", secret, []string{"-user", strings.Repeat("u", 129), "-rooms", "lobby"}, "roomctl: roomd would refuse this token: token sub is 129 bytes; user ids are at most 128\n"},
		{"negative ttl", secret, []string{"-user", "ann", "-rooms", "lobby", "-ttl", "-1h"}, "roomctl: -ttl must not be negative"},
		{"missing secret file", nil, []string{"-secret-file", "/nonexistent/secret", "-user", "ann", "-rooms", "lobby"}, "roomctl: -secret-file: open /nonexistent/secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, invocation{env: c.env}.run(t, append([]string{"gentoken"}, c.args...)...), exitUsage, c.want)
		})
	}
}
