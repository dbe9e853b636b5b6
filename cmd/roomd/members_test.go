package main

// Finding 3 and 7 of issue 10: big rooms can be joined with the client
// protocol (the join ack is bounded, the rest is paged with the members
// op), and joins are charged to the rate limit by the members they reach.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
)

// rawAnswer sends a request and returns the bytes of its answer as they
// came over the wire, skipping other frames.
func (c *sessionClient) rawAnswer(req map[string]any) []byte {
	c.t.Helper()
	id := c.send(req)
	for {
		c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var f frameOf
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("server frame %q: %v", data, err)
		}
		if (f.str("type") == "ack" || f.str("type") == "error") && f.str("id") == id {
			return data
		}
	}
}

// memberIDs are the client ids an ack lists, in its order.
func memberIDs(t *testing.T, ack frameOf) []string {
	t.Helper()
	list, _ := ack["members"].([]any)
	var ids []string
	for _, m := range list {
		ids = append(ids, m.(map[string]any)["clientId"].(string))
	}
	return ids
}

func members(room, after string, limit int) map[string]any {
	req := map[string]any{"op": "members", "room": room, "after": after}
	if limit > 0 {
		req["limit"] = limit
	}
	return req
}

// A room of 300 members with 128-byte user ids: their full list (about
// 54 KB) is more than the send queue holds here (32 KiB), which closed
// every protocol joiner with 4002 before. The join's ack lists 100 with the
// count and a cursor and stays under the bound of 100 members; the members
// op pages through everyone else, each member exactly once, in id order.
func TestProtocolBigRoomJoinIsBoundedAndPaged(t *testing.T) {
	s := startServer(t, "-max-queue-bytes", "32768")
	const crowd = 300
	for i := range crowd {
		s.dial(t, "town", fmt.Sprintf("user=%03d-%s", i, strings.Repeat("x", 124)))
	}
	ann := dialSession(t, s, "user=ann")
	raw := ann.rawAnswer(join("town"))
	var ack frameOf
	json.Unmarshal(raw, &ack)
	listed := memberIDs(t, ack)
	// 100 members of {"clientId":"local_<16>","userId":"<128>"}, plus the
	// other fields: at most 100 x 180 bytes and 200 more.
	const bound = 100*180 + 200
	if ack.str("type") != "ack" || ack["presence"] != true || ack.num("memberCount") != crowd+1 || len(listed) != 100 || ack.str("next") != listed[99] || len(raw) > bound {
		t.Fatalf("join ack of %d bytes: type %s, presence %v, memberCount %v, %d listed, next %q; want an ack with presence, 301, 100 listed, next = the last listed, at most %d bytes",
			len(raw), ack.str("type"), ack["presence"], ack["memberCount"], len(listed), ack.str("next"), bound)
	}

	all := listed
	pages := 1
	for next := ack.str("next"); next != ""; pages++ {
		page := ann.mustAck(members("town", next, 0))
		ids := memberIDs(t, page)
		if page.num("memberCount") != crowd+1 || len(ids) > 100 || len(ids) == 0 {
			t.Fatalf("page after %s: memberCount %v, %d listed", next, page["memberCount"], len(ids))
		}
		all = append(all, ids...)
		if next = page.str("next"); next != "" && next != ids[len(ids)-1] {
			t.Fatalf("page's next %q is not its last member %q", next, ids[len(ids)-1])
		}
	}
	var want []string
	for _, c := range mustListClients(t, s, "town") {
		want = append(want, c.GetClientId())
	}
	if pages != 4 || !slices.IsSorted(all) || !slices.Equal(all, want) {
		t.Fatalf("the ack and %d pages listed %d members (sorted: %v); want 4 listing the room's %d in id order, each once", pages-1, len(all), slices.IsSorted(all), len(want))
	}

	// Any limit up to 100, and any string as after.
	if ids := memberIDs(t, ann.mustAck(members("town", "", 7))); !slices.Equal(ids, want[:7]) {
		t.Errorf("members with limit 7 listed %v, want %v", ids, want[:7])
	}
	if ids := memberIDs(t, ann.mustAck(members("town", want[150]+"-", 3))); !slices.Equal(ids, want[151:154]) {
		t.Errorf("members after an id that is no member's listed %v, want %v", ids, want[151:154])
	}
	if page := ann.mustAck(members("town", "~", 0)); len(memberIDs(t, page)) != 0 || page["members"] == nil || page.str("next") != "" {
		t.Errorf("members after the last id: %v, want an empty list and no next", page)
	}
	ann.mustFail(members("town", "", 101), "bad_request")
	ann.mustFail(members("elsewhere", "", 0), "not_joined")
	bob := dialSession(t, s, "user=bob")
	bob.mustFail(members("town", "", 0), "not_joined")
}

// joinLeaveUntilRefused alternates join and leave of room, one request at a
// time, until one is refused with rate_limited, and returns how many were
// admitted before it. Then it checks the rest of the rule: the client is
// closed with 1008 at its burst+1'th refusal in a row, and not before.
func joinLeaveUntilRefused(t *testing.T, c *sessionClient, room string, burst int) int {
	t.Helper()
	admitted := 0
	for ; ; admitted++ {
		req := join(room)
		if admitted%2 == 1 {
			req = map[string]any{"op": "leave", "room": room}
		}
		answer, _ := c.do(req)
		if answer.str("type") == "error" {
			if answer.str("code") != "rate_limited" {
				t.Fatalf("request %d: %v, want an ack or rate_limited", admitted+1, answer)
			}
			break
		}
		if admitted > 1000 {
			t.Fatal("no request was ever refused")
		}
	}
	// Refusals 2 to burst go unanswered here, then refusal burst still
	// gets its answer, and the one after it closes the connection.
	for range burst - 2 {
		c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"join","id":"flood","room":"`+room+`"}`))
	}
	c.mustFail(join(room), "rate_limited")
	c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"join","id":"last","room":"`+room+`"}`))
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := c.ws.ReadMessage()
		if err == nil {
			if f := (frameOf{}); json.Unmarshal(data, &f) == nil && f.str("type") == "ack" {
				t.Fatalf("got %s while over the rate", data)
			}
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("after %d refusals: %v, want close 1008", burst+1, err)
		}
		return admitted
	}
}

// A join/leave loop is charged by the members each request reaches, so it
// is refused, and then closed, sooner in a big room. The rate is nearly 0
// so that the budget is just the burst (20) and the counts are exact:
//   - an empty room: join and leave cost 1 (1 listed, nobody told): 20
//     admitted;
//   - a room of 300 client protocol members: a join costs 4 (300 told and
//     100 listed: 400 reached, 100 a token) and a leave 3 (300 told), so
//     20 -> 16 -> 13 -> 9 -> 6 -> 2 -> -1: 6 admitted, the last of them
//     on credit.
func TestProtocolJoinsAreChargedByWhatTheyReach(t *testing.T) {
	const burst = 20
	s := startServer(t, "-max-message-rate", "0.001", "-max-message-burst", fmt.Sprint(burst))
	for i := range 300 {
		dialSession(t, s, fmt.Sprintf("user=m%03d", i)).mustAck(join("big"))
	}
	if n := joinLeaveUntilRefused(t, dialSession(t, s, "user=ann"), "empty", burst); n != 20 {
		t.Errorf("in an empty room %d requests were admitted, want 20", n)
	}
	if n := joinLeaveUntilRefused(t, dialSession(t, s, "user=bob"), "big", burst); n != 6 {
		t.Errorf("in a room of 300 %d requests were admitted, want 6", n)
	}

	// A full page of members costs 1 token: 20 pages from a full budget.
	cy := dialSession(t, s, "user=cy")
	cy.mustAck(join("big")) // 4
	pages := 0
	for ; ; pages++ {
		if answer, _ := cy.do(members("big", "", 0)); answer.str("type") == "error" {
			break
		}
	}
	if pages != 16 {
		t.Errorf("%d pages of 100 members after a join that cost 4, want 16", pages)
	}
}

// Presence is a room option: CreateRoom's presence false (over gRPC or
// REST) shows in GetRoom and ListRooms, and in the room client protocol
// members hear nobody join or leave, join acks carry the count alone, and
// the members op is refused with presence_off. Rooms made otherwise have
// presence.
func TestPresenceOffRoom(t *testing.T) {
	s := startServer(t)
	if r := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "audience", Presence: proto.Bool(false)}); r.GetPresence() {
		t.Errorf("CreateRoom with presence false answered %v", r)
	}
	if r := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "chat"}); !r.GetPresence() {
		t.Errorf("CreateRoom without presence answered %v, want presence on", r)
	}
	// REST, read as the JSON it is: the field is there, false or true.
	var created struct{ Room map[string]any }
	if code := s.rest(t, "POST", "/v1/rooms", `{"roomId":"rest-audience","presence":false}`, &created); code != 200 || created.Room["presence"] != false {
		t.Errorf("POST /v1/rooms with presence false: HTTP %d, room %v", code, created.Room)
	}
	var got struct{ Room map[string]any }
	if s.rest(t, "GET", "/v1/rooms/rest-audience", "", &got); got.Room["presence"] != false {
		t.Errorf("GET /v1/rooms/rest-audience: %v, want presence false", got.Room)
	}
	var list struct{ Rooms []map[string]any }
	s.rest(t, "GET", "/v1/rooms", "", &list)
	for _, r := range list.Rooms {
		if want := r["roomId"] == "chat"; r["presence"] != want {
			t.Errorf("ListRooms: %v, want presence %v", r, want)
		}
	}

	ann := dialSession(t, s, "user=ann")
	ack := ann.mustAck(join("audience"))
	if ack["presence"] != false || ack.num("memberCount") != 1 || ack["members"] != nil || ack["next"] != nil {
		t.Errorf("join ack %v, want presence false, memberCount 1, no members or next", ack)
	}
	bob := dialSession(t, s, "user=bob")
	if ack := bob.mustAck(join("audience")); ack.num("memberCount") != 2 || ack["members"] != nil {
		t.Errorf("bob's join ack %v, want memberCount 2 and no members", ack)
	}
	bob.mustAck(publish("audience", "hi"))
	if f := ann.next(); f.str("type") != "message" || f["data"] != "hi" {
		t.Errorf("after bob joined ann got %v, want bob's message and no presence", f)
	}
	if f := ann.mustFail(members("audience", "", 0), "presence_off"); !strings.Contains(f.str("message"), "presence off") {
		t.Errorf("members of a room without presence: %v", f)
	}
	bob.mustAck(map[string]any{"op": "leave", "room": "audience"})
	if _, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: "audience", Payload: &roomdv1.PublishRequest_Text{Text: "after"}}); err != nil {
		t.Fatal(err)
	}
	if f := ann.next(); f.str("type") != "message" || f["data"] != "after" {
		t.Errorf("after bob left ann got %v, want the next message and no presence", f)
	}

	// A room made by joining has presence.
	ann.mustAck(join("made"))
	if !mustGetRoom(t, s, "made").GetPresence() {
		t.Error("a room made by joining has presence off")
	}
}
