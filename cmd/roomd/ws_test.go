package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
)

func send(t *testing.T, ws *websocket.Conn, kind int, data string) {
	t.Helper()
	if err := ws.WriteMessage(kind, []byte(data)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func expectFrame(t *testing.T, ws *websocket.Conn, kind int, data string) {
	t.Helper()
	if got := read(t, ws); got.kind != kind || got.data != data {
		t.Fatalf("got %d %q, want %d %q", got.kind, got.data, kind, data)
	}
}

// clientCount asks the admin API how many clients a room has.
func (s *testServer) clientCount(t *testing.T, room string) int {
	t.Helper()
	resp, err := s.admin.GetRoom(context.Background(), &roomdv1.GetRoomRequest{RoomId: room})
	if err != nil {
		return -1
	}
	return int(resp.GetRoom().GetClientCount())
}

func TestRelayKeepsOpcodeAndReachesEveryMember(t *testing.T) {
	s := startServer(t)
	a := s.dial(t, "lobby", "")
	b := s.dial(t, "lobby", "")
	c := s.dial(t, "lobby", "")
	eventually(t, "three members joined", func() bool { return s.clientCount(t, "lobby") == 3 })

	send(t, a, websocket.TextMessage, "Hello")
	for _, ws := range []*websocket.Conn{a, b, c} { // echo is on by default
		expectFrame(t, ws, websocket.TextMessage, "Hello")
	}
	send(t, b, websocket.BinaryMessage, "\x00\x01\xff")
	for _, ws := range []*websocket.Conn{a, b, c} {
		expectFrame(t, ws, websocket.BinaryMessage, "\x00\x01\xff")
	}
	// Another room hears nothing of this one: its first message is its own.
	other := s.dial(t, "elsewhere", "")
	send(t, other, websocket.TextMessage, "mine")
	expectFrame(t, other, websocket.TextMessage, "mine")
}

func TestEchoOffSkipsTheSender(t *testing.T) {
	s := startServer(t)
	_, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "quiet", Echo: proto.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	a := s.dial(t, "quiet", "")
	b := s.dial(t, "quiet", "")
	send(t, a, websocket.TextMessage, "from a")
	expectFrame(t, b, websocket.TextMessage, "from a")
	send(t, b, websocket.TextMessage, "from b")
	// a's first message is b's: its own never came back.
	expectFrame(t, a, websocket.TextMessage, "from b")
}

func TestUpgradeRefusals(t *testing.T) {
	s := startServer(t, "-auto-create=false")
	if _, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "pair", MaxClients: 2}); err != nil {
		t.Fatal(err)
	}
	s.dial(t, "pair", "")
	s.dial(t, "pair", "")

	for _, tc := range []struct {
		room   string
		status int
		body   string
	}{
		{"no-such-room", http.StatusNotFound, `room "no-such-room" not found`},
		{"pair", http.StatusTooManyRequests, `room "pair" is full`},
		{"bad%20id", http.StatusBadRequest, "invalid room id"},
		{"a/b", http.StatusBadRequest, "invalid room id"},
	} {
		_, resp, err := s.tryDial(tc.room, "")
		if err == nil {
			t.Errorf("%s: upgrade succeeded, want HTTP %d", tc.room, tc.status)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s: HTTP %d %q, want %d containing %q", tc.room, resp.StatusCode, body, tc.status, tc.body)
		}
	}

	resp, err := http.Get("http://" + s.public + "/ws/pair")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "WebSocket") {
		t.Errorf("plain GET: HTTP %d %q, want 426 explaining WebSocket", resp.StatusCode, body)
	}
}

func TestOversizedMessageClosesWith1009(t *testing.T) {
	s := startServer(t, "-max-message-bytes", "1024")
	big := s.dial(t, "r", "")
	other := s.dial(t, "r", "")
	send(t, big, websocket.TextMessage, strings.Repeat("x", 1024)) // at the limit: fine
	expectFrame(t, other, websocket.TextMessage, strings.Repeat("x", 1024))
	send(t, big, websocket.TextMessage, strings.Repeat("x", 1025))
	expectClose(t, big, websocket.CloseMessageTooBig, "message over the 1024-byte limit")
	// The room carries on for everyone else.
	send(t, other, websocket.TextMessage, "still here")
	expectFrame(t, other, websocket.TextMessage, "still here")
}

func TestInvalidUTF8TextClosesWith1007(t *testing.T) {
	s := startServer(t)
	ws := s.dial(t, "r", "")
	send(t, ws, websocket.TextMessage, "bad \xff\xfe")
	expectClose(t, ws, websocket.CloseInvalidFramePayloadData, "text message is not valid UTF-8")
}

// A member that never reads fills its socket, then its queue, and is closed
// with 4002; the others receive everything meanwhile.
func TestSlowConsumerIsClosedWith4002AndOthersKeepReceiving(t *testing.T) {
	s := startServer(t, "-max-queue-bytes", "262144")
	slow := s.dial(t, "r", "")
	fast := s.dial(t, "r", "")
	eventually(t, "both joined", func() bool { return s.clientCount(t, "r") == 2 })

	// Each message carries its number. The fast member must have each one
	// before the next is published, so it is never behind; the slow one
	// never reads, fills its socket buffers (a few MiB) and then its
	// queue. Bounded: 4096 messages of 8 KiB.
	filler := strings.Repeat("p", 8<<10)
	publish := func(i int) *roomdv1.PublishResponse {
		t.Helper()
		resp, err := s.admin.Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "r", Payload: &roomdv1.PublishRequest_Text{Text: fmt.Sprint(i) + " " + filler}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sent := 0
	for ; sent < 4096 && s.clientCount(t, "r") == 2; sent++ {
		publish(sent)
		fast.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := fast.ReadMessage()
		if err != nil {
			t.Fatalf("the fast member lost its connection after %d messages: %v", sent, err)
		}
		if n, _, _ := strings.Cut(string(data), " "); n != fmt.Sprint(sent) {
			t.Fatalf("the fast member got message %s, want %d", n, sent)
		}
	}
	if s.clientCount(t, "r") != 1 {
		t.Fatalf("slow member still connected after %d messages of 8 KiB", sent)
	}
	if resp := publish(sent); resp.GetRecipientCount() != 1 {
		t.Errorf("after the drop a publish reached %d members, want the fast one", resp.GetRecipientCount())
	}
	// The slow member, reading at last, finds what was in flight and then
	// the close frame.
	expectClose(t, slow, 4002, "")
}

func TestShutdownClosesEveryClientWith1001(t *testing.T) {
	s := startServer(t)
	a := s.dial(t, "r", "")
	b := s.dial(t, "other", "")
	eventually(t, "both joined", func() bool { return s.clientCount(t, "r") == 1 && s.clientCount(t, "other") == 1 })
	codes := make(chan error, 2)
	for _, ws := range []*websocket.Conn{a, b} {
		go func() {
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := ws.ReadMessage()
			codes <- err
		}()
	}
	if err := s.stop(); err != nil {
		t.Fatalf("roomd stopped with %v", err)
	}
	for range 2 {
		err := <-codes
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) || !strings.Contains(err.Error(), "server shutting down") {
			t.Errorf("client saw %v, want close 1001 server shutting down", err)
		}
	}
	if _, _, err := s.tryDial("r", ""); err == nil {
		t.Error("a new client could still connect after shutdown")
	}
}

// A peer that stops answering pings is dropped; one that answers stays.
func TestKeepAliveDropsSilentPeers(t *testing.T) {
	s := startServer(t, "-ping-interval", "50ms", "-pong-timeout", "100ms")
	alive := s.dial(t, "r", "user=alive")
	s.dial(t, "r", "user=silent") // never reads, so never answers a ping
	readErr := make(chan error, 1)
	go func() { // gorilla answers pings while reading
		alive.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := alive.ReadMessage()
		readErr <- err
	}()
	eventually(t, "the silent peer is dropped", func() bool { return s.clientCount(t, "r") == 1 })
	resp, err := s.admin.ListClients(context.Background(), &roomdv1.ListClientsRequest{RoomId: "r"})
	if err != nil || len(resp.GetClients()) != 1 || resp.GetClients()[0].GetUserId() != "alive" {
		t.Fatalf("after the drop the room has %v (%v), want only the peer that answers pings", resp.GetClients(), err)
	}
	send(t, s.dial(t, "r", ""), websocket.TextMessage, "bye")
	if err := <-readErr; err != nil {
		t.Fatalf("the live peer lost its connection: %v", err)
	}
}

func TestClientIDsAreUnique(t *testing.T) {
	s := startServer(t)
	for i := range 20 {
		s.dial(t, "r", fmt.Sprintf("user=u%d", i))
	}
	eventually(t, "all joined", func() bool { return s.clientCount(t, "r") == 20 })
	resp, err := s.admin.ListClients(context.Background(), &roomdv1.ListClientsRequest{RoomId: "r"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range resp.GetClients() {
		if seen[c.GetClientId()] || !isLocalClientID(c.GetClientId()) {
			t.Fatalf("bad or repeated client id %q", c.GetClientId())
		}
		seen[c.GetClientId()] = true
	}
}

// What a browser loads from the public listener: the demo page, the SDK and
// the icon it asks for on every page load (no 404 in the log).
func TestPublicPages(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", "roomd.js"},
		{"/v1/roomd.js", "text/javascript; charset=utf-8", "export function connect("},
		{"/favicon.ico", "image/png", "\x89PNG\r\n\x1a\n"},
	} {
		resp, err := http.Get("http://" + s.public + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.contentType || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %s containing %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), tc.contentType, tc.contains)
		}
		if _, err := png.Decode(bytes.NewReader(body)); tc.contentType == "image/png" && err != nil {
			t.Errorf("GET %s is not an image: %v", tc.path, err)
		}
	}
}
