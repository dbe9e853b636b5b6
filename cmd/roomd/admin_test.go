package main

// End-to-end tests of the admin API: every test runs a real roomd and talks
// to it the way an operator and a browser would, over gRPC, over the REST
// gateway and over WebSockets.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/admin"
)

// adminTimeout bounds every RPC and stream a test makes, so that a server
// that never answers fails the test instead of hanging it.
const adminTimeout = 10 * time.Second

func adminContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	t.Cleanup(cancel)
	return ctx
}

// restOK calls the REST gateway, requires 200 and decodes the JSON body
// into out with protojson, as any REST client of the gateway would.
func restOK(t *testing.T, s *testServer, method, path, body string, out proto.Message) {
	t.Helper()
	var raw json.RawMessage
	if code := s.rest(t, method, path, body, &raw); code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d, want 200; body %s", method, path, code, raw)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, out); err != nil {
		t.Fatalf("%s %s: decoding %T: %v in %s", method, path, out, err, raw)
	}
}

// restErrorBody is the gateway's JSON error: a google.rpc.Status.
type restErrorBody struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
}

// checkRESTError calls the REST gateway and requires the HTTP status, the
// gRPC code in the JSON error and a message that contains every one of want.
func checkRESTError(t *testing.T, s *testServer, method, path, body string, httpStatus int, code codes.Code, want ...string) {
	t.Helper()
	var got restErrorBody
	status := s.rest(t, method, path, body, &got)
	if status != httpStatus || got.Code != code {
		t.Fatalf("%s %s: HTTP %d with code %v (%q), want HTTP %d with code %v", method, path, status, got.Code, got.Message, httpStatus, code)
	}
	for _, w := range want {
		if !strings.Contains(got.Message, w) {
			t.Errorf("%s %s: error message %q does not mention %q", method, path, got.Message, w)
		}
	}
}

// checkGRPCError requires err to be a status with code and a message that
// contains every one of want.
func checkGRPCError(t *testing.T, what string, err error, code codes.Code, want ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("%s: got error %v, want code %v", what, err, code)
	}
	for _, w := range want {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("%s: error message %q does not mention %q", what, st.Message(), w)
		}
	}
}

func mustCreateRoom(t *testing.T, s *testServer, req *roomdv1.CreateRoomRequest) *roomdv1.Room {
	t.Helper()
	resp, err := s.admin.CreateRoom(adminContext(t), req)
	if err != nil {
		t.Fatalf("CreateRoom %q: %v", req.GetRoomId(), err)
	}
	return resp.GetRoom()
}

func mustGetRoom(t *testing.T, s *testServer, roomID string) *roomdv1.Room {
	t.Helper()
	resp, err := s.admin.GetRoom(adminContext(t), &roomdv1.GetRoomRequest{RoomId: roomID})
	if err != nil {
		t.Fatalf("GetRoom %q: %v", roomID, err)
	}
	return resp.GetRoom()
}

// listClients returns every client of a room, in one page.
func mustListClients(t *testing.T, s *testServer, roomID string) []*roomdv1.Client {
	t.Helper()
	resp, err := s.admin.ListClients(adminContext(t), &roomdv1.ListClientsRequest{RoomId: roomID, PageSize: 1000})
	if err != nil {
		t.Fatalf("ListClients %q: %v", roomID, err)
	}
	if resp.GetNextPageToken() != "" {
		t.Fatalf("ListClients %q: more than one page", roomID)
	}
	return resp.GetClients()
}

// clientIDOfUser finds the id the server gave the connection of a user (the
// tests give every connection its own ?user=).
func clientIDOfUser(t *testing.T, s *testServer, roomID, userID string) string {
	t.Helper()
	for _, c := range mustListClients(t, s, roomID) {
		if c.GetUserId() == userID {
			return c.GetClientId()
		}
	}
	t.Fatalf("room %q has no client of user %q", roomID, userID)
	return ""
}

// expectReceived reads the next message and requires its type and payload.
func expectReceived(t *testing.T, ws *websocket.Conn, kind int, data string) {
	t.Helper()
	if got := read(t, ws); got.kind != kind || got.data != data {
		t.Fatalf("received frame type %d %q, want type %d %q", got.kind, got.data, kind, data)
	}
}

// closeFromClient ends a WebSocket session from the client side with 1000 and
// waits for the server's answering close frame.
func closeFromClient(t *testing.T, ws *websocket.Conn, reason string) {
	t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("sending close frame: %v", err)
	}
	expectClose(t, ws, websocket.CloseNormalClosure, "")
}

func TestAdminErrors(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "taken"})
	long := strings.Repeat("x", 129)

	t.Run("CreateRoom taken id", func(t *testing.T) {
		_, err := s.admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "taken"})
		checkGRPCError(t, "CreateRoom", err, codes.AlreadyExists, `"taken"`)
		checkRESTError(t, s, "POST", "/v1/rooms", `{"roomId":"taken"}`, http.StatusConflict, codes.AlreadyExists, `"taken"`)
	})

	t.Run("CreateRoom bad id", func(t *testing.T) {
		for _, tc := range []struct {
			id, mention string
		}{
			{"a b", `"a b"`},
			{"", "empty"},
			{long, "129"},
			{"caf\u00e9", "\"caf\u00e9\""},
			// A URL path cannot name these: /v1/rooms/.. is /v1.
			{".", `"."`},
			{"..", `".."`},
		} {
			_, err := s.admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: tc.id})
			checkGRPCError(t, fmt.Sprintf("CreateRoom %q", tc.id), err, codes.InvalidArgument, "room id", tc.mention)
			body, _ := json.Marshal(map[string]string{"roomId": tc.id})
			checkRESTError(t, s, "POST", "/v1/rooms", string(body), http.StatusBadRequest, codes.InvalidArgument, "room id", tc.mention)
		}
		// The 128-character id next to the limit is fine.
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: long[:128]})
	})

	t.Run("bad id in a path", func(t *testing.T) {
		_, err := s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "a b"})
		checkGRPCError(t, "GetRoom", err, codes.InvalidArgument, `"a b"`)
		checkRESTError(t, s, "GET", "/v1/rooms/a%20b", "", http.StatusBadRequest, codes.InvalidArgument, `"a b"`)
	})

	t.Run("missing room", func(t *testing.T) {
		_, err := s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "nowhere"})
		checkGRPCError(t, "GetRoom", err, codes.NotFound, `"nowhere"`)
		_, err = s.admin.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: "nowhere"})
		checkGRPCError(t, "DeleteRoom", err, codes.NotFound, `"nowhere"`)
		_, err = s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "nowhere"})
		checkGRPCError(t, "ListClients", err, codes.NotFound, `"nowhere"`)
		_, err = s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "nowhere", Payload: &roomdv1.PublishRequest_Text{Text: "hi"}})
		checkGRPCError(t, "Publish", err, codes.NotFound, `"nowhere"`)

		checkRESTError(t, s, "GET", "/v1/rooms/nowhere", "", http.StatusNotFound, codes.NotFound, `"nowhere"`)
		checkRESTError(t, s, "DELETE", "/v1/rooms/nowhere", "", http.StatusNotFound, codes.NotFound, `"nowhere"`)
		checkRESTError(t, s, "GET", "/v1/rooms/nowhere/clients", "", http.StatusNotFound, codes.NotFound, `"nowhere"`)
		checkRESTError(t, s, "POST", "/v1/rooms/nowhere/messages", `{"text":"hi"}`, http.StatusNotFound, codes.NotFound, `"nowhere"`)
	})

	t.Run("WatchRoom of a missing or bad room over REST", func(t *testing.T) {
		// A stream that fails before it starts answers like any other
		// call (see also TestAdminRESTWatchRoomErrorShape).
		checkRESTError(t, s, "GET", "/v1/rooms/nowhere/events", "", http.StatusNotFound, codes.NotFound, `"nowhere"`)
		checkRESTError(t, s, "GET", "/v1/rooms/a%20b/events", "", http.StatusBadRequest, codes.InvalidArgument, `"a b"`)
	})

	t.Run("missing client", func(t *testing.T) {
		const id = "0123456789abcdef"
		_, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: id, Reason: "bye"})
		checkGRPCError(t, "KickClient", err, codes.NotFound, id)
		_, err = s.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: id, Payload: &roomdv1.SendToClientRequest_Text{Text: "hi"}})
		checkGRPCError(t, "SendToClient", err, codes.NotFound, id)

		checkRESTError(t, s, "POST", "/v1/clients/"+id+":kick", `{"reason":"bye"}`, http.StatusNotFound, codes.NotFound, id)
		checkRESTError(t, s, "POST", "/v1/clients/"+id+"/messages", `{"text":"hi"}`, http.StatusNotFound, codes.NotFound, id)
	})

	t.Run("message without payload", func(t *testing.T) {
		ws := s.dial(t, "taken", "user=ann")
		clientID := clientIDOfUser(t, s, "taken", "ann")

		_, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "taken"})
		checkGRPCError(t, "Publish", err, codes.InvalidArgument, "text or binary")
		_, err = s.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: clientID})
		checkGRPCError(t, "SendToClient", err, codes.InvalidArgument, "text or binary")

		checkRESTError(t, s, "POST", "/v1/rooms/taken/messages", `{}`, http.StatusBadRequest, codes.InvalidArgument, "text or binary")
		checkRESTError(t, s, "POST", "/v1/clients/"+clientID+"/messages", `{}`, http.StatusBadRequest, codes.InvalidArgument, "text or binary")

		// None of the refused messages reached the member.
		if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "taken", Payload: &roomdv1.PublishRequest_Text{Text: "after"}}); err != nil {
			t.Fatal(err)
		}
		expectReceived(t, ws, websocket.TextMessage, "after")
	})

	t.Run("KickUser without user", func(t *testing.T) {
		_, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{RoomId: "taken"})
		checkGRPCError(t, "KickUser", err, codes.InvalidArgument, "user_id")
	})

	t.Run("bad page request", func(t *testing.T) {
		const garbage = "!!not a token!!"
		_, err := s.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{PageSize: -1})
		checkGRPCError(t, "ListRooms", err, codes.InvalidArgument, "page_size", "-1")
		_, err = s.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{PageToken: garbage})
		checkGRPCError(t, "ListRooms", err, codes.InvalidArgument, "page_token", garbage)
		_, err = s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "taken", PageSize: -3})
		checkGRPCError(t, "ListClients", err, codes.InvalidArgument, "page_size", "-3")
		_, err = s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "taken", PageToken: garbage})
		checkGRPCError(t, "ListClients", err, codes.InvalidArgument, "page_token", garbage)

		token := url.QueryEscape(garbage)
		checkRESTError(t, s, "GET", "/v1/rooms?page_size=-1", "", http.StatusBadRequest, codes.InvalidArgument, "page_size", "-1")
		checkRESTError(t, s, "GET", "/v1/rooms?page_token="+token, "", http.StatusBadRequest, codes.InvalidArgument, "page_token", garbage)
		checkRESTError(t, s, "GET", "/v1/rooms/taken/clients?page_size=-3", "", http.StatusBadRequest, codes.InvalidArgument, "page_size", "-3")
		checkRESTError(t, s, "GET", "/v1/rooms/taken/clients?page_token="+token, "", http.StatusBadRequest, codes.InvalidArgument, "page_token", garbage)
	})
}

func TestAdminCreateAndGetRoom(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)

	checkRoom := func(t *testing.T, got *roomdv1.Room, id string, maxClients uint32, echo bool, metadata map[string]string, before, after time.Time) {
		t.Helper()
		if got.GetRoomId() != id || got.GetMaxClients() != maxClients || got.GetEcho() != echo || got.GetAutoCreated() {
			t.Errorf("room %q: got id %q, max_clients %d, echo %v, auto_created %v; want max_clients %d, echo %v, not auto-created",
				id, got.GetRoomId(), got.GetMaxClients(), got.GetEcho(), got.GetAutoCreated(), maxClients, echo)
		}
		if len(got.GetMetadata()) != len(metadata) {
			t.Errorf("room %q: metadata %v, want %v", id, got.GetMetadata(), metadata)
		}
		for k, v := range metadata {
			if got.GetMetadata()[k] != v {
				t.Errorf("room %q: metadata %v, want %v", id, got.GetMetadata(), metadata)
			}
		}
		if got.GetCreateTime() == nil {
			t.Fatalf("room %q: no create_time", id)
		}
		// Seconds are enough: REST and gRPC must both carry a real time.
		ct := got.GetCreateTime().AsTime()
		if ct.Before(before.Add(-time.Second)) || ct.After(after.Add(time.Second)) {
			t.Errorf("room %q: create_time %v, want between %v and %v", id, ct, before, after)
		}
	}

	t.Run("gRPC", func(t *testing.T) {
		before := time.Now()
		created := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "grpc-defaults"})
		echoOff := false
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "grpc-set", MaxClients: 7, Echo: &echoOff, Metadata: map[string]string{"topic": "go", "tier": "gold"}})
		after := time.Now()

		checkRoom(t, created, "grpc-defaults", 0, true, nil, before, after)
		checkRoom(t, mustGetRoom(t, s, "grpc-defaults"), "grpc-defaults", 0, true, nil, before, after)
		checkRoom(t, mustGetRoom(t, s, "grpc-set"), "grpc-set", 7, false, map[string]string{"topic": "go", "tier": "gold"}, before, after)
	})

	t.Run("REST", func(t *testing.T) {
		before := time.Now()
		var created roomdv1.CreateRoomResponse
		restOK(t, s, "POST", "/v1/rooms", `{"roomId":"rest-defaults","metadata":{"owner":"ann"}}`, &created)
		restOK(t, s, "POST", "/v1/rooms", `{"room_id":"rest-set","maxClients":3,"echo":false}`, &roomdv1.CreateRoomResponse{})
		after := time.Now()

		checkRoom(t, created.GetRoom(), "rest-defaults", 0, true, map[string]string{"owner": "ann"}, before, after)
		var got roomdv1.GetRoomResponse
		restOK(t, s, "GET", "/v1/rooms/rest-defaults", "", &got)
		checkRoom(t, got.GetRoom(), "rest-defaults", 0, true, map[string]string{"owner": "ann"}, before, after)
		restOK(t, s, "GET", "/v1/rooms/rest-set", "", &got)
		checkRoom(t, got.GetRoom(), "rest-set", 3, false, nil, before, after)
	})

	t.Run("client_count", func(t *testing.T) {
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "counted"})
		if n := mustGetRoom(t, s, "counted").GetClientCount(); n != 0 {
			t.Fatalf("empty room: client_count %d", n)
		}
		// A client is a member once its upgrade succeeded.
		ann := s.dial(t, "counted", "user=ann")
		s.dial(t, "counted", "user=bob")
		if n := mustGetRoom(t, s, "counted").GetClientCount(); n != 2 {
			t.Fatalf("after two dials: client_count %d, want 2", n)
		}
		var got roomdv1.GetRoomResponse
		restOK(t, s, "GET", "/v1/rooms/counted", "", &got)
		if n := got.GetRoom().GetClientCount(); n != 2 {
			t.Fatalf("REST after two dials: clientCount %d, want 2", n)
		}
		closeFromClient(t, ann, "")
		eventually(t, "client_count drops to 1", func() bool { return mustGetRoom(t, s, "counted").GetClientCount() == 1 })
	})

	t.Run("echo off", func(t *testing.T) {
		// What echo means to a member: its own messages do not come back.
		echoOff := false
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "quiet", Echo: &echoOff})
		ann := s.dial(t, "quiet", "user=ann")
		bob := s.dial(t, "quiet", "user=bob")
		if err := ann.WriteMessage(websocket.TextMessage, []byte("from ann")); err != nil {
			t.Fatal(err)
		}
		expectReceived(t, bob, websocket.TextMessage, "from ann")
		if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "quiet", Payload: &roomdv1.PublishRequest_Text{Text: "from admin"}}); err != nil {
			t.Fatal(err)
		}
		expectReceived(t, ann, websocket.TextMessage, "from admin")
	})
}

func TestAdminListRoomsPagination(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)

	// Ids that sort differently by case and punctuation, created in a
	// random order.
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("%c%02d", "aZ_9.:-Bq"[i%9], i))
	}
	for _, i := range rand.Perm(len(want)) {
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: want[i]})
	}
	slices.Sort(want)

	// walk lists every room page by page and checks the page sizes.
	walk := func(t *testing.T, pageSize int, list func(token string) ([]*roomdv1.Room, string)) {
		t.Helper()
		var got []string
		token := ""
		for page := 1; ; page++ {
			rooms, next := list(token)
			wantLen := min(pageSize, len(want)-len(got))
			if len(rooms) != wantLen {
				t.Fatalf("page %d has %d rooms, want %d", page, len(rooms), wantLen)
			}
			for _, r := range rooms {
				got = append(got, r.GetRoomId())
			}
			if next == "" {
				break
			}
			if page > len(want) {
				t.Fatalf("more pages than rooms; token %q", next)
			}
			token = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listed rooms\n%q\nwant\n%q", got, want)
		}
	}

	for _, pageSize := range []int{10, 5, 0} {
		t.Run(fmt.Sprintf("gRPC page_size %d", pageSize), func(t *testing.T) {
			effective := pageSize
			if effective == 0 {
				effective = 100 // the documented default
			}
			walk(t, effective, func(token string) ([]*roomdv1.Room, string) {
				resp, err := s.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{PageSize: int32(pageSize), PageToken: token})
				if err != nil {
					t.Fatalf("ListRooms token %q: %v", token, err)
				}
				return resp.GetRooms(), resp.GetNextPageToken()
			})
		})
		t.Run(fmt.Sprintf("REST page_size %d", pageSize), func(t *testing.T) {
			effective := pageSize
			if effective == 0 {
				effective = 100
			}
			walk(t, effective, func(token string) ([]*roomdv1.Room, string) {
				var resp roomdv1.ListRoomsResponse
				restOK(t, s, "GET", fmt.Sprintf("/v1/rooms?page_size=%d&page_token=%s", pageSize, url.QueryEscape(token)), "", &resp)
				return resp.GetRooms(), resp.GetNextPageToken()
			})
		})
	}
}

func TestAdminListClientsPagination(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	const room = "lobby"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})

	// The client's own address is what the server must report as remote_addr.
	before := time.Now()
	addrByUser := map[string]string{}
	for i := range 7 {
		user := fmt.Sprintf("user-%d", i)
		ws := s.dial(t, room, "user="+user)
		addrByUser[user] = ws.LocalAddr().String()
	}
	after := time.Now()

	check := func(t *testing.T, list func(token string) ([]*roomdv1.Client, string)) {
		t.Helper()
		var got []*roomdv1.Client
		token := ""
		for page := 1; ; page++ {
			clients, next := list(token)
			if wantLen := min(3, 7-len(got)); len(clients) != wantLen {
				t.Fatalf("page %d has %d clients, want %d", page, len(clients), wantLen)
			}
			got = append(got, clients...)
			if next == "" {
				break
			}
			if page > 7 {
				t.Fatalf("more pages than clients; token %q", next)
			}
			token = next
		}
		if len(got) != 7 {
			t.Fatalf("listed %d clients, want 7", len(got))
		}
		seenUsers := map[string]bool{}
		for i, c := range got {
			if i > 0 && got[i-1].GetClientId() >= c.GetClientId() {
				t.Errorf("clients not in id order: %q then %q", got[i-1].GetClientId(), c.GetClientId())
			}
			user := c.GetUserId()
			if seenUsers[user] {
				t.Errorf("user %q listed twice", user)
			}
			seenUsers[user] = true
			if addr, ok := addrByUser[user]; !ok {
				t.Errorf("client %q has user %q, not one that connected", c.GetClientId(), user)
			} else if c.GetRemoteAddr() != addr {
				t.Errorf("client of %q: remote_addr %q, want the client's own address %q", user, c.GetRemoteAddr(), addr)
			}
			if c.GetClientId() == "" || c.GetRoomId() != room {
				t.Errorf("client of %q: client_id %q, room_id %q", user, c.GetClientId(), c.GetRoomId())
			}
			if c.GetConnectTime() == nil {
				t.Errorf("client of %q: no connect_time", user)
			} else if ct := c.GetConnectTime().AsTime(); ct.Before(before.Add(-time.Second)) || ct.After(after.Add(time.Second)) {
				t.Errorf("client of %q: connect_time %v, want between %v and %v", user, ct, before, after)
			}
		}
	}

	t.Run("gRPC", func(t *testing.T) {
		check(t, func(token string) ([]*roomdv1.Client, string) {
			resp, err := s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: room, PageSize: 3, PageToken: token})
			if err != nil {
				t.Fatalf("ListClients token %q: %v", token, err)
			}
			return resp.GetClients(), resp.GetNextPageToken()
		})
	})
	t.Run("REST", func(t *testing.T) {
		check(t, func(token string) ([]*roomdv1.Client, string) {
			var resp roomdv1.ListClientsResponse
			restOK(t, s, "GET", "/v1/rooms/"+room+"/clients?page_size=3&page_token="+url.QueryEscape(token), "", &resp)
			return resp.GetClients(), resp.GetNextPageToken()
		})
	})
}

func TestAdminPublish(t *testing.T) {
	s := startServer(t)
	const room = "stage"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})
	users := []string{"ann", "bob", "cid"}
	members := map[string]*websocket.Conn{}
	for _, u := range users {
		members[u] = s.dial(t, room, "user="+u)
	}
	// A member of another room hears nothing of this one.
	outsider := s.dial(t, "elsewhere", "user=ann")

	publish := func(t *testing.T, body string) uint32 {
		t.Helper()
		var resp roomdv1.PublishResponse
		restOK(t, s, "POST", "/v1/rooms/"+room+"/messages", body, &resp)
		return resp.GetRecipientCount()
	}

	t.Run("text", func(t *testing.T) {
		if n := publish(t, `{"text":"hello, \u00e9l\u00e8ves"}`); n != 3 {
			t.Errorf("recipientCount %d, want 3", n)
		}
		for _, u := range users {
			expectReceived(t, members[u], websocket.TextMessage, "hello, \u00e9l\u00e8ves")
		}
	})

	t.Run("binary", func(t *testing.T) {
		payload := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0x80, 'z'} // not UTF-8
		body := fmt.Sprintf(`{"binary":%q}`, base64.StdEncoding.EncodeToString(payload))
		if n := publish(t, body); n != 3 {
			t.Errorf("recipientCount %d, want 3", n)
		}
		for _, u := range users {
			expectReceived(t, members[u], websocket.BinaryMessage, string(payload))
		}
	})

	t.Run("empty text", func(t *testing.T) {
		// An empty text is a message, not a missing payload.
		if n := publish(t, `{"text":""}`); n != 3 {
			t.Errorf("recipientCount %d, want 3", n)
		}
		for _, u := range users {
			expectReceived(t, members[u], websocket.TextMessage, "")
		}
	})

	t.Run("exclude_client_ids", func(t *testing.T) {
		bobID := clientIDOfUser(t, s, room, "bob")
		if n := publish(t, fmt.Sprintf(`{"text":"not for bob","excludeClientIds":[%q]}`, bobID)); n != 2 {
			t.Errorf("recipientCount %d with one excluded, want 2", n)
		}
		if n := publish(t, `{"text":"for everyone"}`); n != 3 {
			t.Errorf("recipientCount %d, want 3", n)
		}
		expectReceived(t, members["ann"], websocket.TextMessage, "not for bob")
		expectReceived(t, members["cid"], websocket.TextMessage, "not for bob")
		// Messages reach a member in order: bob's first one being the
		// second message proves the first never came.
		for _, u := range users {
			expectReceived(t, members[u], websocket.TextMessage, "for everyone")
		}
	})

	// The outsider's first message is the one sent to its own room.
	if _, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: "elsewhere", Payload: &roomdv1.PublishRequest_Text{Text: "yours"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, outsider, websocket.TextMessage, "yours")
}

func TestAdminSendToClient(t *testing.T) {
	s := startServer(t)
	const room = "desk"
	ann := s.dial(t, room, "user=ann")
	bob := s.dial(t, room, "user=bob")
	annID := clientIDOfUser(t, s, room, "ann")

	var resp roomdv1.SendToClientResponse
	restOK(t, s, "POST", "/v1/clients/"+annID+"/messages", `{"text":"just for ann"}`, &resp)
	payload := []byte{0xde, 0xad, 0xbe, 0xef}
	restOK(t, s, "POST", "/v1/clients/"+annID+"/messages", fmt.Sprintf(`{"binary":%q}`, base64.StdEncoding.EncodeToString(payload)), &resp)

	var pub roomdv1.PublishResponse
	restOK(t, s, "POST", "/v1/rooms/"+room+"/messages", `{"text":"for the room"}`, &pub)
	if pub.GetRecipientCount() != 2 {
		t.Errorf("recipientCount %d, want 2", pub.GetRecipientCount())
	}

	expectReceived(t, ann, websocket.TextMessage, "just for ann")
	expectReceived(t, ann, websocket.BinaryMessage, string(payload))
	expectReceived(t, ann, websocket.TextMessage, "for the room")
	// Bob's first message is the room's: neither direct message reached him.
	expectReceived(t, bob, websocket.TextMessage, "for the room")
}

func TestAdminKickClient(t *testing.T) {
	s := startServer(t)
	const room = "ring"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})
	ann := s.dial(t, room, "user=ann")
	bob := s.dial(t, room, "user=bob")
	annID := clientIDOfUser(t, s, room, "ann")

	const reason = "spamming the room"
	var resp roomdv1.KickClientResponse
	restOK(t, s, "POST", "/v1/clients/"+annID+":kick", fmt.Sprintf(`{"reason":%q}`, reason), &resp)
	if c := resp.GetClient(); c.GetClientId() != annID || c.GetUserId() != "ann" || c.GetRoomId() != room {
		t.Errorf("KickClient returned client %v, want ann's %q in %q", c, annID, room)
	}

	// Gone from the room as soon as the call returned.
	for _, c := range mustListClients(t, s, room) {
		if c.GetClientId() == annID {
			t.Errorf("ListClients still lists kicked client %q", annID)
		}
	}
	var list roomdv1.ListClientsResponse
	restOK(t, s, "GET", "/v1/rooms/"+room+"/clients", "", &list)
	if len(list.GetClients()) != 1 || list.GetClients()[0].GetUserId() != "bob" {
		t.Errorf("REST ListClients after the kick: %v, want only bob", list.GetClients())
	}
	if n := mustGetRoom(t, s, room).GetClientCount(); n != 1 {
		t.Errorf("client_count %d after the kick, want 1", n)
	}

	expectClose(t, ann, 4000, reason)

	// Kicking again finds nobody.
	checkRESTError(t, s, "POST", "/v1/clients/"+annID+":kick", `{"reason":"again"}`, http.StatusNotFound, codes.NotFound, annID)

	// Bob stays connected.
	if _, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Text{Text: "still here"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, bob, websocket.TextMessage, "still here")

	// A close frame holds 123 bytes of reason: a longer one is refused,
	// naming the field, and the client stays; 123 bytes arrive whole.
	bobID := clientIDOfUser(t, s, room, "bob")
	long := "x" + strings.Repeat("€", 41) // 124 bytes
	_, err := s.admin.KickClient(adminContext(t), &roomdv1.KickClientRequest{ClientId: bobID, Reason: long})
	checkGRPCError(t, "KickClient with a 124-byte reason", err, codes.InvalidArgument, "reason", "124", "123")
	fits := "x" + strings.Repeat("€", 40) + "yy" // 123 bytes
	if _, err := s.admin.KickClient(adminContext(t), &roomdv1.KickClientRequest{ClientId: bobID, Reason: fits}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, bob, 4000, fits)
}

func TestAdminKickUser(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	// ann has one connection in red and two in blue; bob is in red too.
	annRed := s.dial(t, "red", "user=ann")
	annBlue1 := s.dial(t, "blue", "user=ann")
	annBlue2 := s.dial(t, "blue", "user=ann")
	bobRed := s.dial(t, "red", "user=bob")

	resp, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", RoomId: "red", Reason: "not in red"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKickedCount() != 1 {
		t.Errorf("KickUser in red: kickedCount %d, want 1", resp.GetKickedCount())
	}
	expectClose(t, annRed, 4000, "not in red")
	if n := mustGetRoom(t, s, "blue").GetClientCount(); n != 2 {
		t.Errorf("blue has %d clients after kicking ann from red, want 2", n)
	}

	// ann's blue connections and bob are still served.
	for _, room := range []string{"red", "blue"} {
		if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Text{Text: "in " + room}}); err != nil {
			t.Fatal(err)
		}
	}
	expectReceived(t, bobRed, websocket.TextMessage, "in red")
	expectReceived(t, annBlue1, websocket.TextMessage, "in blue")
	expectReceived(t, annBlue2, websocket.TextMessage, "in blue")

	resp, err = s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", Reason: "banned"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKickedCount() != 2 {
		t.Errorf("KickUser everywhere: kickedCount %d, want 2", resp.GetKickedCount())
	}
	expectClose(t, annBlue1, 4000, "banned")
	expectClose(t, annBlue2, 4000, "banned")

	// Nobody of ann's is left; bob was never touched.
	resp, err = s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKickedCount() != 0 {
		t.Errorf("KickUser of a user with no connections: kickedCount %d, want 0", resp.GetKickedCount())
	}
	if clients := mustListClients(t, s, "red"); len(clients) != 1 || clients[0].GetUserId() != "bob" {
		t.Errorf("red lists %v, want only bob", clients)
	}

	// The REST route does the same.
	s.dial(t, "red", "user=cid")
	cid := s.dial(t, "green", "user=cid")
	var rest roomdv1.KickUserResponse
	restOK(t, s, "POST", "/v1/users/cid:kick", `{"roomId":"green","reason":"green is closed"}`, &rest)
	if rest.GetKickedCount() != 1 {
		t.Errorf("REST KickUser: kickedCount %d, want 1", rest.GetKickedCount())
	}
	expectClose(t, cid, 4000, "green is closed")
}

func TestAdminDeleteRoom(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)

	t.Run("gRPC", func(t *testing.T) {
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "doomed"})
		var members []*websocket.Conn
		for i := range 3 {
			members = append(members, s.dial(t, "doomed", fmt.Sprintf("user=u%d", i)))
		}
		resp, err := s.admin.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: "doomed"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetDisconnectedCount() != 3 || resp.GetRemovedCount() != 3 {
			t.Errorf("%v, want disconnected_count and removed_count 3", resp)
		}
		for _, ws := range members {
			expectClose(t, ws, 4001, "")
		}
		_, err = s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "doomed"})
		checkGRPCError(t, "GetRoom after DeleteRoom", err, codes.NotFound, `"doomed"`)
	})

	t.Run("REST", func(t *testing.T) {
		// An auto-created room can be deleted too.
		ws := s.dial(t, "fleeting", "user=ann")
		var resp roomdv1.DeleteRoomResponse
		restOK(t, s, "DELETE", "/v1/rooms/fleeting", "", &resp)
		if resp.GetDisconnectedCount() != 1 || resp.GetRemovedCount() != 1 {
			t.Errorf("%v, want disconnectedCount and removedCount 1", &resp)
		}
		expectClose(t, ws, 4001, "")
		checkRESTError(t, s, "GET", "/v1/rooms/fleeting", "", http.StatusNotFound, codes.NotFound, `"fleeting"`)

		// An empty room reports nobody disconnected.
		mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "empty"})
		restOK(t, s, "DELETE", "/v1/rooms/empty", "", &resp)
		if resp.GetDisconnectedCount() != 0 || resp.GetRemovedCount() != 0 {
			t.Errorf("empty room: %v, want nobody disconnected or removed", &resp)
		}
	})
}

// recvEvent returns the next WatchRoom event; the stream's context bounds
// the wait.
func recvEvent(t *testing.T, stream grpc.ServerStreamingClient[roomdv1.WatchRoomResponse]) *roomdv1.WatchRoomResponse {
	t.Helper()
	ev, err := stream.Recv()
	if err != nil {
		t.Fatalf("WatchRoom: %v", err)
	}
	if ev.GetTime() == nil {
		t.Errorf("event %v has no time", ev)
	}
	return ev
}

func TestAdminWatchRoomGRPC(t *testing.T) {
	s := startServer(t)
	const room = "watched"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	stream, err := s.admin.WatchRoom(ctx, &roomdv1.WatchRoomRequest{RoomId: room})
	if err != nil {
		t.Fatal(err)
	}
	// The server sends headers once the watch is registered.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}

	ann := s.dial(t, room, "user=ann")
	joined := recvEvent(t, stream).GetClientJoined().GetClient()
	annID := clientIDOfUser(t, s, room, "ann")
	if joined.GetClientId() != annID || joined.GetUserId() != "ann" || joined.GetRoomId() != room || joined.GetRemoteAddr() != ann.LocalAddr().String() {
		t.Fatalf("ClientJoined %v, want ann's client %q from %s", joined, annID, ann.LocalAddr())
	}

	if err := ann.WriteMessage(websocket.TextMessage, []byte("hi all")); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, ann, websocket.TextMessage, "hi all") // echo is on
	published := recvEvent(t, stream).GetMessagePublished()
	if published.GetFromClientId() != annID || published.GetText() != "hi all" || published.GetRecipientCount() != 1 {
		t.Fatalf("MessagePublished %v, want %q from %q to 1 member", published, "hi all", annID)
	}

	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Binary{Binary: []byte{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	published = recvEvent(t, stream).GetMessagePublished()
	if published.GetFromClientId() != "" || string(published.GetBinary()) != "\x01\x02\x03" || published.GetRecipientCount() != 1 {
		t.Fatalf("MessagePublished %v, want binary 010203 from the admin API to 1 member", published)
	}
	expectReceived(t, ann, websocket.BinaryMessage, "\x01\x02\x03")

	closeFromClient(t, ann, "bye")
	checkLeft(t, recvLeft(t, stream), annID, roomdv1.LeaveCause_LEAVE_CAUSE_CLOSED_BY_CLIENT, 1000, "bye")

	cid := s.dial(t, room, "user=cid")
	cidID := recvEvent(t, stream).GetClientJoined().GetClient().GetClientId()
	if _, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: cidID, Reason: "off you go"}); err != nil {
		t.Fatal(err)
	}
	checkLeft(t, recvLeft(t, stream), cidID, roomdv1.LeaveCause_LEAVE_CAUSE_KICKED, 4000, "off you go")
	expectClose(t, cid, 4000, "off you go")

	bob := s.dial(t, room, "user=bob")
	bobID := recvEvent(t, stream).GetClientJoined().GetClient().GetClientId()
	if _, err := s.admin.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	checkLeft(t, recvLeft(t, stream), bobID, roomdv1.LeaveCause_LEAVE_CAUSE_ROOM_DELETED, 4001, "room deleted")
	if ev := recvEvent(t, stream); ev.GetRoomDeleted() == nil {
		t.Fatalf("got %v, want RoomDeleted", ev)
	}
	if ev, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after RoomDeleted: got %v, %v; want the stream to end", ev, err)
	}
	expectClose(t, bob, 4001, "")
}

func TestAdminWatchRoomGRPCMissingRoom(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	stream, err := s.admin.WatchRoom(ctx, &roomdv1.WatchRoomRequest{RoomId: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	checkGRPCError(t, "WatchRoom", err, codes.NotFound, `"nowhere"`)
}

// restWatch is a REST WatchRoom stream: one JSON object a line.
type restWatch struct {
	resp  *http.Response
	lines *bufio.Scanner
}

// startRESTWatch sends GET /v1/rooms/{room}/events in the background; the
// response arrives on the channel once the gateway sends its headers. The
// stream ends when the test does.
func startRESTWatch(t *testing.T, s *testServer, room string) <-chan *restWatch {
	t.Helper()
	return startRESTWatchOf(t, s, "/v1/rooms/"+room+"/events")
}

// startRESTWatchOf is startRESTWatch of a path that may carry a query.
func startRESTWatchOf(t *testing.T, s *testServer, path string) <-chan *restWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	watches := make(chan *restWatch, 1)
	done := make(chan struct{})
	var watch *restWatch // set before done is closed
	go func() {
		defer close(done)
		defer close(watches)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("GET events: %v", err)
			}
			return
		}
		watch = &restWatch{resp: resp, lines: bufio.NewScanner(resp.Body)}
		watches <- watch
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if watch != nil {
			watch.resp.Body.Close()
		}
	})
	return watches
}

// next returns the "result" of the next line; the caller's request context
// bounds the wait.
func (w *restWatch) next(t *testing.T) *roomdv1.WatchRoomResponse {
	t.Helper()
	if !w.lines.Scan() {
		t.Fatalf("event stream ended: %v", w.lines.Err())
	}
	var line struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(w.lines.Bytes(), &line); err != nil {
		t.Fatalf("event line %q: %v", w.lines.Bytes(), err)
	}
	if line.Result == nil {
		t.Fatalf("event line %q has no result", w.lines.Bytes())
	}
	var ev roomdv1.WatchRoomResponse
	if err := protojson.Unmarshal(line.Result, &ev); err != nil {
		t.Fatalf("event %s: %v", line.Result, err)
	}
	return &ev
}

func TestAdminWatchRoomREST(t *testing.T) {
	s := startServer(t)
	const room = "streamed"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})

	// The 200 arrives once the watch is in place: from then on it sees
	// everything.
	var w *restWatch
	select {
	case w = <-startRESTWatch(t, s, room):
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers within 5s of GET events")
	}
	if w == nil {
		t.Fatal("GET events failed")
	}
	if w.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET events: HTTP %d", w.resp.StatusCode)
	}

	ann := s.dial(t, room, "user=ann")
	annID := clientIDOfUser(t, s, room, "ann")
	if err := ann.WriteMessage(websocket.TextMessage, []byte("over REST")); err != nil {
		t.Fatal(err)
	}

	ev := w.next(t)
	if joined := ev.GetClientJoined().GetClient(); joined.GetClientId() != annID || joined.GetUserId() != "ann" {
		t.Fatalf("got %v, want ClientJoined of ann's %q", ev, annID)
	}
	ev = w.next(t)
	if mp := ev.GetMessagePublished(); mp.GetFromClientId() != annID || mp.GetText() != "over REST" || mp.GetRecipientCount() != 1 {
		t.Fatalf("got %v, want MessagePublished %q from %q to 1 member", ev, "over REST", annID)
	}

	if _, err := s.admin.DeleteRoom(adminContext(t), &roomdv1.DeleteRoomRequest{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	if ev := w.next(t); ev.GetClientLeft().GetCloseCode() != 4001 || ev.GetClientLeft().GetCause() != roomdv1.LeaveCause_LEAVE_CAUSE_ROOM_DELETED {
		t.Fatalf("got %v, want ClientLeft with 4001 and cause ROOM_DELETED", ev)
	}
	if ev := w.next(t); ev.GetRoomDeleted() == nil {
		t.Fatalf("got %v, want RoomDeleted", ev)
	}
	if w.lines.Scan() {
		t.Fatalf("after RoomDeleted: got %q, want the stream to end", w.lines.Bytes())
	}
}

// TestAdminWatchRoomRESTHeadersBeforeEvents checks what WatchRoom promises a
// REST client (rooms/admin/service.go): the 200 arrives before the first
// event, so that the client knows when its watch is in place.
func TestAdminWatchRoomRESTHeadersBeforeEvents(t *testing.T) {
	s := startServer(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "quiet"})
	watches := startRESTWatch(t, s, "quiet")
	select {
	case w := <-watches:
		if w == nil || w.resp.StatusCode != http.StatusOK {
			t.Fatalf("GET events: %v", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers within 5s of GET /v1/rooms/quiet/events in a room where nothing happens")
	}
}

func TestAdminHealth(t *testing.T) {
	s := startServer(t)
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "roomd.v1.RoomService"} {
		resp, err := health.Check(adminContext(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check of %q: %v", service, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v, want SERVING", service, resp.GetStatus())
		}
	}

	resp, err := http.Get(s.adminURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: HTTP %d %q, want 200", resp.StatusCode, body)
	}
}

func TestAdminOpenAPI(t *testing.T) {
	s := startServer(t)
	var doc struct {
		Swagger string `json:"swagger"`
		Info    struct {
			Title, Description, Version string
		} `json:"info"`
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if code := s.rest(t, "GET", "/openapi.json", "", &doc); code != http.StatusOK {
		t.Fatalf("GET /openapi.json: HTTP %d", code)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger %q, want 2.0", doc.Swagger)
	}
	// The product's name and the binary's version, not the proto file's
	// name and the generator's placeholder.
	if doc.Info.Title != "roomd admin API" || doc.Info.Description == "" ||
		doc.Info.Version == "" || doc.Info.Version == "version not set" || doc.Info.Version != admin.BuildVersion() {
		t.Errorf("info %+v, want title %q, a description and version %q", doc.Info, "roomd admin API", admin.BuildVersion())
	}
	for _, path := range []string{"/v1/rooms", "/v1/rooms/{roomId}", "/v1/rooms/{roomId}/events"} {
		if _, ok := doc.Paths[path]; !ok {
			t.Errorf("no path %q among %v", path, slices.Sorted(maps.Keys(doc.Paths)))
		}
	}
}

func TestAdminReflection(t *testing.T) {
	s := startServer(t)
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"roomd.v1.RoomService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %q, want %q among them", names, want)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseSend: %v, want the stream to end", err)
	}
}
