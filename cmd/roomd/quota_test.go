package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	roomdv1 "roomd/gen/roomd/v1"
)

// dialerFrom connects from the given loopback address (127.0.0.0/8 is all
// this machine's), so one test can be several remote IPs.
func dialerFrom(ip string) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &websocket.Dialer{NetDialContext: nd.DialContext, Subprotocols: []string{"roomd.v1.json"}}
}

// rawFrom opens /ws/{room} from ip and returns the connection (closed when
// the test ends), or the refusal's status and body.
func rawFrom(t *testing.T, s *testServer, ip, room, query string) (*websocket.Conn, int, string) {
	t.Helper()
	d := *dialerFrom(ip)
	d.Subprotocols = nil
	u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws/" + room, RawQuery: query}
	ws, resp, err := d.Dial(u.String(), nil)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return ws, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s from %s: %v", room, ip, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return nil, resp.StatusCode, string(body)
}

// sessionFrom is dialSession from another address.
func sessionFrom(t *testing.T, s *testServer, ip string) *sessionClient {
	t.Helper()
	ws, resp, err := dialerFrom(ip).Dial("ws://"+s.public+"/ws", nil)
	if err != nil {
		t.Fatalf("dial /ws from %s: %v (%v)", ip, err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	c := &sessionClient{t: t, ws: ws}
	if w := c.next(); w.str("type") != "welcome" {
		t.Fatalf("first frame %v, want welcome", w)
	}
	return c
}

// One address that has made its quota of rooms is refused more (429 on a
// raw upgrade, room_quota over the protocol), may still join rooms that
// exist, and may make one again once one of its rooms vanishes; another
// address is not held back by it.
func TestRoomQuotaPerIP(t *testing.T) {
	s := startServer(t, "-max-rooms-per-ip", "3")
	const greedy, other = "127.0.0.1", "127.0.0.2"
	first, _, _ := rawFrom(t, s, greedy, "a", "")
	rawFrom(t, s, greedy, "b", "")
	c := sessionFrom(t, s, greedy)
	c.mustAck(join("c"))

	const refusal = "address 127.0.0.1 has made 3 rooms that still exist, its limit"
	if _, code, body := rawFrom(t, s, greedy, "d", ""); code != http.StatusTooManyRequests || !strings.Contains(body, refusal) {
		t.Errorf("a fourth room by raw upgrade: %d %q, want 429 saying %q", code, body, refusal)
	}
	if f := c.mustFail(join("e"), "room_quota"); !strings.Contains(f.str("message"), refusal) {
		t.Errorf("a fourth room over the protocol: %q, want it to say %q", f.str("message"), refusal)
	}
	if _, err := s.admin.GetRoom(context.Background(), &roomdv1.GetRoomRequest{RoomId: "d"}); err == nil {
		t.Error("the refused room d exists")
	}
	// Rooms that exist are no creation.
	if _, code, body := rawFrom(t, s, greedy, "b", ""); code != http.StatusSwitchingProtocols {
		t.Errorf("joining its own room b: %d %q", code, body)
	}
	c.mustAck(join("a"))

	// Another address makes rooms as before, including the ones refused.
	if _, code, body := rawFrom(t, s, other, "d", ""); code != http.StatusSwitchingProtocols {
		t.Fatalf("another address making room d: %d %q", code, body)
	}
	sessionFrom(t, s, other).mustAck(join("e"))

	// Room a vanishes once its members leave, and no longer counts.
	first.Close()
	c.mustAck(map[string]any{"op": "leave", "room": "a"})
	eventually(t, "room a to vanish and free a room for 127.0.0.1", func() bool {
		_, code, _ := rawFrom(t, s, greedy, "f", "")
		return code == http.StatusSwitchingProtocols
	})
	if _, code, _ := rawFrom(t, s, greedy, "g", ""); code != http.StatusTooManyRequests {
		t.Errorf("after making room f, room g: %d, want 429 again", code)
	}
}

// With tokens, a user is bounded the same way from any address, and other
// users from the same address are not.
func TestRoomQuotaPerUser(t *testing.T) {
	s := startServer(t, "-jwt-secret", testSecret, "-max-rooms-per-user", "2")
	ann := "token=" + hs256(t, jwt.MapClaims{"sub": "ann", "rooms": []string{"*"}})
	bob := "token=" + hs256(t, jwt.MapClaims{"sub": "bob", "rooms": []string{"*"}})
	rawFrom(t, s, "127.0.0.1", "a1", ann)
	rawFrom(t, s, "127.0.0.2", "a2", ann)
	const refusal = `user "ann" has made 2 rooms that still exist, its limit`
	if _, code, body := rawFrom(t, s, "127.0.0.3", "a3", ann); code != http.StatusTooManyRequests || !strings.Contains(body, refusal) {
		t.Errorf("ann's third room from a third address: %d %q, want 429 saying %q", code, body, refusal)
	}
	if _, code, body := rawFrom(t, s, "127.0.0.1", "b1", bob); code != http.StatusSwitchingProtocols {
		t.Errorf("bob's first room from ann's address: %d %q", code, body)
	}
}
