package main

// What WatchRoom's clientLeft and DeleteRoom's counts say against what
// really happened to each connection: who ended it, whether it is still
// open, and with which close code.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"

	roomdv1 "roomd/gen/roomd/v1"
)

// watchRoom starts a gRPC WatchRoom of room and waits until it is in
// place. The stream lasts a minute at most (a cluster test waits out a
// node's timeout on it).
func watchRoom(t *testing.T, s *testServer, room string) grpc.ServerStreamingClient[roomdv1.WatchRoomResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	stream, err := s.admin.WatchRoom(ctx, &roomdv1.WatchRoomRequest{RoomId: room})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	return stream
}

// recvJoined returns the client id of the next event, which must be a join.
func recvJoined(t *testing.T, stream grpc.ServerStreamingClient[roomdv1.WatchRoomResponse]) string {
	t.Helper()
	ev := recvEvent(t, stream)
	if ev.GetClientJoined() == nil {
		t.Fatalf("got %v, want ClientJoined", ev)
	}
	return ev.GetClientJoined().GetClient().GetClientId()
}

// checkLeft requires left to be clientID leaving with cause, close code and
// reason (any reason if empty).
func checkLeft(t *testing.T, left *roomdv1.ClientLeft, clientID string, cause roomdv1.LeaveCause, code uint32, reason string) {
	t.Helper()
	if left.GetClient().GetClientId() != clientID || left.GetCause() != cause || left.GetCloseCode() != code ||
		(reason != "" && left.GetReason() != reason) {
		t.Fatalf("ClientLeft %v, want client %q, cause %v, close code %d, reason %q", left, clientID, cause, code, reason)
	}
}

// recvLeft returns the next event, which must be a leave.
func recvLeft(t *testing.T, stream grpc.ServerStreamingClient[roomdv1.WatchRoomResponse]) *roomdv1.ClientLeft {
	t.Helper()
	ev := recvEvent(t, stream)
	if ev.GetClientLeft() == nil {
		t.Fatalf("got %v, want ClientLeft", ev)
	}
	return ev.GetClientLeft()
}

// closeWith sends a close frame from the client and waits for the server's
// echo of it.
func closeWith(t *testing.T, ws *websocket.Conn, code int, reason string) {
	t.Helper()
	msg := websocket.FormatCloseMessage(code, reason)
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("sending close frame: %v", err)
	}
	expectClose(t, ws, code, "")
}

func TestAdminWatchRoomLeaveCauses(t *testing.T) {
	s := startServer(t)
	const room = "causes"
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: room})
	stream := watchRoom(t, s, room)
	const (
		left        = roomdv1.LeaveCause_LEAVE_CAUSE_LEFT
		byClient    = roomdv1.LeaveCause_LEAVE_CAUSE_CLOSED_BY_CLIENT
		dropped     = roomdv1.LeaveCause_LEAVE_CAUSE_DROPPED
		kicked      = roomdv1.LeaveCause_LEAVE_CAUSE_KICKED
		roomDeleted = roomdv1.LeaveCause_LEAVE_CAUSE_ROOM_DELETED
	)

	t.Run("a client that closes with 4000 itself was not kicked", func(t *testing.T) {
		ws := s.dial(t, room, "user=liz")
		id := recvJoined(t, stream)
		closeWith(t, ws, 4000, "kicked")
		checkLeft(t, recvLeft(t, stream), id, byClient, 4000, "kicked")
	})

	t.Run("an admin kick is a kick", func(t *testing.T) {
		ws := s.dial(t, room, "user=kim")
		id := recvJoined(t, stream)
		if _, err := s.admin.KickClient(adminContext(t), &roomdv1.KickClientRequest{ClientId: id, Reason: "enough"}); err != nil {
			t.Fatal(err)
		}
		checkLeft(t, recvLeft(t, stream), id, kicked, 4000, "enough")
		expectClose(t, ws, 4000, "enough")
	})

	t.Run("a connection that drops", func(t *testing.T) {
		ws := s.dial(t, room, "user=dan")
		id := recvJoined(t, stream)
		ws.NetConn().Close() // no close frame
		checkLeft(t, recvLeft(t, stream), id, dropped, 1006, "")
	})

	t.Run("a rule broken", func(t *testing.T) {
		ws := s.dial(t, room, "user=ura")
		id := recvJoined(t, stream)
		if err := ws.WriteMessage(websocket.TextMessage, []byte{0xff}); err != nil {
			t.Fatal(err)
		}
		expectClose(t, ws, 1007, "")
		checkLeft(t, recvLeft(t, stream), id, dropped, 1007, "")
	})

	// A client protocol member stays connected through leave, a kick from
	// the room and the room's deletion: close code 0 every time.
	sam := dialSession(t, s, "user=sam")
	sam.mustAck(join(room))
	if id := recvJoined(t, stream); id != sam.clientID {
		t.Fatalf("joined %q, want sam's %q", id, sam.clientID)
	}

	t.Run("client protocol leave", func(t *testing.T) {
		sam.mustAck(map[string]any{"op": "leave", "room": room})
		checkLeft(t, recvLeft(t, stream), sam.clientID, left, 0, "")
		sam.mustAck(join(room))
		recvJoined(t, stream)
	})

	t.Run("client protocol kicked from the room only", func(t *testing.T) {
		if _, err := s.admin.KickUser(adminContext(t), &roomdv1.KickUserRequest{UserId: "sam", RoomId: room, Reason: "cool off"}); err != nil {
			t.Fatal(err)
		}
		checkLeft(t, recvLeft(t, stream), sam.clientID, kicked, 0, "cool off")
		sam.nextOf("kicked")
		sam.mustAck(join(room))
		recvJoined(t, stream)
	})

	t.Run("DeleteRoom", func(t *testing.T) {
		rob := s.dial(t, room, "user=rob")
		robID := recvJoined(t, stream)
		resp, err := s.admin.DeleteRoom(adminContext(t), &roomdv1.DeleteRoomRequest{RoomId: room})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetDisconnectedCount() != 1 || resp.GetRemovedCount() != 2 {
			t.Errorf("DeleteRoom: %v, want disconnected_count 1 (rob) and removed_count 2 (rob and sam)", resp)
		}
		lefts := map[string]*roomdv1.ClientLeft{}
		for range 2 {
			l := recvLeft(t, stream)
			lefts[l.GetClient().GetClientId()] = l
		}
		checkLeft(t, lefts[robID], robID, roomDeleted, 4001, "room deleted")
		checkLeft(t, lefts[sam.clientID], sam.clientID, roomDeleted, 0, "room deleted")
		if ev := recvEvent(t, stream); ev.GetRoomDeleted() == nil {
			t.Fatalf("got %v, want RoomDeleted", ev)
		}
		expectClose(t, rob, 4001, "room deleted")
		// sam was told, and is still connected.
		sam.nextOf("room_deleted")
		sam.mustAck(join("elsewhere"))
	})
}

func TestAdminWatchRoomShutdownCause(t *testing.T) {
	s := startServer(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "r"})
	stream := watchRoom(t, s, "r")
	ws := s.dial(t, "r", "user=ann")
	id := recvJoined(t, stream)

	// Shutdown waits for the client's close reply, so it runs beside the
	// client; the harness's cleanup must not stop roomd a second time
	// before this has.
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	waitStopped := sync.OnceValue(func() error { return <-stopped })
	t.Cleanup(func() { waitStopped() })
	expectClose(t, ws, 1001, "server shutting down")
	checkLeft(t, recvLeft(t, stream), id, roomdv1.LeaveCause_LEAVE_CAUSE_SHUTDOWN, 1001, "server shutting down")
	if err := waitStopped(); err != nil {
		t.Errorf("roomd stopped with %v", err)
	}
}

// A browser leaving a page closes its sockets with 1001 itself: that is the
// client closing, not the server shutting down.
func TestAdminWatchRoomClientGoingAway(t *testing.T) {
	s := startServer(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "r"})
	stream := watchRoom(t, s, "r")
	ws := s.dial(t, "r", "")
	id := recvJoined(t, stream)
	closeWith(t, ws, websocket.CloseGoingAway, "page closed")
	checkLeft(t, recvLeft(t, stream), id, roomdv1.LeaveCause_LEAVE_CAUSE_CLOSED_BY_CLIENT, 1001, "page closed")
}
