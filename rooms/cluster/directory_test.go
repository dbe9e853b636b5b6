package cluster

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roomd/rooms"
	"roomd/rooms/cluster/natstest"
)

// testNode is one roomd node of a test: its own NATS connection and Hub.
type testNode struct {
	nc  *nats.Conn
	hub *rooms.Hub
}

func newTestNode(t *testing.T, nc *nats.Conn, name string) *testNode {
	return &testNode{nc: nc, hub: rooms.NewHub(rooms.Config{NodeName: name, DefaultHistorySize: 50})}
}

func (n *testNode) openDirectory(t *testing.T, replicas int) *Directory {
	t.Helper()
	d, err := OpenDirectory(testContext(t), jetStream(t, n.nc), n.hub, DirectoryConfig{Replicas: replicas, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// waitForRoom waits until h holds room as made through the directory.
func waitForRoom(t *testing.T, h *rooms.Hub, room string) rooms.RoomInfo {
	t.Helper()
	var info rooms.RoomInfo
	eventually(t, 5*time.Second, fmt.Sprintf("node %s holds room %q", h.NodeName(), room), func() bool {
		var err error
		info, err = h.GetRoom(room)
		return err == nil && !info.AutoCreated
	})
	return info
}

func TestDirectoryRoomMadeOnOneNodeIsJoinableOnAnother(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	a, b := newTestNode(t, srv.Connect(), "a"), newTestNode(t, srv.Connect(), "b")
	dirA, _ := a.openDirectory(t, 1), b.openDirectory(t, 1)
	ctx := testContext(t)

	opts := rooms.RoomOptions{MaxClients: 1, Metadata: map[string]string{"team": "one"}, HistorySize: 5, NoPresence: true}
	made, err := dirA.Create(ctx, "team.one:chat", opts)
	if err != nil {
		t.Fatal(err)
	}
	if made.AutoCreated || made.Options.MaxClients != 1 || made.Options.HistorySize != 5 || !made.Options.NoPresence {
		t.Fatalf("Create returned %+v", made)
	}
	if _, err := a.hub.GetRoom("team.one:chat"); err != nil {
		t.Fatalf("the creating node does not hold the room at once: %v", err)
	}
	got := waitForRoom(t, b.hub, "team.one:chat")
	if !got.CreatedAt.Equal(made.CreatedAt) || got.Options.MaxClients != 1 || got.Options.Echo ||
		got.Options.Metadata["team"] != "one" || got.Options.HistorySize != 5 || !got.Options.NoPresence {
		t.Fatalf("node b holds %+v; made %+v", got, made)
	}
	// Joinable on b without making it, and its options hold there.
	if _, err := joinRaw(b.hub, "team.one:chat", "ann"); err != nil {
		t.Fatalf("join on b: %v", err)
	}
	if _, err := joinRaw(b.hub, "team.one:chat", "bob"); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("second join on b of a room of 1: %v, want ErrRoomFull", err)
	}

	// A room that a client made on b by joining, a moment before the
	// directory's entry arrived, becomes the made room and keeps its member.
	early := &fakeTransport{}
	if _, err := b.hub.Join("early", rooms.ClientInfo{UserID: "cy"}, early, rooms.JoinOptions{AutoCreate: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := dirA.Create(ctx, "early", rooms.RoomOptions{MaxClients: 7}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b's auto-created room becomes the made one", func() bool {
		info, err := b.hub.GetRoom("early")
		return err == nil && !info.AutoCreated && info.Options.MaxClients == 7 && info.ClientCount == 1
	})
	if closed, _, _ := early.closedWith(); closed {
		t.Fatal("the early member was closed")
	}
}

func TestDirectoryCreateRaceHasOneWinner(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	nodes := []*testNode{newTestNode(t, srv.Connect(), "a"), newTestNode(t, srv.Connect(), "b")}
	dirs := []*Directory{nodes[0].openDirectory(t, 1), nodes[1].openDirectory(t, 1)}
	checkCreateRace(t, nodes, dirs, "contested")
}

// checkCreateRace has 8 goroutines on each node create room at once, each
// with its own MaxClients: one succeeds, the others get ErrRoomExists, and
// every node ends up with the winner's options.
func checkCreateRace(t *testing.T, nodes []*testNode, dirs []*Directory, room string) {
	t.Helper()
	ctx := testContext(t)
	start := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
		others  []error
	)
	for i := range 8 * len(dirs) {
		wg.Go(func() {
			<-start
			_, err := dirs[i%len(dirs)].Create(ctx, room, rooms.RoomOptions{MaxClients: i + 1})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, i+1)
			} else {
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d creates succeeded (max_clients %v), want 1; errors %v", len(winners), winners, others)
	}
	for _, err := range others {
		if !errors.Is(err, rooms.ErrRoomExists) {
			t.Errorf("a losing create: %v, want ErrRoomExists", err)
		}
	}
	for _, n := range nodes {
		if info := waitForRoom(t, n.hub, room); info.Options.MaxClients != winners[0] {
			t.Errorf("node %s holds max_clients %d, the winner made %d", n.hub.NodeName(), info.Options.MaxClients, winners[0])
		}
	}
}

func TestDirectoryDeleteClosesMembersOnEveryNode(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	a, b := newTestNode(t, srv.Connect(), "a"), newTestNode(t, srv.Connect(), "b")
	dirA, dirB := a.openDirectory(t, 1), b.openDirectory(t, 1)
	ctx := testContext(t)

	if _, err := dirA.Create(ctx, "doomed", rooms.RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForRoom(t, b.hub, "doomed")
	onB, err := joinRaw(b.hub, "doomed", "ann")
	if err != nil {
		t.Fatal(err)
	}
	session, err := b.hub.Connect(rooms.ClientInfo{UserID: "bob"}, &fakeTransport{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.JoinRoom(session, "doomed", rooms.JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	onA, err := joinRaw(a.hub, "doomed", "cy")
	if err != nil {
		t.Fatal(err)
	}

	if err := dirA.Delete(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	if closed, code, _ := onA.closedWith(); !closed || code != rooms.CloseRoomDeleted {
		t.Errorf("member on the deleting node: closed %v with %v, want %v at once", closed, code, rooms.CloseRoomDeleted)
	}
	eventually(t, 5*time.Second, "the raw member on b is closed with 4001", func() bool {
		closed, code, _ := onB.closedWith()
		return closed && code == rooms.CloseRoomDeleted
	})
	var notice *rooms.Message
	for _, m := range session.Queue().Take(nil) {
		if m.Event == "room_deleted" {
			notice = m
		}
	}
	if notice == nil || session.InRoom("doomed") {
		t.Errorf("session member on b: notice %v, still in the room %v", notice, session.InRoom("doomed"))
	}
	if _, err := b.hub.GetRoom("doomed"); !errors.Is(err, rooms.ErrRoomNotFound) {
		t.Errorf("b still holds the room: %v", err)
	}
	if err := dirB.Delete(ctx, "doomed"); !errors.Is(err, rooms.ErrRoomNotFound) {
		t.Errorf("deleting it again: %v, want ErrRoomNotFound", err)
	}
	// Made again, on b, it is a new room on both nodes.
	if _, err := dirB.Create(ctx, "doomed", rooms.RoomOptions{MaxClients: 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a holds the room made again", func() bool {
		info, err := a.hub.GetRoom("doomed")
		return err == nil && info.Options.MaxClients == 3
	})

	// Of two nodes deleting at once, one succeeds.
	errs := make(chan error, 2)
	for _, d := range []*Directory{dirA, dirB} {
		go func() { errs <- d.Delete(ctx, "doomed") }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || !errors.Is(e1, rooms.ErrRoomNotFound) && !errors.Is(e2, rooms.ErrRoomNotFound) {
		t.Errorf("concurrent deletes: %v and %v, want one success and one ErrRoomNotFound", e1, e2)
	}
}

func TestDirectorySurvivesRoomdAndNATSRestarts(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	ctx := testContext(t)
	a := newTestNode(t, srv.Connect(), "a")
	dirA := a.openDirectory(t, 1)
	b := newTestNode(t, srv.Connect(), "b")
	b.openDirectory(t, 1) // runs across the NATS restart below
	for _, id := range []string{"kept", "gone"} {
		if _, err := dirA.Create(ctx, id, rooms.RoomOptions{MaxClients: 4, Metadata: map[string]string{"id": id}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dirA.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	made, err := a.hub.GetRoom("kept")
	if err != nil {
		t.Fatal(err)
	}

	// Node a restarts: a new Hub, connection and directory.
	dirA.Stop()
	a.nc.Close()
	a2 := newTestNode(t, srv.Connect(), "a")
	a2.openDirectory(t, 1)
	checkKept(t, a2.hub, made)

	// NATS restarts; a node starting after it finds the same rooms.
	srv.Stop()
	srv.Start()
	a3 := newTestNode(t, srv.Connect(), "a")
	dirA3 := a3.openDirectory(t, 1)
	checkKept(t, a3.hub, made)

	// b's mirror, running all along, catches up after the NATS restart.
	if _, err := dirA3.Create(ctx, "after", rooms.RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b's mirror sees a room made after the NATS restart", func() bool {
		_, err := b.hub.GetRoom("after")
		return err == nil
	})
}

// checkKept checks that h holds the room made as made, and not "gone".
func checkKept(t *testing.T, h *rooms.Hub, made rooms.RoomInfo) {
	t.Helper()
	got, err := h.GetRoom(made.RoomID)
	if err != nil || got.AutoCreated || !got.CreatedAt.Equal(made.CreatedAt) || got.Options.MaxClients != 4 || got.Options.Metadata["id"] != "kept" {
		t.Fatalf("after the restart: %+v, %v; made %+v", got, err, made)
	}
	if _, err := h.GetRoom("gone"); !errors.Is(err, rooms.ErrRoomNotFound) {
		t.Fatalf("a deleted room came back: %v", err)
	}
}

func TestDirectoryOnAThreeServerCluster(t *testing.T) {
	checkLeaks(t)
	c := natstest.StartCluster(t, 3)
	var nodes []*testNode
	var dirs []*Directory
	for i, s := range c.Servers {
		n := newTestNode(t, s.Connect(), fmt.Sprintf("n%d", i))
		nodes = append(nodes, n)
		dirs = append(dirs, n.openDirectory(t, 3))
	}
	checkCreateRace(t, nodes, dirs, "replicated")

	// With one NATS server down, rooms are still made and deleted on the
	// nodes connected to the others.
	c.Servers[2].Stop()
	ctx := testContext(t)
	if _, err := dirs[0].Create(ctx, "while-one-is-down", rooms.RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForRoom(t, nodes[1].hub, "while-one-is-down")
	if err := dirs[1].Delete(ctx, "replicated"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the deletion reaches the other node", func() bool {
		_, err := nodes[0].hub.GetRoom("replicated")
		return errors.Is(err, rooms.ErrRoomNotFound)
	})
}
