package main

// Admin input limits: each refusal is INVALID_ARGUMENT (HTTP 400) naming the
// field, and changes nothing; input right at a limit is accepted.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc/codes"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestAdminMetadataLimits(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	entries := func(n int) map[string]string {
		md := map[string]string{}
		for i := range n {
			md[fmt.Sprintf("k%02d", i)] = "v"
		}
		return md
	}
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		mention  []string
	}{
		{"33 entries", entries(33), []string{"metadata", "33", "32"}},
		{"65-byte key", map[string]string{strings.Repeat("k", 65): "v"}, []string{"metadata key", "65", "64"}},
		{"empty key", map[string]string{"": "v"}, []string{"metadata key", "1 to 64"}},
		{"1025-byte value", map[string]string{"topic": strings.Repeat("v", 1025)}, []string{"metadata value", `"topic"`, "1025", "1024"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := strings.ReplaceAll(tc.name, " ", "-")
			_, err := s.admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: room, Metadata: tc.metadata})
			checkGRPCError(t, "CreateRoom", err, codes.InvalidArgument, tc.mention...)
			body, _ := json.Marshal(map[string]any{"roomId": room, "metadata": tc.metadata})
			checkRESTError(t, s, "POST", "/v1/rooms", string(body), http.StatusBadRequest, codes.InvalidArgument, tc.mention...)
			if _, err := s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: room}); err == nil {
				t.Errorf("a refused CreateRoom made room %q", room)
			}
		})
	}

	// Everything at its limit at once is fine.
	full := entries(31)
	full[strings.Repeat("k", 64)] = strings.Repeat("v", 1024)
	if r := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "full", Metadata: full}); len(r.GetMetadata()) != 32 {
		t.Errorf("room made with %d metadata entries, want 32", len(r.GetMetadata()))
	}
}

func TestAdminPayloadLimit(t *testing.T) {
	s := startServer(t, "-max-message-bytes", "100")
	ctx := adminContext(t)
	ws := s.dial(t, "lobby", "user=ann")
	annID := clientIDOfUser(t, s, "lobby", "ann")
	over, atLimit := strings.Repeat("x", 101), strings.Repeat("y", 100)

	_, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: over}})
	checkGRPCError(t, "Publish 101-byte text", err, codes.InvalidArgument, "text", "101", "100")
	_, err = s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Binary{Binary: []byte(over)}})
	checkGRPCError(t, "Publish 101-byte binary", err, codes.InvalidArgument, "binary", "101")
	_, err = s.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: annID, Payload: &roomdv1.SendToClientRequest_Text{Text: over}})
	checkGRPCError(t, "SendToClient 101-byte text", err, codes.InvalidArgument, "text", "101")
	checkRESTError(t, s, "POST", "/v1/rooms/lobby/messages", fmt.Sprintf(`{"text":%q}`, over), http.StatusBadRequest, codes.InvalidArgument, "text", "101")

	// At the limit it arrives; nothing refused arrived before it.
	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: atLimit}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, ws, websocket.TextMessage, atLimit)
}

func TestAdminRequestSizeLimit(t *testing.T) {
	s := startServer(t)
	// Over the 4 MiB gRPC bound the transport refuses before any handler.
	huge := strings.Repeat("x", 5<<20)
	_, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: huge}})
	checkGRPCError(t, "Publish of 5 MiB", err, codes.ResourceExhausted)
	// A REST body over twice that is cut off while the gateway reads it.
	body := `{"text":"` + strings.Repeat("x", 9<<20) + `"}`
	var got restErrorBody
	if status := s.rest(t, "POST", "/v1/rooms/lobby/messages", body, &got); status != http.StatusBadRequest || !strings.Contains(got.Message, "too large") {
		t.Errorf("POST of a 9 MiB body: HTTP %d %q, want 400 saying it is too large", status, got.Message)
	}
	// The server is fine afterwards.
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "after"})
}

func TestAdminReasonAndIDLimits(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	ws := s.dial(t, "lobby", "user=ann")
	annID := clientIDOfUser(t, s, "lobby", "ann")
	reason := strings.Repeat("r", 124)
	longID := strings.Repeat("i", 129)

	_, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", Reason: reason})
	checkGRPCError(t, "KickUser with a 124-byte reason", err, codes.InvalidArgument, "reason", "124", "123")
	checkRESTError(t, s, "POST", "/v1/users/ann:kick", fmt.Sprintf(`{"reason":%q}`, reason), http.StatusBadRequest, codes.InvalidArgument, "reason")
	_, err = s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: annID, Reason: reason, BanSeconds: 60})
	checkGRPCError(t, "KickClient with a 124-byte reason", err, codes.InvalidArgument, "reason")

	for _, tc := range []struct {
		what  string
		call  func() error
		field string
	}{
		{"KickUser", func() error {
			_, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: longID})
			return err
		}, "user_id"},
		{"Unban", func() error {
			_, err := s.admin.Unban(ctx, &roomdv1.UnbanRequest{UserId: longID})
			return err
		}, "user_id"},
		{"KickClient", func() error {
			_, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: longID})
			return err
		}, "client_id"},
		{"SendToClient", func() error {
			_, err := s.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: longID, Payload: &roomdv1.SendToClientRequest_Text{Text: "hi"}})
			return err
		}, "client_id"},
		{"Publish", func() error {
			_, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", ExcludeClientIds: []string{annID, longID}, Payload: &roomdv1.PublishRequest_Text{Text: "hi"}})
			return err
		}, "exclude_client_ids[1]"},
	} {
		checkGRPCError(t, tc.what+" with a 129-byte id", tc.call(), codes.InvalidArgument, tc.field, "129", "128")
	}
	checkRESTError(t, s, "DELETE", "/v1/bans/"+longID, "", http.StatusBadRequest, codes.InvalidArgument, "user_id")

	// ann was neither kicked nor sent anything.
	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: "first"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, ws, websocket.TextMessage, "first")
}

func TestAdminPageSizeLimit(t *testing.T) {
	s := startServer(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	ctx := adminContext(t)
	calls := map[string]func(size int32) error{
		"ListRooms": func(size int32) error {
			_, err := s.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{PageSize: size})
			return err
		},
		"ListClients": func(size int32) error {
			_, err := s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "lobby", PageSize: size})
			return err
		},
		"ListBans": func(size int32) error {
			_, err := s.admin.ListBans(ctx, &roomdv1.ListBansRequest{PageSize: size})
			return err
		},
	}
	for name, call := range calls {
		checkGRPCError(t, name+" page_size 1001", call(1001), codes.InvalidArgument, "page_size", "1001", "1000")
		if err := call(1000); err != nil {
			t.Errorf("%s page_size 1000: %v", name, err)
		}
	}
	for _, path := range []string{"/v1/rooms?pageSize=1001", "/v1/rooms/lobby/clients?pageSize=1001", "/v1/bans?pageSize=1001"} {
		checkRESTError(t, s, "GET", path, "", http.StatusBadRequest, codes.InvalidArgument, "page_size", "1001")
	}
}
