package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms"
)

// sessionClient speaks the client protocol over a real WebSocket.
type sessionClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID int
	// Welcome's fields.
	clientID, userID string
}

// frameOf is any server frame, decoded loosely.
type frameOf map[string]any

func (f frameOf) str(k string) string { s, _ := f[k].(string); return s }
func (f frameOf) num(k string) uint64 { n, _ := f[k].(float64); return uint64(n) }

// isLocalClientID reports whether id is a client id that the server, which
// runs without a node name, made: the default node's name, '_' and the
// random part.
func isLocalClientID(id string) bool {
	node, ok := rooms.NodeOfClientID(id)
	return ok && node == rooms.DefaultNodeName && len(id) == len(rooms.DefaultNodeName)+1+16
}

func dialSession(t *testing.T, s *testServer, query string) *sessionClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"roomd.v1.json"}}
	u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws", RawQuery: query}
	ws, resp, err := d.Dial(u.String(), nil)
	if err != nil {
		t.Fatalf("dial /ws: %v (%v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	if ws.Subprotocol() != "roomd.v1.json" {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	c := &sessionClient{t: t, ws: ws}
	w := c.next()
	if node, _ := rooms.NodeOfClientID(w.str("clientId")); w.str("type") != "welcome" || w.str("protocol") != "roomd.v1.json" || node != s.node {
		t.Fatalf("first frame %v, want welcome", w)
	}
	c.clientID, c.userID = w.str("clientId"), w.str("userId")
	return c
}

// next returns the next frame.
func (c *sessionClient) next() frameOf {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if kind != websocket.TextMessage {
		c.t.Fatalf("server sent a binary frame")
	}
	var f frameOf
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("server frame %q: %v", data, err)
	}
	return f
}

// nextOf skips frames until one of the given type.
func (c *sessionClient) nextOf(typ string) frameOf {
	c.t.Helper()
	for {
		if f := c.next(); f.str("type") == typ {
			return f
		}
	}
}

// send sends a request with the next id, which it returns.
func (c *sessionClient) send(req map[string]any) string {
	c.t.Helper()
	c.nextID++
	id := fmt.Sprint(c.nextID)
	req["id"] = id
	data, _ := json.Marshal(req)
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// do sends a request and returns its answer (ack or error), checking the id.
// Other frames arriving meanwhile are returned in between.
func (c *sessionClient) do(req map[string]any) (answer frameOf, between []frameOf) {
	c.t.Helper()
	id := c.send(req)
	for {
		f := c.next()
		if (f.str("type") == "ack" || f.str("type") == "error") && f.str("id") == id {
			return f, between
		}
		between = append(between, f)
	}
}

func (c *sessionClient) mustAck(req map[string]any) frameOf {
	c.t.Helper()
	f, _ := c.do(req)
	if f.str("type") != "ack" {
		c.t.Fatalf("%v: got %v, want ack", req, f)
	}
	return f
}

func (c *sessionClient) mustFail(req map[string]any, code string) frameOf {
	c.t.Helper()
	f, _ := c.do(req)
	if f.str("type") != "error" || f.str("code") != code || f.str("message") == "" {
		c.t.Fatalf("%v: got %v, want error %s with a message", req, f, code)
	}
	return f
}

func join(room string) map[string]any { return map[string]any{"op": "join", "room": room} }
func publish(room string, data any) map[string]any {
	return map[string]any{"op": "publish", "room": room, "data": data}
}

func TestProtocolJoinPublishPresence(t *testing.T) {
	s := startServer(t)
	ann := dialSession(t, s, "user=ann")
	if ann.userID != "ann" {
		t.Errorf("welcome userId %q", ann.userID)
	}
	// The first join of a room with no messages yet: every field of the
	// ack is there, seq 0 and replayed 0 included (PROTOCOL.md).
	ack := ann.mustAck(join("lobby"))
	for _, field := range []string{"seq", "epoch", "presence", "memberCount", "members", "replayed"} {
		if _, ok := ack[field]; !ok {
			t.Errorf("join ack %v has no %q", ack, field)
		}
	}
	if ack.str("epoch") == "" || ack.str("room") != "lobby" || ack.num("seq") != 0 || ack.num("replayed") != 0 || ack["presence"] != true || ack.num("memberCount") != 1 || ack["next"] != nil {
		t.Errorf("join ack %v", ack)
	}
	bob := dialSession(t, s, "user=bob")
	bobAck := bob.mustAck(join("lobby"))
	members := bobAck["members"].([]any)
	if len(members) != 2 || bobAck.num("memberCount") != 2 {
		t.Fatalf("bob's join ack lists %v, want ann and bob", members)
	}
	if p := ann.nextOf("presence"); p.str("event") != "joined" || p.str("userId") != "bob" || p.str("clientId") != bob.clientID || p.str("room") != "lobby" {
		t.Fatalf("ann saw %v, want bob joined", p)
	}

	raw := s.dial(t, "lobby", "user=raw") // a raw member shares the room
	ann.nextOf("presence")

	pub := bob.mustAck(publish("lobby", map[string]any{"text": "hi", "n": 1}))
	if pub.num("seq") == 0 {
		t.Fatalf("publish ack without seq: %v", pub)
	}
	m := ann.nextOf("message")
	from := m["from"].(map[string]any)
	if m.num("seq") != pub.num("seq") || from["userId"] != "bob" || from["clientId"] != bob.clientID || m["data"].(map[string]any)["text"] != "hi" || m.str("time") == "" {
		t.Fatalf("ann got %v", m)
	}
	expectFrame(t, raw, websocket.TextMessage, `{"n":1,"text":"hi"}`) // the JSON as the client sent it

	// A raw member's text and the admin API arrive marked by their sender.
	send(t, raw, websocket.TextMessage, "plain text")
	if m := ann.nextOf("message"); m["data"] != "plain text" || m["from"].(map[string]any)["userId"] != "raw" {
		t.Fatalf("raw text arrived as %v", m)
	}
	s.admin.Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Binary{Binary: []byte{0, 1, 2}}})
	if m := ann.nextOf("message"); m.str("binary") != "AAEC" || m["from"].(map[string]any)["server"] != true {
		t.Fatalf("admin binary arrived as %v", m)
	}
	s.admin.SendToClient(context.Background(), &roomdv1.SendToClientRequest{ClientId: ann.clientID, Payload: &roomdv1.SendToClientRequest_Text{Text: "psst"}})
	if m := ann.nextOf("message"); m["data"] != "psst" || m.str("room") != "" || m.num("seq") != 0 {
		t.Fatalf("direct message arrived as %v", m)
	}

	bob.mustAck(map[string]any{"op": "leave", "room": "lobby"})
	if p := ann.nextOf("presence"); p.str("event") != "left" || p.str("clientId") != bob.clientID {
		t.Fatalf("ann saw %v, want bob left", p)
	}
	bob.mustFail(publish("lobby", "after leaving"), "not_joined")
}

func TestProtocolErrors(t *testing.T) {
	s := startServer(t, "-auto-create=false", "-max-rooms-per-conn", "2", "-max-message-rate", "1000", "-max-message-burst", "1000")
	for _, id := range []string{"a", "b", "c"} {
		s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: id})
	}
	s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "one", MaxClients: 1})
	c := dialSession(t, s, "user=ann")

	send := func(kind int, data string) frameOf {
		t.Helper()
		c.ws.WriteMessage(kind, []byte(data))
		return c.nextOf("error")
	}
	if f := send(websocket.TextMessage, "not json"); f.str("code") != "bad_request" {
		t.Errorf("not JSON: %v", f)
	}
	if f := send(websocket.TextMessage, `{"op":"dance","id":"9","room":"a"}`); f.str("code") != "bad_request" || f.str("id") != "9" {
		t.Errorf("unknown op: %v", f)
	}
	if f := send(websocket.BinaryMessage, `{}`); f.str("code") != "bad_request" {
		t.Errorf("binary frame: %v", f)
	}
	c.mustFail(join("bad room"), "invalid_room")
	c.mustFail(join(".."), "invalid_room")
	c.mustFail(join("missing"), "not_found")
	c.mustFail(publish("a", 1), "not_joined")
	c.mustFail(map[string]any{"op": "leave", "room": "a"}, "not_joined")
	c.mustAck(join("a"))
	c.mustFail(join("a"), "already_joined")
	c.mustAck(join("one"))
	c.mustFail(join("b"), "too_many_rooms")
	c.mustAck(map[string]any{"op": "leave", "room": "one"})
	other := dialSession(t, s, "user=bob")
	other.mustAck(join("one"))
	c.mustFail(join("one"), "full")
	s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "ann", RoomId: "c", BanSeconds: 60})
	c.mustFail(join("c"), "forbidden")
	// Still a working connection after all that.
	c.mustAck(publish("a", "ok"))
}

func TestProtocolTokensAndReadOnly(t *testing.T) {
	s := startServer(t, "-jwt-secret", testSecret)
	viewer := dialSession(t, s, "token="+hs256(t, jwt.MapClaims{"sub": "viewer", "rooms": []string{"team-*"}, "publish": false}))
	if viewer.userID != "viewer" {
		t.Errorf("userId %q, want the token's sub", viewer.userID)
	}
	viewer.mustFail(join("lobby"), "forbidden")
	viewer.mustAck(join("team-a"))
	viewer.mustFail(publish("team-a", "let me talk"), "forbidden")

	ws, _, err := (&websocket.Dialer{Subprotocols: []string{"roomd.v1.json"}}).Dial("ws://"+s.public+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 4401) {
		t.Fatalf("no token: %v, want 4401", err)
	}
}

func TestProtocolNeedsTheSubprotocol(t *testing.T) {
	s := startServer(t)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.public+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	expectClose(t, ws, websocket.ClosePolicyViolation, "")
	if code, _ := upgradeStatus(t, s, "lobby", http.Header{"Sec-WebSocket-Protocol": {"roomd.v1.json"}}); code != 101 {
		t.Fatalf("raw relay with the subprotocol offered: %d", code)
	}
}

// Resume after a reconnect replays exactly what was missed, in order; a
// resume the history cannot serve is an explicit gap.
func TestProtocolResume(t *testing.T) {
	s := startServer(t)
	s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "r", HistorySize: proto.Uint32(5)})
	pub := dialSession(t, s, "user=pub")
	pub.mustAck(join("r"))
	sub := dialSession(t, s, "user=sub")
	ack := sub.mustAck(join("r"))
	epoch := ack.str("epoch")
	var lastSeen uint64
	for i := 1; i <= 3; i++ {
		pub.mustAck(publish("r", i))
		lastSeen = sub.nextOf("message").num("seq")
	}
	sub.ws.Close() // the network drops
	var missed []uint64
	for i := 4; i <= 6; i++ {
		missed = append(missed, pub.mustAck(publish("r", i)).num("seq"))
	}

	back := dialSession(t, s, "user=sub")
	ack, between := back.do(map[string]any{"op": "join", "room": "r", "since": lastSeen, "epoch": epoch})
	if ack.str("type") != "ack" || ack.num("replayed") != 3 || len(between) != 0 {
		t.Fatalf("resume: %v (after %v), want an ack replaying 3 first", ack, between)
	}
	for i, seq := range missed {
		m := back.nextOf("message")
		if m.num("seq") != seq || m["data"] != float64(4+i) {
			t.Fatalf("replayed %v, want seq %d data %d", m, seq, 4+i)
		}
	}
	live := pub.mustAck(publish("r", 7)).num("seq")
	if m := back.nextOf("message"); m.num("seq") != live {
		t.Fatalf("after the replay got %v, want live seq %d", m, live)
	}

	// Gaps: the history (5) no longer reaches back to seq 1; another epoch;
	// a sequence the room never had.
	late := dialSession(t, s, "user=late")
	for _, resume := range []map[string]any{
		{"op": "join", "room": "r", "since": 1, "epoch": epoch},
		{"op": "join", "room": "r", "since": lastSeen, "epoch": "old-epoch"},
		{"op": "join", "room": "r", "since": 1 << 40, "epoch": epoch},
	} {
		late.mustFail(resume, "gap")
	}
	late.mustAck(join("r")) // joining afresh always works

	// A room deleted and made again has a new epoch.
	s.admin.DeleteRoom(context.Background(), &roomdv1.DeleteRoomRequest{RoomId: "r"})
	if n := back.nextOf("room_deleted"); n.str("room") != "r" {
		t.Fatalf("got %v, want room_deleted", n)
	}
	back.mustAck(join("r")) // auto-created again
	back.mustFail(map[string]any{"op": "join", "room": "elsewhere", "since": 0, "epoch": epoch}, "gap")
}

// Many publishers at once: every member sees every message once, in one
// order with growing sequences, and each publisher's messages in the order
// it sent them.
func TestProtocolOrderingUnderConcurrentPublishers(t *testing.T) {
	s := startServer(t, "-max-message-rate", "0")
	const publishers, each = 4, 100
	readers := []*sessionClient{dialSession(t, s, "user=r1"), dialSession(t, s, "user=r2")}
	for _, r := range readers {
		r.mustAck(join("busy"))
	}
	var pubs []*sessionClient
	for i := range publishers {
		p := dialSession(t, s, fmt.Sprintf("user=p%d", i))
		p.mustAck(join("busy"))
		pubs = append(pubs, p)
	}
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				data, _ := json.Marshal(map[string]any{"op": "publish", "id": fmt.Sprint(n), "room": "busy", "data": map[string]int{"p": i, "n": n}})
				if err := p.ws.WriteMessage(websocket.TextMessage, data); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var orders [][]uint64
	for _, r := range readers {
		var seqs []uint64
		next := make([]int, publishers)
		for len(seqs) < publishers*each {
			m := r.nextOf("message")
			d := m["data"].(map[string]any)
			p, n := int(d["p"].(float64)), int(d["n"].(float64))
			if n != next[p] {
				t.Fatalf("reader saw publisher %d's message %d, want %d", p, n, next[p])
			}
			next[p]++
			seqs = append(seqs, m.num("seq"))
		}
		if !sort.SliceIsSorted(seqs, func(a, b int) bool { return seqs[a] < seqs[b] }) {
			t.Fatal("sequences went backwards")
		}
		orders = append(orders, seqs)
	}
	if fmt.Sprint(orders[0]) != fmt.Sprint(orders[1]) {
		t.Fatal("the two readers saw different orders")
	}
}

// Deleting a room or kicking from one room leaves a session connection
// open with a notice; a raw member of the same room is closed.
func TestProtocolNoticesAndKicks(t *testing.T) {
	s := startServer(t)
	c := dialSession(t, s, "user=ann")
	c.mustAck(join("doomed"))
	c.mustAck(join("stays"))
	raw := s.dial(t, "doomed", "user=raw")
	c.nextOf("presence")
	s.admin.DeleteRoom(context.Background(), &roomdv1.DeleteRoomRequest{RoomId: "doomed"})
	if n := c.nextOf("room_deleted"); n.str("room") != "doomed" {
		t.Fatalf("got %v", n)
	}
	expectClose(t, raw, 4001, "room deleted")

	s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "ann", RoomId: "stays", Reason: "cool off"})
	if n := c.nextOf("kicked"); n.str("room") != "stays" || n.str("reason") != "cool off" {
		t.Fatalf("got %v, want kicked from stays", n)
	}
	c.mustFail(publish("stays", "x"), "not_joined")
	c.mustAck(join("elsewhere")) // the connection itself is fine

	s.admin.KickClient(context.Background(), &roomdv1.KickClientRequest{ClientId: c.clientID, Reason: "bye now"})
	if n := c.nextOf("kicked"); n.str("reason") != "bye now" || n.str("room") != "" {
		t.Fatalf("got %v, want the connection-wide kick notice", n)
	}
	expectClose(t, c.ws, 4000, "bye now")
}

// FuzzDecode lives in wsedge/protocol; this only checks the protocol's
// frames from the browser's point of view are plain JSON objects.
func TestProtocolFramesAreSingleJSONObjects(t *testing.T) {
	s := startServer(t)
	c := dialSession(t, s, "")
	c.mustAck(join("r"))
	c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"publish","id":"x","room":"r","data":"<b>"}`))
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "{") || !json.Valid(data) {
			t.Fatalf("frame %q is not one JSON object", data)
		}
	}
}

func TestProtocolRateLimitAndServerLimits(t *testing.T) {
	s := startServer(t, "-max-message-rate", "1", "-max-message-burst", "3", "-max-rooms", "1")
	c := dialSession(t, s, "")
	c.mustAck(join("only"))
	c.mustFail(join("second"), "unavailable") // the server's room limit
	c.mustAck(publish("only", 1))
	c.mustFail(publish("only", 2), "rate_limited")
	// A client that keeps going past a whole burst of refusals is closed.
	for range 10 {
		c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"publish","id":"f","room":"only","data":0}`))
	}
	expectClose(t, c.ws, websocket.ClosePolicyViolation, "rate limit: more than 1 messages per second")
}

// nextOfWithin is nextOf with a longer wait for each frame.
func (c *sessionClient) nextOfWithin(typ string, d time.Duration) frameOf {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.ws.SetReadDeadline(deadline)
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var f frameOf
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("server frame %q: %v", data, err)
		}
		if f.str("type") == typ {
			return f
		}
	}
}
