package main

// What the admin API says of the nodes behind an answer, on the one node
// roomd is today: every answer is whole.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/admin"
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

// publishTexts publishes each text to room through the admin API and
// returns the positions they got.
func publishTexts(t *testing.T, s *testServer, room string, texts ...string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, text := range texts {
		resp, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Text{Text: text}})
		if err != nil {
			t.Fatalf("Publish %q: %v", text, err)
		}
		seqs = append(seqs, resp.GetSeq())
	}
	return seqs
}

// checkPublished requires ev to be the message text of seq, published
// before the time given (when not zero).
func checkPublished(t *testing.T, ev *roomdv1.WatchRoomResponse, seq uint64, text string, before time.Time) {
	t.Helper()
	mp := ev.GetMessagePublished()
	if mp == nil || mp.GetSeq() != seq || mp.GetText() != text {
		t.Fatalf("got %v, want MessagePublished %q of seq %d", ev, text, seq)
	}
	if !before.IsZero() && !ev.GetTime().AsTime().Before(before) {
		t.Errorf("replayed message %d has time %v, not the time it was published (before %v)", seq, ev.GetTime().AsTime(), before)
	}
}

// A watch from since_seq gets the messages after it from the history, with
// the times they were published, then the live ones: exactly the seqs
// after since_seq, each once, and then whatever happens next.
func TestAdminWatchRoomSinceSeq(t *testing.T) {
	s := startServer(t)
	room := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	seqs := publishTexts(t, s, "lobby", "m0", "m1", "m2", "m3", "m4")
	watchedAt := time.Now()

	t.Run("gRPC", func(t *testing.T) {
		since := seqs[1]
		stream, err := s.admin.WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "lobby", SinceSeq: &since, Epoch: room.GetEpoch()})
		if err != nil {
			t.Fatal(err)
		}
		for i := 2; i < 5; i++ {
			checkPublished(t, recvEvent(t, stream), seqs[i], fmt.Sprintf("m%d", i), watchedAt)
		}
		live := publishTexts(t, s, "lobby", "live0", "live1")
		checkPublished(t, recvEvent(t, stream), live[0], "live0", time.Time{})
		checkPublished(t, recvEvent(t, stream), live[1], "live1", time.Time{})
		s.dial(t, "lobby", "user=ann") // what comes next is the join: nothing was doubled
		if ev := recvEvent(t, stream); ev.GetClientJoined() == nil {
			t.Fatalf("got %v, want ClientJoined", ev)
		}
		seqs = append(seqs, live...)
	})

	t.Run("REST", func(t *testing.T) {
		// From the last message but one; no epoch is the room's current one.
		since := seqs[len(seqs)-2]
		var w *restWatch
		select {
		case w = <-startRESTWatchOf(t, s, fmt.Sprintf("/v1/rooms/lobby/events?sinceSeq=%d", since)):
		case <-time.After(5 * time.Second):
			t.Fatal("no response headers within 5s")
		}
		if w == nil || w.resp.StatusCode != http.StatusOK {
			t.Fatalf("GET events?sinceSeq: %v", w)
		}
		checkPublished(t, w.next(t), seqs[len(seqs)-1], "live1", time.Now())
		live := publishTexts(t, s, "lobby", "live2")
		checkPublished(t, w.next(t), live[0], "live2", time.Time{})
		s.dial(t, "lobby", "user=bob")
		if ev := w.next(t); ev.GetClientJoined().GetClient().GetUserId() != "bob" {
			t.Fatalf("got %v, want bob's ClientJoined", ev)
		}
	})
}

// A position the history no longer reaches, or one the room has not
// reached, or of another epoch, is OUT_OF_RANGE (HTTP 400), never a watch
// that silently skips.
func TestAdminWatchRoomSinceSeqOutOfRange(t *testing.T) {
	s := startServer(t)
	history := uint32(2)
	room := mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "short", HistorySize: &history})
	seqs := publishTexts(t, s, "short", "a", "b", "c", "d", "e")
	last := seqs[len(seqs)-1]

	for _, tc := range []struct {
		name  string
		since uint64
		epoch string
		want  string
	}{
		{"trimmed", seqs[1], "", "keeps history back to message"},
		{"past the latest", last + 1, "", "has no message"},
		{"another epoch", last, "not-" + room.GetEpoch(), "restarted its history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := tc.since
			stream, err := s.admin.WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "short", SinceSeq: &since, Epoch: tc.epoch})
			if err == nil {
				_, err = stream.Recv()
			}
			checkGRPCError(t, "WatchRoom", err, codes.OutOfRange, tc.want)
			path := fmt.Sprintf("/v1/rooms/short/events?since_seq=%d&epoch=%s", tc.since, tc.epoch)
			checkRESTError(t, s, "GET", path, "", http.StatusBadRequest, codes.OutOfRange, tc.want)
		})
	}

	// The oldest position kept still works; an epoch alone is a mistake.
	since := seqs[2]
	stream, err := s.admin.WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "short", SinceSeq: &since})
	if err != nil {
		t.Fatal(err)
	}
	checkPublished(t, recvEvent(t, stream), seqs[3], "d", time.Now())
	checkPublished(t, recvEvent(t, stream), seqs[4], "e", time.Now())
	checkRESTError(t, s, "GET", "/v1/rooms/short/events?epoch="+room.GetEpoch(), "", http.StatusBadRequest, codes.InvalidArgument, "since_seq")
}

// ListNodes answers with the one node roomd is: its name, the addresses its
// listeners really have, its build and how many clients it holds.
func TestAdminListNodes(t *testing.T) {
	before := time.Now()
	s := startServer(t)
	ctx := adminContext(t)
	s.dial(t, "a", "user=ann")
	s.dial(t, "b", "user=bob")
	cid := dialSession(t, s, "user=cid") // a client protocol connection in no room

	check := func(t *testing.T, what string, resp *roomdv1.ListNodesResponse, clients uint32) {
		t.Helper()
		checkWhole(t, what, resp)
		if len(resp.GetNodes()) != 1 {
			t.Fatalf("%s: nodes %v, want one", what, resp.GetNodes())
		}
		n := resp.GetNodes()[0]
		if n.GetName() != "local" || n.GetPublicUrl() != "http://"+s.public || n.GetAdminGrpcAddr() != s.grpcAddr || "http://"+n.GetAdminHttpAddr() != s.adminURL {
			t.Errorf("%s: node %v, want local at http://%s, admin gRPC %s and REST %s", what, n, s.public, s.grpcAddr, s.adminURL)
		}
		if n.GetVersion() == "" || n.GetVersion() != admin.BuildVersion() {
			t.Errorf("%s: version %q, want %q", what, n.GetVersion(), admin.BuildVersion())
		}
		if start := n.GetStartTime().AsTime(); start.Before(before) || start.After(time.Now()) {
			t.Errorf("%s: start time %v, not while the server started (after %v)", what, start, before)
		}
		if beat := n.GetLastHeartbeat().AsTime(); time.Since(beat) > 5*time.Second || beat.After(time.Now()) {
			t.Errorf("%s: last heartbeat %v, want about now", what, beat)
		}
		if n.GetClientCount() != clients {
			t.Errorf("%s: client count %d, want %d", what, n.GetClientCount(), clients)
		}
	}
	// The server takes a connection in before it completes the upgrade.
	resp, err := s.admin.ListNodes(ctx, &roomdv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ListNodes", resp, 3)
	var rest roomdv1.ListNodesResponse
	restOK(t, s, "GET", "/v1/nodes", "", &rest)
	check(t, "GET /v1/nodes", &rest, 3)

	cid.ws.Close()
	eventually(t, "the closed connection is no longer counted", func() bool {
		resp, err := s.admin.ListNodes(ctx, &roomdv1.ListNodesRequest{})
		if err != nil || len(resp.GetNodes()) != 1 {
			t.Fatalf("ListNodes: %v, %v", resp, err)
		}
		return resp.GetNodes()[0].GetClientCount() == 2
	})
}

// With -node-name, ListNodes and every client the API shows name that node.
func TestAdminNodeName(t *testing.T) {
	s := startServer(t, "-node-name", "edge-1")
	s.dial(t, "lobby", "user=ann")
	nodes, err := s.admin.ListNodes(adminContext(t), &roomdv1.ListNodesRequest{})
	if err != nil || len(nodes.GetNodes()) != 1 || nodes.GetNodes()[0].GetName() != "edge-1" {
		t.Fatalf("ListNodes: %v, %v; want one node, edge-1", nodes, err)
	}
	if c := mustListClients(t, s, "lobby"); len(c) != 1 || c[0].GetNode() != "edge-1" {
		t.Errorf("clients %v, want ann's on node edge-1", c)
	}
}
