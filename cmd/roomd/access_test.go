package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomdv1 "roomd/gen/roomd/v1"
)

const testSecret = "test-secret-of-at-least-32-bytes!!"

func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialRefused expects the upgrade to succeed and the server to close at
// once with code, its reason containing reason.
func dialRefused(t *testing.T, s *testServer, room, query string, code int, reason string) {
	t.Helper()
	ws := s.dial(t, room, query)
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Text, reason) {
		t.Fatalf("%s?%s: got %v, want close %d containing %q", room, query, err, code, reason)
	}
}

func TestClientTokens(t *testing.T) {
	s := startServer(t, "-jwt-secret", testSecret)
	future := time.Now().Add(time.Hour).Unix()
	ann := hs256(t, jwt.MapClaims{"sub": "ann", "rooms": []string{"lobby", "team-*"}, "exp": future})

	t.Run("refusals close with 4401 or 4403", func(t *testing.T) {
		dialRefused(t, s, "lobby", "", 4401, "no token")
		dialRefused(t, s, "lobby", "user=ann", 4401, "no token") // ?user= means nothing now
		dialRefused(t, s, "lobby", "token=nonsense", 4401, "token malformed")
		dialRefused(t, s, "lobby", "token="+hs256(t, jwt.MapClaims{"sub": "ann", "rooms": []string{"*"}, "exp": time.Now().Add(-time.Hour).Unix()}), 4401, "token expired")
		forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ann", "rooms": []string{"*"}}).SignedString([]byte("some-other-secret-of-32-bytes-or-more"))
		dialRefused(t, s, "lobby", "token="+forged, 4401, "signature")
		dialRefused(t, s, "elsewhere", "token="+ann, 4403, "room elsewhere is not in your token")
		// The admin API takes user ids of at most 128 bytes: a longer sub
		// could never be kicked by user or unbanned.
		dialRefused(t, s, "lobby", "token="+hs256(t, jwt.MapClaims{"sub": strings.Repeat("u", 129), "rooms": []string{"*"}}), 4401, "token sub is 129 bytes; user ids are at most 128")
	})

	t.Run("a token past its exp is refused before it joins", func(t *testing.T) {
		watcher := dialSession(t, s, "token="+ann)
		watcher.mustAck(join("lobby"))
		// Two seconds late is inside the clock-skew leeway of nbf, but a
		// connection would be closed at exp: it is never let in.
		late := hs256(t, jwt.MapClaims{"sub": "late", "rooms": []string{"lobby"}, "exp": time.Now().Add(-2 * time.Second).Unix()})
		dialRefused(t, s, "lobby", "token="+late, 4401, "token expired")
		_, between := watcher.do(publish("lobby", "after"))
		if len(between) != 1 || between[0].str("type") != "message" {
			t.Fatalf("the room heard %v before its own message; want no presence of the refused client", between)
		}
	})

	t.Run("a good token joins as its subject", func(t *testing.T) {
		s.dial(t, "team-red", "token="+ann+"&user=mallory")
		resp, err := s.admin.ListClients(context.Background(), &roomdv1.ListClientsRequest{RoomId: "team-red"})
		if err != nil || len(resp.GetClients()) != 1 || resp.GetClients()[0].GetUserId() != "ann" {
			t.Fatalf("clients %v %v, want one with user ann", resp.GetClients(), err)
		}
	})

	t.Run("read-only members receive but may not publish", func(t *testing.T) {
		viewer := s.dial(t, "lobby", "token="+hs256(t, jwt.MapClaims{"sub": "viewer", "rooms": []string{"lobby"}, "publish": false}))
		writer := s.dial(t, "lobby", "token="+ann)
		send(t, writer, websocket.TextMessage, "for everyone")
		expectFrame(t, viewer, websocket.TextMessage, "for everyone")
		expectFrame(t, writer, websocket.TextMessage, "for everyone")
		send(t, viewer, websocket.TextMessage, "let me talk")
		expectClose(t, viewer, websocket.ClosePolicyViolation, "your token does not allow publishing")
		send(t, writer, websocket.TextMessage, "still fine")
		expectFrame(t, writer, websocket.TextMessage, "still fine") // and nothing from the viewer before it
	})

	t.Run("a token that expires while connected closes with 4401", func(t *testing.T) {
		short := hs256(t, jwt.MapClaims{"sub": "ann", "rooms": []string{"lobby"}, "exp": time.Now().Add(1500 * time.Millisecond).Unix()})
		ws := s.dial(t, "lobby", "token="+short)
		expectClose(t, ws, 4401, "token expired")
	})
}

func TestClientTokensWithAPublicKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	path := filepath.Join(t.TempDir(), "issuer.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	s := startServer(t, "-jwt-public-key", path)
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "bob", "rooms": []string{"*"}}).SignedString(key)
	ws := s.dial(t, "any-room", "token="+tok)
	send(t, ws, websocket.TextMessage, "signed in")
	expectFrame(t, ws, websocket.TextMessage, "signed in")
	dialRefused(t, s, "any-room", "token="+hs256(t, jwt.MapClaims{"sub": "bob", "rooms": []string{"*"}}), 4401, "token")
}

// upgradeStatus dials with extra headers and returns the refusal's status
// and body, or 101.
func upgradeStatus(t *testing.T, s *testServer, room string, header http.Header) (int, string) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.public+"/ws/"+room, header)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", room, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// originOutcome opens /ws/{room} as a page of origin would (no Origin
// header when it is empty) and says what the page sees: 0 when it joined
// (its message comes back: rooms made by joining echo), else the close code
// and reason it was refused with.
func originOutcome(t *testing.T, s *testServer, room, origin string) (int, string) {
	t.Helper()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.public+"/ws/"+room, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("origin %q: the upgrade failed with HTTP %d (%v); a browser would see only 1006", origin, status, err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("here")); err != nil {
		t.Fatalf("origin %q: write: %v", origin, err)
	}
	_, data, err := ws.ReadMessage()
	var ce *websocket.CloseError
	switch {
	case err == nil && string(data) == "here":
		return 0, ""
	case errors.As(err, &ce):
		return ce.Code, ce.Text
	}
	t.Fatalf("origin %q: read %q, %v; want the echo or a close", origin, data, err)
	return 0, ""
}

func TestOrigins(t *testing.T) {
	t.Run("default: same host only", func(t *testing.T) {
		s := startServer(t)
		if code, reason := originOutcome(t, s, "r", "http://"+s.public); code != 0 {
			t.Errorf("same-host page refused: %d %q", code, reason)
		}
		// A browser cannot read a refused upgrade's status, so a foreign
		// page is upgraded and closed with a reason it can show.
		if code, reason := originOutcome(t, s, "r", "https://evil.example"); code != 4403 || reason != `origin "https://evil.example" may not connect: not in -allowed-origins` {
			t.Errorf("foreign page: close %d %q, want 4403 naming the origin", code, reason)
		}
		if code, _ := originOutcome(t, s, "r", ""); code != 0 {
			t.Errorf("non-browser client (no Origin) refused with %d", code)
		}
		if code, _ := originOutcome(t, s, "r", "https://"+strings.Repeat("x", 3000)+".example"); code != 4403 {
			t.Errorf("page with a 3 kB origin: close %d, want 4403 with a reason that fits a close frame", code)
		}
		// A refused page joins nothing, so it does not make the room either.
		originOutcome(t, s, "guarded", "https://evil.example")
		if _, err := s.admin.GetRoom(context.Background(), &roomdv1.GetRoomRequest{RoomId: "guarded"}); status.Code(err) != codes.NotFound {
			t.Errorf("GetRoom after a refused page: %v, want NotFound", err)
		}
	})
	t.Run("a list with a wildcard keeps the server's own pages", func(t *testing.T) {
		s := startServer(t, "-allowed-origins", "https://app.example.com, https://*.example.org")
		for o, want := range map[string]int{
			"https://app.example.com":    0,
			"https://chat.example.org":   0,
			"http://chat.example.org":    4403,
			"https://example.org":        4403,
			"https://app.example.com.ev": 4403,
			"http://" + s.public:         0, // roomd's own demo page
		} {
			if code, _ := originOutcome(t, s, "r", o); code != want {
				t.Errorf("origin %s: close %d, want %d", o, code, want)
			}
		}
	})
	t.Run("star allows any page", func(t *testing.T) {
		s := startServer(t, "-allowed-origins", "*")
		if code, _ := originOutcome(t, s, "r", "https://anywhere.example"); code != 0 {
			t.Errorf("refused with %d", code)
		}
	})
	t.Run("the client protocol endpoint refuses the same way", func(t *testing.T) {
		s := startServer(t)
		d := websocket.Dialer{Subprotocols: []string{"roomd.v1.json"}}
		ws, _, err := d.Dial("ws://"+s.public+"/ws?user=ann", http.Header{"Origin": {"https://evil.example"}})
		if err != nil {
			t.Fatalf("dial: %v; want an upgrade and a close", err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 || !strings.Contains(ce.Text, "may not connect") {
			t.Fatalf("got %v, want close 4403 before any welcome", err)
		}
	})
}

func TestMessageRateLimit(t *testing.T) {
	s := startServer(t, "-max-message-rate", "10", "-max-message-burst", "5")
	flooder := s.dial(t, "r", "")
	other := s.dial(t, "r", "")
	for range 50 {
		if err := flooder.WriteMessage(websocket.TextMessage, []byte("spam")); err != nil {
			break // already closed
		}
	}
	expectClose(t, flooder, websocket.ClosePolicyViolation, "rate limit: more than 10 messages per second")
	send(t, other, websocket.TextMessage, "calm")
	for {
		if f := read(t, other); f.data == "calm" {
			break // the burst got through, then the flooder was cut off
		}
	}
}

// silentSockets opens n TCP connections to addr that never send a byte,
// closed when the test ends.
func silentSockets(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return conns
}

// dialFrom dials roomd's WebSocket from a given loopback address, as
// another client machine would, and returns the status it got.
func dialFrom(t *testing.T, s *testServer, localIP, room string) int {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(network, addr string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}).Dial(network, addr)
	}}
	ws, resp, err := d.Dial("ws://"+s.public+"/ws/"+room, nil)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial from %s: %v", localIP, err)
	}
	return resp.StatusCode
}

// The connection limits count sockets from accept: ones that never send a
// request count as much as members do.
func TestConnectionLimits(t *testing.T) {
	t.Run("per IP", func(t *testing.T) {
		s := startServer(t, "-max-conns-per-ip", "2", "-read-header-timeout", "1m")
		silent := silentSockets(t, s.public, 1)
		s.dial(t, "r", "")
		if code, body := upgradeStatus(t, s, "r", nil); code != 429 || body != "too many connections from 127.0.0.1 (limit 2)\n" {
			t.Fatalf("third connection from 127.0.0.1: %d %q", code, body)
		}
		if code := dialFrom(t, s, "127.0.0.2", "r"); code != 101 {
			t.Fatalf("first connection from 127.0.0.2: %d, want 101", code)
		}
		silent[0].Close()
		eventually(t, "a slot frees up", func() bool {
			code, _ := upgradeStatus(t, s, "r", nil)
			return code == 101
		})
	})
	t.Run("total", func(t *testing.T) {
		s := startServer(t, "-max-conns", "2", "-read-header-timeout", "1m")
		s.dial(t, "r", "")
		silentSockets(t, s.public, 1)
		if code, body := upgradeStatus(t, s, "other", nil); code != 503 || body != "server at its limit of 2 connections\n" {
			t.Fatalf("third connection: %d %q", code, body)
		}
		if code := dialFrom(t, s, "127.0.0.2", "r"); code != 503 {
			t.Fatalf("third connection, from 127.0.0.2: %d, want 503", code)
		}
		eventually(t, "the refusals are logged, once", func() bool {
			return strings.Count(s.logs.String(), `level=WARN msg="public listener at -max-conns: refusing new connections" max_conns=2 refused=1`) == 1
		})
	})
	t.Run("rooms and members", func(t *testing.T) {
		s := startServer(t, "-max-rooms", "1", "-max-clients-per-room", "1")
		s.dial(t, "only", "")
		if code, body := upgradeStatus(t, s, "second-room", nil); code != 503 || !strings.Contains(body, "maximum of 1 rooms") {
			t.Errorf("second room: %d %q", code, body)
		}
		if code, body := upgradeStatus(t, s, "only", nil); code != 429 || !strings.Contains(body, "is full") {
			t.Errorf("second member: %d %q", code, body)
		}
		_, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "more"})
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("CreateRoom over the room limit: %v, want ResourceExhausted", err)
		}
	})
}

// A browser that offered a subprotocol fails a handshake that names none
// (and reports 1006, as for a network drop), so a refusal after the upgrade
// must name the one offered for the page to read its close code and reason.
func TestRefusalsAfterTheUpgradeNameTheOfferedSubprotocol(t *testing.T) {
	s := startServer(t, "-jwt-secret", testSecret)
	for _, tc := range []struct {
		what, query, origin string
		code                int
	}{
		{"a foreign page", "token=" + hs256(t, jwt.MapClaims{"sub": "ann"}), "https://evil.example", 4403},
		{"a bad token", "token=nonsense", "", 4401},
	} {
		d := websocket.Dialer{Subprotocols: []string{"roomd.v1.json"}}
		header := http.Header{}
		if tc.origin != "" {
			header.Set("Origin", tc.origin)
		}
		ws, _, err := d.Dial("ws://"+s.public+"/ws?"+tc.query, header)
		if err != nil {
			t.Fatalf("%s: dial: %v", tc.what, err)
		}
		if ws.Subprotocol() != "roomd.v1.json" {
			t.Errorf("%s: the handshake names subprotocol %q, want the one offered", tc.what, ws.Subprotocol())
		}
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: got %v, want close %d", tc.what, err, tc.code)
		}
		ws.Close()
	}
}

// Until it upgrades, a socket on the public listener gets
// -read-header-timeout for every wait on its client, from accept, between
// requests and for a body, and -write-timeout for every answer.
func TestUnupgradedSocketsAreCutOff(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := startServer(t, "-read-header-timeout", timeout.String(), "-write-timeout", timeout.String())
	for _, tc := range []struct {
		name    string
		request string
		repeat  int
	}{
		{"silent", "", 0},
		{"half a request", "GET /ws/r HTTP/1.1\r\nHost: x\r\n", 1},
		{"a page, then idle", "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"a request whose body never comes", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 1},
		{"requests whose answers are never read", "GET /v1/roomd.js HTTP/1.1\r\nHost: x\r\n\r\n", 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.public)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if tc.repeat < 2 {
				io.WriteString(conn, tc.request)
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("the socket is still open after %v: %v", time.Since(start), err)
				}
			} else {
				conn.(*net.TCPConn).SetReadBuffer(4096)
				go conn.Write([]byte(strings.Repeat(tc.request, tc.repeat)))
				// The server stops reading while it cannot write, so a
				// write shows whether it still holds the socket: once it
				// has closed it, the kernel resets the connection.
				deadline := time.Now().Add(10 * time.Second)
				for {
					time.Sleep(20 * time.Millisecond)
					if _, err := io.WriteString(conn, "\r\n"); err != nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the socket is still open after %v", time.Since(start))
					}
				}
			}
			if elapsed := time.Since(start); elapsed < timeout {
				t.Errorf("cut after %v, before the %v timeout", elapsed, timeout)
			} else {
				t.Logf("cut after %v", elapsed)
			}
		})
	}
}

// Once shutdown begins the public listener is closed: a new connection is
// refused by the kernel while members still drain, which a load balancer
// retries on another server (a 503 it would pass on to the client).
func TestShutdownRefusesNewConnectionsWhileMembersDrain(t *testing.T) {
	s := startServer(t)
	s.dial(t, "r", "") // never reads, so never answers the close: the drain waits for it
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	eventually(t, "new connections are refused", func() bool {
		conn, err := net.Dial("tcp", s.public)
		if err == nil {
			conn.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case err := <-stopped:
		t.Fatalf("roomd stopped (%v) before the check: the drain was not under way", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Fatalf("roomd stopped with %v", err)
	}
}
