package main

// What the admin API says of the nodes behind an answer, on the one node
// roomd is today: every answer is whole.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	roomdv1 "roomd/gen/roomd/v1"
)

// partialAnswer is a response that can leave out nodes.
type partialAnswer interface {
	GetPartial() bool
	GetUnreachableNodes() []string
}

// checkWhole requires a gRPC answer to cover every node.
func checkWhole(t *testing.T, what string, resp partialAnswer) {
	t.Helper()
	if resp.GetPartial() || len(resp.GetUnreachableNodes()) != 0 {
		t.Errorf("%s: partial %v, unreachable nodes %q; want a whole answer", what, resp.GetPartial(), resp.GetUnreachableNodes())
	}
}

// checkWholeREST requires a REST answer to say partial false and name no
// unreachable nodes.
func checkWholeREST(t *testing.T, s *testServer, method, path, body string) {
	t.Helper()
	var got struct {
		Partial          *bool     `json:"partial"`
		UnreachableNodes *[]string `json:"unreachableNodes"`
	}
	if code := s.rest(t, method, path, body, &got); code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", method, path, code)
	}
	if got.Partial == nil || *got.Partial || got.UnreachableNodes == nil || len(*got.UnreachableNodes) != 0 {
		raw, _ := json.Marshal(got)
		t.Errorf("%s %s: %s, want partial false and unreachableNodes []", method, path, raw)
	}
}

func TestAdminAnswersOfOneNodeAreWhole(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	s.dial(t, "lobby", "user=ann")
	s.dial(t, "lobby", "user=bob")

	get, err := s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, "GetRoom", get)
	list, err := s.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, "ListRooms", list)
	clients, err := s.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, "ListClients", clients)
	kick, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", Reason: "bye"})
	if err != nil || kick.GetKickedCount() != 1 {
		t.Fatalf("KickUser: %v, %v", kick, err)
	}
	checkWhole(t, "KickUser", kick)

	checkWholeREST(t, s, "GET", "/v1/rooms/lobby", "")
	checkWholeREST(t, s, "GET", "/v1/rooms", "")
	checkWholeREST(t, s, "GET", "/v1/rooms/lobby/clients", "")
	checkWholeREST(t, s, "POST", "/v1/users/bob:kick", `{"banSeconds":60}`)
	checkWholeREST(t, s, "DELETE", "/v1/rooms/lobby", "")

	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "gone"})
	del, err := s.admin.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, "DeleteRoom", del)
}

// Every client the admin API shows names its node: "local", as roomd runs
// without a node name.
func TestAdminClientsNameTheirNode(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	stream := watchRoom(t, s, "lobby")
	s.dial(t, "lobby", "user=ann")
	joined := recvEvent(t, stream).GetClientJoined().GetClient()

	for _, c := range mustListClients(t, s, "lobby") {
		if c.GetNode() != "local" {
			t.Errorf("ListClients: client %q on node %q, want local", c.GetClientId(), c.GetNode())
		}
	}
	var listed roomdv1.ListClientsResponse
	restOK(t, s, "GET", "/v1/rooms/lobby/clients", "", &listed)
	if c := listed.GetClients(); len(c) != 1 || c[0].GetNode() != "local" {
		t.Errorf("GET clients: %v, want one client on node local", c)
	}
	if joined.GetNode() != "local" {
		t.Errorf("ClientJoined: client on node %q, want local", joined.GetNode())
	}
	kicked, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: joined.GetClientId()})
	if err != nil {
		t.Fatal(err)
	}
	if kicked.GetClient().GetNode() != "local" {
		t.Errorf("KickClient: client on node %q, want local", kicked.GetClient().GetNode())
	}
	if left := recvLeft(t, stream); left.GetClient().GetNode() != "local" {
		t.Errorf("ClientLeft: client on node %q, want local", left.GetClient().GetNode())
	}
}

// Publish answers the position each message got, the room's last_seq and
// epoch agree with it, and WatchRoom shows the same seq for each message.
func TestAdminPublishAnswersItsPosition(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	room := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	if room.GetEpoch() == "" {
		t.Fatal("a new room has no epoch")
	}
	stream := watchRoom(t, s, "lobby")
	s.dial(t, "lobby", "user=ann")
	recvJoined(t, stream)

	var seqs []uint64
	for i := range 3 {
		resp, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetEpoch() != room.GetEpoch() || resp.GetRecipientCount() != 1 {
			t.Errorf("Publish: %v, want epoch %q and 1 recipient", resp, room.GetEpoch())
		}
		seqs = append(seqs, resp.GetSeq())
		var rest roomdv1.PublishResponse
		restOK(t, s, "POST", "/v1/rooms/lobby/messages", fmt.Sprintf(`{"text":"rest %d"}`, i), &rest)
		if rest.GetEpoch() != room.GetEpoch() || rest.GetRecipientCount() != 1 {
			t.Errorf("POST messages: %v, want epoch %q and 1 recipient", &rest, room.GetEpoch())
		}
		seqs = append(seqs, rest.GetSeq())
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("positions %v do not grow", seqs)
		}
	}
	if last := mustGetRoom(t, s, "lobby").GetLastSeq(); last != seqs[len(seqs)-1] {
		t.Errorf("room's last_seq %d, want the last publish's %d", last, seqs[len(seqs)-1])
	}
	for _, want := range seqs {
		if got := recvEvent(t, stream).GetMessagePublished().GetSeq(); got != want {
			t.Fatalf("MessagePublished seq %d, want %d", got, want)
		}
	}
}
