package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/cluster/natstest"
)

// startNode runs one roomd node of a cluster on the NATS at url.
func startNode(t *testing.T, url, name string, args ...string) *testServer {
	t.Helper()
	return startServer(t, append([]string{"-nats-url", url, "-node-name", name, "-cluster-call-timeout", "1s"}, args...)...)
}

// startNodes runs a node of each name and waits until each knows them all.
func startNodes(t *testing.T, url string, names ...string) []*testServer {
	t.Helper()
	var nodes []*testServer
	for _, name := range names {
		nodes = append(nodes, startNode(t, url, name))
	}
	for _, n := range nodes {
		waitNodes(t, n, len(names))
	}
	return nodes
}

// waitNodes waits until s lists n live nodes.
func waitNodes(t *testing.T, s *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := s.admin.ListNodes(ctx, &roomdv1.ListNodesRequest{})
		cancel()
		if err == nil && len(resp.GetNodes()) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s lists %v (%v), want %d nodes", s.node, resp.GetNodes(), err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Raw members on three nodes, writing at once: each gets every message of
// the others once, and all see one order.
func TestClusterRelaysRawMessagesInOneOrder(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b", "c")
	var conns []*websocket.Conn
	for _, n := range nodes {
		conns = append(conns, n.dial(t, "chat", "user=u"))
	}
	waitMembers(t, nodes[0], "chat", 3)
	const each = 20
	for k := range each {
		for i, ws := range conns {
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "%d-%d", i, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var first []string
	for i, ws := range conns {
		var got []string
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for len(got) < 3*each {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("member on node %d: %v after %d messages", i, err, len(got))
			}
			got = append(got, string(data))
		}
		if i == 0 {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("node %d's member saw another order:\n%v\n%v", i, got, first)
		}
	}
}

// waitMembers waits until s's node counts n members of room, across nodes.
func waitMembers(t *testing.T, s *testServer, room string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got struct {
			Room struct {
				ClientCount int `json:"clientCount"`
			} `json:"room"`
		}
		status := s.rest(t, "GET", "/v1/rooms/"+room, "", &got)
		if status == 200 && got.Room.ClientCount == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s has %d members (HTTP %d), want %d", room, got.Room.ClientCount, status, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Rooms made through the API on one node are on every node; two nodes
// making one at once give one success; deleting it on a third closes its
// raw members on every node with 4001.
func TestClusterRoomsCreatedAnywhereAreEverywhere(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := grpcCtx(t)
	if _, err := a.admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "made", MaxClients: 10, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	got, err := b.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "made"})
	if err != nil || got.GetRoom().GetMaxClients() != 10 || got.GetRoom().GetMetadata()["k"] != "v" || got.GetRoom().GetAutoCreated() {
		t.Fatalf("GetRoom on b: %v %v", got, err)
	}
	// Raw members on b and c, without -auto-create needed: the room is there.
	onB, onC := b.dial(t, "made", ""), c.dial(t, "made", "")
	waitMembers(t, a, "made", 2)

	// The create race: one success among the three nodes, the rest AlreadyExists.
	var wg sync.WaitGroup
	var ok, exists atomic.Int32
	for _, n := range []*testServer{a, b, c, a, b, c} {
		wg.Go(func() {
			_, err := n.admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "race"})
			switch status.Code(err) {
			case codes.OK:
				ok.Add(1)
			case codes.AlreadyExists:
				exists.Add(1)
			default:
				t.Errorf("create race: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || exists.Load() != 5 {
		t.Errorf("create race: %d successes, %d AlreadyExists; want 1 and 5", ok.Load(), exists.Load())
	}

	del, err := c.admin.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: "made"})
	if err != nil || del.GetRemovedCount() != 2 || del.GetDisconnectedCount() != 2 || del.GetPartial() {
		t.Fatalf("DeleteRoom on c: %v %v, want 2 removed and disconnected", del, err)
	}
	for _, ws := range []*websocket.Conn{onB, onC} {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 4001) {
			t.Errorf("a member of the deleted room got %v, want close 4001", err)
		}
	}
	if _, err := a.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "made"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetRoom after the delete: %v, want NotFound", err)
	}
}

// The admin API of any node lists, kicks, sends to and bans the clients of
// every node.
func TestClusterAdminReachesEveryNode(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := grpcCtx(t)
	conns := map[string]*websocket.Conn{"a": a.dial(t, "hall", "user=ann"), "b": b.dial(t, "hall", "user=bob"), "c": c.dial(t, "hall", "user=cat")}
	waitMembers(t, a, "hall", 3)

	list, err := a.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "hall"})
	if err != nil || list.GetPartial() || len(list.GetClients()) != 3 {
		t.Fatalf("ListClients on a: %v %v", list, err)
	}
	byUser := map[string]*roomdv1.Client{}
	for _, cl := range list.GetClients() {
		byUser[cl.GetUserId()] = cl
		if want := map[string]string{"ann": "a", "bob": "b", "cat": "c"}[cl.GetUserId()]; cl.GetNode() != want {
			t.Errorf("client of %s listed on node %q, want %q", cl.GetUserId(), cl.GetNode(), want)
		}
	}
	if rooms, err := b.admin.ListRooms(ctx, &roomdv1.ListRoomsRequest{}); err != nil || len(rooms.GetRooms()) != 1 || rooms.GetRooms()[0].GetClientCount() != 3 {
		t.Errorf("ListRooms on b: %v %v, want hall with 3 clients", rooms, err)
	}

	// Send to bob (on b) from c.
	if _, err := c.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: byUser["bob"].GetClientId(), Payload: &roomdv1.SendToClientRequest_Text{Text: "psst"}}); err != nil {
		t.Fatal(err)
	}
	conns["b"].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := conns["b"].ReadMessage(); err != nil || string(data) != "psst" {
		t.Fatalf("bob got %q, %v", data, err)
	}
	// Kick cat (on c) from a.
	if _, err := a.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: byUser["cat"].GetClientId(), Reason: "out"}); err != nil {
		t.Fatal(err)
	}
	conns["c"].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conns["c"].ReadMessage(); !websocket.IsCloseError(err, 4000) {
		t.Fatalf("cat got %v, want close 4000", err)
	}
	// Ban bob (on b) from c: closed within a second, and refused on a.
	start := time.Now()
	ban, err := c.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "bob", RoomId: "hall", Reason: "spam", BanSeconds: 60})
	if err != nil || ban.GetKickedCount() != 1 || ban.GetPartial() {
		t.Fatalf("ban bob: %v %v, want 1 kicked", ban, err)
	}
	conns["b"].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conns["b"].ReadMessage(); !websocket.IsCloseError(err, 4000) || time.Since(start) > time.Second {
		t.Fatalf("bob got %v after %v, want close 4000 within 1s", err, time.Since(start))
	}
	// Refused after the upgrade, as a browser can read a close code.
	if ws, _, err := a.tryDial("hall", "user=bob"); err == nil {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 4403) {
			t.Errorf("banned bob joining on a got %v, want close 4403", err)
		}
		ws.Close()
	}
	bans, err := b.admin.ListBans(ctx, &roomdv1.ListBansRequest{})
	if err != nil || len(bans.GetBans()) != 1 || bans.GetBans()[0].GetUserId() != "bob" {
		t.Errorf("ListBans on b: %v %v", bans, err)
	}
}

// A node frozen (SIGSTOP) does not hold up the others' admin calls: they
// answer within the deadline with what the live nodes said, partial, and
// name the frozen node. Silent past -cluster-node-timeout, it is taken for
// dead: its members leave every room on the other nodes, each once, as
// dropped (1006). Back (SIGCONT), its members are listed again; killed
// (SIGKILL), they leave again.
func TestClusterFrozenAndKilledNode(t *testing.T) {
	nats := natstest.Start(t)
	const timeout = "3s"
	a := startNode(t, nats.URL(), "a", "-cluster-node-timeout", timeout)
	b := startNode(t, nats.URL(), "b", "-cluster-node-timeout", timeout)
	proc := startProcess(t, "-nats-url", nats.URL(), "-node-name", "c", "-cluster-call-timeout", "1s", "-cluster-node-timeout", timeout)
	c := proc.server("c")
	for _, n := range []*testServer{a, b, c} {
		waitNodes(t, n, 3)
	}

	onA := joinedSession(t, a, "ann", "hall")
	b.dial(t, "hall", "user=bob")
	joinedSession(t, c, "cat", "hall")
	waitMembers(t, a, "hall", 3)
	for _, who := range []string{"bob", "cat"} {
		if f := onA.nextOf("presence"); f.str("event") != "joined" || f.str("userId") != who {
			t.Fatalf("ann heard %v, want %s joined", f, who)
		}
	}
	watch := watchRoom(t, a, "hall")

	proc.signal(syscall.SIGSTOP)
	frozen := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := a.admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "hall"})
	took := time.Since(frozen)
	if err != nil || !list.GetPartial() || fmt.Sprint(list.GetUnreachableNodes()) != "[c]" || len(list.GetClients()) != 2 {
		t.Fatalf("ListClients with c frozen: %v %v, want ann and bob, partial, c unreachable", list, err)
	}
	if took > 3*time.Second {
		t.Errorf("ListClients with c frozen took %v; the cap is 1s", took)
	}
	room, err := b.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "hall"})
	if err != nil || !room.GetPartial() || room.GetRoom().GetClientCount() != 2 {
		t.Errorf("GetRoom with c frozen: %v %v, want 2 clients, partial", room, err)
	}

	// Taken for dead: cat leaves, once, dropped.
	f := onA.nextOfWithin("presence", 20*time.Second)
	if f.str("event") != "left" || f.str("userId") != "cat" || time.Since(frozen) > 15*time.Second {
		t.Fatalf("ann heard %v %v after c froze, want cat left within 15s", f, time.Since(frozen))
	}
	for {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if left := ev.GetClientLeft(); left != nil {
			if left.GetClient().GetUserId() != "cat" || left.GetCloseCode() != 1006 || left.GetCause() != roomdv1.LeaveCause_LEAVE_CAUSE_DROPPED {
				t.Fatalf("watch on a: %v, want cat dropped with 1006", left)
			}
			break
		}
	}
	list, err = a.admin.ListClients(grpcCtx(t), &roomdv1.ListClientsRequest{RoomId: "hall"})
	if err != nil || list.GetPartial() || len(list.GetClients()) != 2 {
		t.Errorf("ListClients after c was taken for dead: %v %v, want ann and bob, whole", list, err)
	}

	// Back: cat is listed again.
	proc.signal(syscall.SIGCONT)
	if f := onA.nextOfWithin("presence", 20*time.Second); f.str("event") != "joined" || f.str("userId") != "cat" {
		t.Fatalf("ann heard %v after c came back, want cat joined", f)
	}
	waitMembers(t, a, "hall", 3)

	// Killed: cat leaves again, once.
	proc.signal(syscall.SIGKILL)
	proc.wait(t, 10*time.Second)
	killed := time.Now()
	if f := onA.nextOfWithin("presence", 20*time.Second); f.str("event") != "left" || f.str("userId") != "cat" || time.Since(killed) > 15*time.Second {
		t.Fatalf("ann heard %v %v after the kill, want cat left within 15s", f, time.Since(killed))
	}
	onA.send(map[string]any{"op": "members", "room": "hall"})
	for {
		f := onA.next()
		if f.str("type") == "presence" {
			t.Fatalf("ann heard %v after cat's leave", f)
		}
		if f.str("type") == "ack" {
			if f.num("memberCount") != 2 {
				t.Errorf("members after c died: %v", f)
			}
			break
		}
	}
}

// publishText publishes through the client protocol and returns the seq
// the server acked.
func publishText(c *sessionClient, room, text string) uint64 {
	c.t.Helper()
	return c.mustAck(map[string]any{"op": "publish", "room": room, "data": map[string]any{"text": text}}).num("seq")
}

// publishUntilAcked publishes text until the server acks it, for 30 s at
// most: while NATS comes back, a publish is refused as unavailable.
func publishUntilAcked(c *sessionClient, room, text string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, _ := c.do(map[string]any{"op": "publish", "room": room, "data": map[string]any{"text": text}})
		switch {
		case f.str("type") == "ack":
			return
		case f.str("code") != "unavailable" || time.Now().After(deadline):
			c.t.Fatalf("publish %q: %v", text, f)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// texts takes n room messages from c and returns their texts and seqs.
func texts(c *sessionClient, n int) (got []string, seqs []uint64) {
	c.t.Helper()
	for len(got) < n {
		f := c.nextOf("message")
		data, _ := f["data"].(map[string]any)
		text, _ := data["text"].(string)
		got, seqs = append(got, text), append(seqs, f.num("seq"))
	}
	return got, seqs
}

// A client resumes on another node, and on a node that restarted: it gets
// exactly what it missed, in order, with no gap.
func TestClusterResumeOnAnotherNodeAndAfterARestart(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	a, b := nodes[0], nodes[1]
	writer := joinedSession(t, b, "wri", "news")
	reader := dialSession(t, a, "user=rea")
	ack := reader.mustAck(map[string]any{"op": "join", "room": "news"})
	epoch := ack.str("epoch")
	publishText(writer, "news", "1")
	_, seqs := texts(reader, 1)
	reader.ws.Close() // a's member goes away...
	var missed []string
	for _, s := range []string{"2", "3", "4"} {
		publishText(writer, "news", s)
		missed = append(missed, s)
	}
	// ...and comes back on b.
	back := dialSession(t, b, "user=rea")
	resumed := back.mustAck(map[string]any{"op": "join", "room": "news", "since": seqs[0], "epoch": epoch})
	if got, _ := texts(back, 3); fmt.Sprint(got) != fmt.Sprint(missed) || resumed.num("replayed") != 3 {
		t.Fatalf("resumed on b: %v (ack %v), want %v", got, resumed, missed)
	}

	// Node a restarts (same name); the room's history is in the stream.
	a.stop()
	a2 := startNode(t, nats.URL(), "a")
	again := dialSession(t, a2, "user=rea")
	ack2 := again.mustAck(map[string]any{"op": "join", "room": "news", "since": seqs[0], "epoch": epoch})
	if got, _ := texts(again, 3); fmt.Sprint(got) != fmt.Sprint(missed) || ack2.num("replayed") != 3 {
		t.Fatalf("resumed on the restarted node: %v (ack %v), want %v", got, ack2, missed)
	}
}

// NATS restarts: while it is down a publish is refused with the protocol's
// unavailable code; once it is back the nodes reconnect by themselves and
// messages cross between them again.
func TestClusterRidesOutANATSRestart(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	a, b := nodes[0], nodes[1]
	onA := joinedSession(t, a, "ann", "r")
	onB := joinedSession(t, b, "bob", "r")
	publishText(onA, "r", "before")
	if got, _ := texts(onB, 1); got[0] != "before" {
		t.Fatalf("bob got %v", got)
	}
	nats.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, _ := onA.do(map[string]any{"op": "publish", "room": "r", "data": map[string]any{"text": "lost"}})
		if f.str("type") == "error" {
			if f.str("code") != "unavailable" {
				t.Fatalf("publish with NATS down: %v, want unavailable", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("publishes kept succeeding with NATS down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nats.Start()
	publishUntilAcked(onA, "r", "after")
	for {
		got, _ := texts(onB, 1)
		if got[0] == "after" {
			break
		}
		if got[0] != "lost" {
			t.Fatalf("bob got %q", got[0])
		}
	}
}

// On a NATS cluster of three with three replicas, one NATS server stops
// and the rooms keep working across nodes.
func TestClusterSurvivesANATSServerStopping(t *testing.T) {
	natsCluster := natstest.StartCluster(t, 3)
	var nodes []*testServer
	for i, name := range []string{"a", "b"} {
		// Each node on its own NATS server, all three known for reconnects.
		url := natsCluster.Servers[i].URL() + "," + natsCluster.URLs()
		nodes = append(nodes, startNode(t, url, name, "-nats-replicas", "3"))
	}
	waitNodes(t, nodes[0], 2)
	onA := dialSession(t, nodes[0], "user=ann")
	onA.mustAck(map[string]any{"op": "join", "room": "r"})
	onB := dialSession(t, nodes[1], "user=bob")
	onB.mustAck(map[string]any{"op": "join", "room": "r"})
	publishText(onA, "r", "one")
	if got, _ := texts(onB, 1); got[0] != "one" {
		t.Fatalf("bob got %v", got)
	}
	natsCluster.Servers[2].Stop()
	publishUntilAcked(onB, "r", "two")
	for {
		got, _ := texts(onA, 1)
		if got[0] == "two" {
			break
		}
	}
}

// A second live node with a name in use is refused at start, saying why.
func TestClusterRefusesADuplicateNodeName(t *testing.T) {
	nats := natstest.Start(t)
	startNode(t, nats.URL(), "a")
	var stderr syncBuffer
	code := roomd(context.Background(), []string{"-nats-url", nats.URL(), "-node-name", "a",
		"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard, &stderr)
	if code != exitCannotStart || !strings.Contains(stderr.String(), `roomd: node name "a" is in use by a live node`) {
		t.Fatalf("exit %d, stderr %q; want %d and the name in use", code, stderr.String(), exitCannotStart)
	}
}

// ListNodes on any node describes every node; a message published through
// the admin API of one node reaches members on the others; a room with
// presence off tells no member of joins and leaves on any node.
func TestClusterNodesPublishAndPresenceOff(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b", "c")
	ctx := grpcCtx(t)
	list, err := nodes[1].admin.ListNodes(ctx, &roomdv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range list.GetNodes() {
		want := nodes[i]
		if n.GetName() != want.node || n.GetPublicUrl() != "http://"+want.public || n.GetAdminGrpcAddr() != want.grpcAddr ||
			n.GetVersion() == "" || n.GetStartTime() == nil || time.Since(n.GetLastHeartbeat().AsTime()) > 5*time.Second {
			t.Errorf("node %d listed as %v", i, n)
		}
	}

	if _, err := nodes[0].admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "stage", Presence: proto.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	var sessions []*sessionClient
	for _, n := range nodes {
		s := dialSession(t, n, "")
		s.mustAck(map[string]any{"op": "join", "room": "stage"})
		sessions = append(sessions, s)
	}
	waitMembers(t, nodes[0], "stage", 3)
	pub, err := nodes[2].admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "stage", Payload: &roomdv1.PublishRequest_Text{Text: "hello all"}})
	if err != nil || pub.GetSeq() == 0 || pub.GetEpoch() == "" {
		t.Fatalf("Publish on c: %v %v", pub, err)
	}
	for i, s := range sessions {
		// The first frame after the joins is the message: no presence.
		f := s.next()
		if f.str("type") != "message" || f.num("seq") != pub.GetSeq() {
			t.Errorf("member on node %d got %v first, want the message %d", i, f, pub.GetSeq())
		}
	}
}

// max_clients holds across nodes: members on several nodes fill it, and a
// join on any node past it is refused (room full).
func TestClusterMaxClientsSpansNodes(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	ctx := grpcCtx(t)
	if _, err := nodes[0].admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "small", MaxClients: 2}); err != nil {
		t.Fatal(err)
	}
	nodes[0].dial(t, "small", "")
	nodes[1].dial(t, "small", "")
	waitMembers(t, nodes[0], "small", 2)
	// The second node hears of the first's member a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, resp, err := nodes[1].tryDial("small", "")
		if err != nil && resp != nil && resp.StatusCode == 429 {
			break
		}
		if err == nil {
			ws.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("a third member joined a room of two on node b: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, resp, err := nodes[0].tryDial("small", ""); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Errorf("a third member on node a: %v, want 429", err)
	}
}

// A NATS that requires a user and password: roomd connects with
// -nats-user and -nats-password, and without them refuses to start,
// saying why.
func TestClusterNATSCredentials(t *testing.T) {
	nats := natstest.StartWith(t, func(o *server.Options) { o.Username, o.Password = "roomd", "s3cret" })
	var stderr syncBuffer
	code := roomd(context.Background(), []string{"-nats-url", nats.URL(), "-node-name", "x",
		"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard, &stderr)
	if code != exitCannotStart || !strings.Contains(strings.ToLower(stderr.String()), "authorization") {
		t.Fatalf("without credentials: exit %d, %q; want %d and an authorization error", code, stderr.String(), exitCannotStart)
	}
	n := startNode(t, nats.URL(), "a", "-nats-user", "roomd", "-nats-password", "s3cret")
	waitNodes(t, n, 1)
}

// A node that stops cleanly takes its members out of every room at once,
// with the code they were closed with (1001), not after the node timeout.
func TestClusterCleanStopRemovesMembersAtOnce(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	a, b := nodes[0], nodes[1]
	onA := joinedSession(t, a, "ann", "hall")
	b.dial(t, "hall", "user=bob")
	if f := onA.nextOf("presence"); f.str("event") != "joined" || f.str("userId") != "bob" {
		t.Fatalf("ann heard %v, want bob joined", f)
	}
	watch := watchRoom(t, a, "hall")
	stopped := time.Now()
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	if f := onA.nextOfWithin("presence", 5*time.Second); f.str("event") != "left" || f.str("userId") != "bob" {
		t.Fatalf("ann heard %v, want bob left", f)
	}
	ev, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	left := ev.GetClientLeft()
	if left.GetClient().GetUserId() != "bob" || left.GetCloseCode() != 1001 || left.GetCause() != roomdv1.LeaveCause_LEAVE_CAUSE_SHUTDOWN {
		t.Errorf("watch on a: %v, want bob closed with 1001 by the shutdown", ev)
	}
	if took := time.Since(stopped); took > 8*time.Second {
		t.Errorf("bob's leave reached a %v after b began stopping (its drain is at most 5 s)", took)
	}
	waitNodes(t, a, 1)
}

// NATS comes back without its store: the stream is made anew with a new
// epoch, every client is told to reconnect (1012), a resume from the old
// epoch is a gap, and messages cross the nodes again, numbered afresh.
func TestClusterNATSLosesItsStore(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	a, b := nodes[0], nodes[1]
	onA := dialSession(t, a, "user=ann")
	ack := onA.mustAck(map[string]any{"op": "join", "room": "r"})
	onB := joinedSession(t, b, "bob", "r")
	seq := publishText(onA, "r", "old")
	nats.Stop()
	nats.Wipe()
	nats.Start()
	for _, c := range []*sessionClient{onA, onB} {
		c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				if !websocket.IsCloseError(err, 1012) {
					t.Fatalf("a member got %v, want close 1012", err)
				}
				break
			}
		}
	}
	again := dialSession(t, a, "user=ann")
	again.mustFail(map[string]any{"op": "join", "room": "r", "since": seq, "epoch": ack.str("epoch")}, "gap")
	fresh := again.mustAck(map[string]any{"op": "join", "room": "r"})
	if fresh.str("epoch") == ack.str("epoch") {
		t.Errorf("the epoch did not change: %v", fresh)
	}
	onB2 := joinedSession(t, b, "bob", "r")
	publishUntilAcked(again, "r", "new")
	if got, _ := texts(onB2, 1); got[0] != "new" {
		t.Fatalf("bob got %v after the store was lost", got)
	}
}

// joinedSession connects a client protocol session for user to s and
// joins room.
func joinedSession(t *testing.T, s *testServer, user, room string) *sessionClient {
	t.Helper()
	c := dialSession(t, s, "user="+user)
	c.mustAck(map[string]any{"op": "join", "room": room})
	return c
}
