package rooms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTransport records what the Hub asked of a connection.
type fakeTransport struct {
	mu     sync.Mutex
	wakes  int
	closed bool
	code   CloseCode
	reason string
}

func (f *fakeTransport) Wake() { f.mu.Lock(); f.wakes++; f.mu.Unlock() }

func (f *fakeTransport) Close(code CloseCode, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed, f.code, f.reason = true, code, reason
	}
}

func (f *fakeTransport) closedWith() (bool, CloseCode, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed, f.code, f.reason
}

func join(t *testing.T, h *Hub, room, user string, auto bool) (*Client, *fakeTransport) {
	t.Helper()
	ft := &fakeTransport{}
	c, err := h.Join(room, ClientInfo{UserID: user}, ft, JoinOptions{AutoCreate: auto})
	if err != nil {
		t.Fatalf("join %s: %v", room, err)
	}
	return c, ft
}

func payloads(c *Client) []string {
	var out []string
	for _, m := range c.Queue().Take(nil) {
		out = append(out, string(m.Payload))
	}
	return out
}

func TestValidateRoomID(t *testing.T) {
	for _, ok := range []string{"a", "lobby", "A-b_c.d:e", strings.Repeat("x", 128), "...", ".a", "a..", ".-"} {
		if err := ValidateRoomID(ok); err != nil {
			t.Errorf("ValidateRoomID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "a/b", "a b", "é", "a?b", "a%2F", ".", ".."} {
		if err := ValidateRoomID(bad); !errors.Is(err, ErrInvalidRoomID) {
			t.Errorf("ValidateRoomID(%q) = %v, want ErrInvalidRoomID", bad, err)
		}
	}
}

func TestPublishReachesMembersInOrderWithEcho(t *testing.T) {
	h := NewHub(Config{})
	if _, err := h.CreateRoom("quiet", RoomOptions{Echo: false}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		room       string
		echo       bool
		senderGets bool
	}{{"loud", true, true}, {"quiet", false, false}} {
		a, _ := join(t, h, tc.room, "", true)
		b, _ := join(t, h, tc.room, "", true)
		for i := 0; i < 3; i++ {
			pub, err := h.Publish(&Message{RoomID: tc.room, Kind: Text, Payload: []byte(fmt.Sprint(i)), FromClientID: a.ID()})
			if err != nil {
				t.Fatal(err)
			}
			n := pub.Recipients
			want := 1
			if tc.senderGets {
				want = 2
			}
			if n != want {
				t.Errorf("%s: recipients = %d, want %d", tc.room, n, want)
			}
		}
		if got := strings.Join(payloads(b), ","); got != "0,1,2" {
			t.Errorf("%s: other member got %q", tc.room, got)
		}
		got := strings.Join(payloads(a), ",")
		if tc.senderGets && got != "0,1,2" || !tc.senderGets && got != "" {
			t.Errorf("%s: sender got %q (echo %v)", tc.room, got, tc.echo)
		}
	}
}

func TestSequenceOnlyGrowsPerRoom(t *testing.T) {
	h := NewHub(Config{})
	c, _ := join(t, h, "r", "", true)
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := h.Publish(&Message{RoomID: "r", Payload: []byte("x")}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	msgs := c.Queue().Take(nil)
	if len(msgs) != 800 {
		t.Fatalf("got %d messages, want 800", len(msgs))
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Seq <= msgs[i-1].Seq {
			t.Fatalf("seq %d after %d", msgs[i].Seq, msgs[i-1].Seq)
		}
	}
}

func TestExcludeAndSendToClient(t *testing.T) {
	h := NewHub(Config{})
	a, _ := join(t, h, "r", "", true)
	b, _ := join(t, h, "r", "", true)
	pub, _ := h.Publish(&Message{RoomID: "r", Payload: []byte("not a"), ExcludeClientIDs: []string{a.ID()}})
	if n := pub.Recipients; n != 1 {
		t.Errorf("recipients = %d, want 1", n)
	}
	if err := h.SendToClient(a.ID(), &Message{Payload: []byte("only a")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(payloads(a), ","); got != "only a" {
		t.Errorf("a got %q", got)
	}
	if got := strings.Join(payloads(b), ","); got != "not a" {
		t.Errorf("b got %q", got)
	}
	if err := h.SendToClient("nobody", &Message{}); !errors.Is(err, ErrClientNotFound) {
		t.Errorf("SendToClient(nobody) = %v", err)
	}
}

func TestSlowConsumerIsDroppedOthersKeepReceiving(t *testing.T) {
	h := NewHub(Config{MaxQueueBytes: 1000})
	slow, slowT := join(t, h, "r", "", true)
	fast, _ := join(t, h, "r", "", true)
	w, _ := h.Watch("r")
	for i := 0; i < 20; i++ {
		h.Publish(&Message{RoomID: "r", Payload: make([]byte, 100)})
		fast.Queue().Take(nil) // the fast member keeps up
	}
	closed, code, _ := slowT.closedWith()
	if !closed || code != CloseSlowConsumer {
		t.Fatalf("slow member: closed %v code %d, want 4002", closed, code)
	}
	if _, n := slow.Queue().Len(); n != 0 {
		t.Errorf("dropped member still holds %d queued bytes", n)
	}
	pub, _ := h.Publish(&Message{RoomID: "r", Payload: []byte("after")})
	if n := pub.Recipients; n != 1 {
		t.Errorf("after the drop, recipients = %d, want 1", n)
	}
	var left *Event
	for len(w.ch) > 0 {
		e := <-w.ch
		if e.Kind == EventClientLeft {
			left = &e
		}
	}
	if left == nil || left.CloseCode != CloseSlowConsumer || left.Client.ClientID != slow.ID() {
		t.Errorf("watch saw leave %+v, want the slow member with 4002", left)
	}
}

func TestAutoCreatedRoomVanishesWithLastMember(t *testing.T) {
	h := NewHub(Config{})
	if _, err := h.Join("missing", ClientInfo{}, &fakeTransport{}, JoinOptions{}); !errors.Is(err, ErrRoomNotFound) {
		t.Fatalf("join without auto-create = %v", err)
	}
	a, _ := join(t, h, "auto", "", true)
	b, _ := join(t, h, "auto", "", true)
	if info, _ := h.GetRoom("auto"); !info.AutoCreated || info.ClientCount != 2 {
		t.Fatalf("room = %+v", info)
	}
	h.Leave(a, CauseClosedByClient, CloseNormal, "")
	h.Leave(a, CauseClosedByClient, CloseNormal, "") // twice is harmless
	if _, err := h.GetRoom("auto"); err != nil {
		t.Fatal("room vanished with a member left")
	}
	h.Leave(b, CauseClosedByClient, CloseNormal, "")
	if _, err := h.GetRoom("auto"); !errors.Is(err, ErrRoomNotFound) {
		t.Fatalf("GetRoom after last leave = %v", err)
	}
	// An admin-made room stays.
	h.CreateRoom("kept", RoomOptions{})
	c, _ := join(t, h, "kept", "", false)
	h.Leave(c, CauseClosedByClient, CloseNormal, "")
	if _, err := h.GetRoom("kept"); err != nil {
		t.Fatal(err)
	}
}

func TestRoomFullAndExists(t *testing.T) {
	h := NewHub(Config{})
	if _, err := h.CreateRoom("two", RoomOptions{MaxClients: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateRoom("two", RoomOptions{}); !errors.Is(err, ErrRoomExists) {
		t.Errorf("second create = %v", err)
	}
	join(t, h, "two", "", false)
	join(t, h, "two", "", false)
	if _, err := h.Join("two", ClientInfo{}, &fakeTransport{}, JoinOptions{}); !errors.Is(err, ErrRoomFull) {
		t.Errorf("third join = %v", err)
	}
}

func TestKickAndDelete(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{})
	h.CreateRoom("s", RoomOptions{})
	a, aT := join(t, h, "r", "alice", false)
	_, a2T := join(t, h, "s", "alice", false)
	_, bT := join(t, h, "r", "bob", false)

	if _, err := h.KickClient(a.ID(), "bye"); err != nil {
		t.Fatal(err)
	}
	if closed, code, reason := aT.closedWith(); !closed || code != CloseKicked || reason != "bye" {
		t.Errorf("kicked client: %v %d %q", closed, code, reason)
	}
	if _, err := h.KickClient(a.ID(), "again"); !errors.Is(err, ErrClientNotFound) {
		t.Errorf("kick twice = %v", err)
	}
	if n, _ := h.KickUser("alice", "", "all"); n != 1 {
		t.Errorf("KickUser = %d, want 1 (the other connection)", n)
	}
	if closed, code, _ := a2T.closedWith(); !closed || code != CloseKicked {
		t.Errorf("alice's second connection not kicked")
	}
	res, err := h.DeleteRoom("r")
	if err != nil || res != (DeleteResult{Removed: 1, Disconnected: 1}) {
		t.Fatalf("DeleteRoom = %+v, %v", res, err)
	}
	if closed, code, _ := bT.closedWith(); !closed || code != CloseRoomDeleted {
		t.Errorf("member of deleted room: %v %d", closed, code)
	}
	if _, err := h.DeleteRoom("r"); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("second delete = %v", err)
	}
}

func TestListPagination(t *testing.T) {
	h := NewHub(Config{})
	for i := 0; i < 25; i++ {
		h.CreateRoom(fmt.Sprintf("room-%02d", i), RoomOptions{})
	}
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		page, more := h.ListRooms(after, 10)
		for _, r := range page {
			all = append(all, r.RoomID)
		}
		if !more {
			break
		}
		after = page[len(page)-1].RoomID
	}
	if len(all) != 25 || all[0] != "room-00" || all[24] != "room-24" {
		t.Fatalf("pages gave %v", all)
	}
	for i := 0; i < 5; i++ {
		join(t, h, "room-00", "", false)
	}
	page, more, err := h.Clients("room-00", "", 3)
	if err != nil || len(page) != 3 || !more {
		t.Fatalf("Clients = %d %v %v", len(page), more, err)
	}
	rest, more, _ := h.Clients("room-00", page[2].ClientID, 3)
	if len(rest) != 2 || more {
		t.Fatalf("second page = %d %v", len(rest), more)
	}
}

func TestWatchSeesJoinPublishLeaveDelete(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{Echo: true})
	w, err := h.Watch("r")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := join(t, h, "r", "u", false)
	h.Publish(&Message{RoomID: "r", Payload: []byte("hi"), FromClientID: c.ID()})
	h.Leave(c, CauseClosedByClient, CloseNormal, "done")
	h.DeleteRoom("r")
	var kinds []EventKind
	for e := range w.ch {
		kinds = append(kinds, e.Kind)
	}
	want := []EventKind{EventClientJoined, EventMessagePublished, EventClientLeft, EventRoomDeleted}
	if fmt.Sprint(kinds) != fmt.Sprint(want) || w.Err() != nil {
		t.Fatalf("events %v err %v, want %v", kinds, w.Err(), want)
	}
}

func TestQueueTakeKeepsSmallBackingArray(t *testing.T) {
	h := NewHub(Config{})
	c, _ := join(t, h, "r", "", true)
	m := &Message{RoomID: "r", Payload: []byte("x")}
	var buf []*Message
	allocs := testing.AllocsPerRun(100, func() {
		c.enqueue(m)
		buf = c.Queue().Take(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("enqueue+take allocates %.1f times, want 0", allocs)
	}
}

func TestServerWideRoomAndMemberLimits(t *testing.T) {
	h := NewHub(Config{MaxRooms: 2, MaxClientsPerRoom: 2})
	h.CreateRoom("a", RoomOptions{})
	join(t, h, "b", "", true)
	if _, err := h.CreateRoom("c", RoomOptions{}); !errors.Is(err, ErrLimit) {
		t.Errorf("third room: %v, want ErrLimit", err)
	}
	if _, err := h.Join("c", ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true}); !errors.Is(err, ErrLimit) {
		t.Errorf("auto-creating a third room: %v, want ErrLimit", err)
	}
	h.DeleteRoom("a")
	if _, err := h.CreateRoom("c", RoomOptions{MaxClients: 5}); err != nil {
		t.Errorf("after a delete there is room again: %v", err)
	}
	join(t, h, "c", "", false)
	join(t, h, "c", "", false)
	if _, err := h.Join("c", ClientInfo{}, &fakeTransport{}, JoinOptions{}); !errors.Is(err, ErrRoomFull) {
		t.Errorf("third member of a room capped at 2 server-wide: %v", err)
	}
}

// FuzzValidateRoomID: whatever the input, an accepted id is 1-128 bytes of
// the documented alphabet and not a dot segment, so it is safe in paths,
// subjects and logs.
func FuzzValidateRoomID(f *testing.F) {
	for _, seed := range []string{"lobby", "", "a/b", "é", strings.Repeat("x", 129), "team-1.a:b_c", ".", "..", "..."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateRoomID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidRoomID) {
				t.Fatalf("error %v is not ErrInvalidRoomID", err)
			}
			return
		}
		if len(id) == 0 || len(id) > MaxRoomIDLength {
			t.Fatalf("accepted %d-byte id", len(id))
		}
		if id == "." || id == ".." {
			t.Fatalf("accepted the dot segment %q, which no URL path can name", id)
		}
		for i := 0; i < len(id); i++ {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:", rune(id[i])) {
				t.Fatalf("accepted %q with byte %q", id, id[i])
			}
		}
	})
}

// Presence and notices go through the same bounded queue as messages: a
// session member that cannot take them is dropped as a slow consumer, not
// left with a queue that silently refuses everything.
func TestPresenceOverflowDropsTheMember(t *testing.T) {
	h := NewHub(Config{MaxQueueBytes: 200})
	watcherT := &fakeTransport{}
	watcher, _ := h.Connect(ClientInfo{UserID: "w"}, watcherT, true)
	if _, err := h.JoinRoom(watcher, "r", JoinOptions{AutoCreate: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // each join is a presence message for watcher, never read
		join(t, h, "r", fmt.Sprint(i), true)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if closed, code, _ := watcherT.closedWith(); closed {
			if code != CloseSlowConsumer {
				t.Fatalf("closed with %d, want 4002", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a session member whose queue overflowed with presence was never dropped")
		}
		time.Sleep(time.Millisecond)
	}
}

// leaves drains a watcher and returns its ClientLeft events by client id.
func leaves(t *testing.T, w *Watcher) map[string]Event {
	t.Helper()
	out := map[string]Event{}
	for len(w.ch) > 0 {
		if e := <-w.ch; e.Kind == EventClientLeft {
			out[e.Client.ClientID] = e
		}
	}
	return out
}

func checkLeave(t *testing.T, what string, e Event, cause LeaveCause, code CloseCode) {
	t.Helper()
	if e.Kind != EventClientLeft || e.Cause != cause || e.CloseCode != code {
		t.Errorf("%s: event %+v, want a leave with cause %v and close code %d", what, e, cause, code)
	}
}

// The Hub says why each member left from what it did itself, and a close
// code only for a connection that closes.
func TestLeaveCauses(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{})
	w, err := h.Watch("r")
	if err != nil {
		t.Fatal(err)
	}
	raw, rawT := join(t, h, "r", "rob", false)
	sesT := &fakeTransport{}
	ses, err := h.Connect(ClientInfo{UserID: "sam"}, sesT, true)
	if err != nil {
		t.Fatal(err)
	}
	rejoin := func() {
		t.Helper()
		if _, err := h.JoinRoom(ses, "r", JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rejoin()

	h.LeaveRoom(ses, "r")
	checkLeave(t, "LeaveRoom", leaves(t, w)[ses.ID()], CauseLeft, 0)
	rejoin()
	h.KickUser("sam", "r", "out")
	checkLeave(t, "KickUser from one room", leaves(t, w)[ses.ID()], CauseKicked, 0)
	rejoin()

	res, err := h.DeleteRoom("r")
	if err != nil || res != (DeleteResult{Removed: 2, Disconnected: 1}) {
		t.Errorf("DeleteRoom = %+v, %v; want 2 removed, 1 disconnected", res, err)
	}
	got := leaves(t, w)
	checkLeave(t, "raw member of a deleted room", got[raw.ID()], CauseRoomDeleted, CloseRoomDeleted)
	checkLeave(t, "session member of a deleted room", got[ses.ID()], CauseRoomDeleted, 0)
	if closed, code, _ := rawT.closedWith(); !closed || code != CloseRoomDeleted {
		t.Errorf("raw member: closed %v with %d, want 4001", closed, code)
	}
	if closed, _, _ := sesT.closedWith(); closed {
		t.Error("session member of a deleted room was closed")
	}

	// A client closing with 4000 itself is not a kick: the transport says
	// who closed.
	h.CreateRoom("s", RoomOptions{})
	w, _ = h.Watch("s")
	c, _ := join(t, h, "s", "", false)
	h.Leave(c, CauseClosedByClient, CloseKicked, "kicked")
	checkLeave(t, "client closing with 4000", leaves(t, w)[c.ID()], CauseClosedByClient, CloseKicked)
}

// A raw member whose connection is already ending when its room is deleted
// is reported with its own departure and not counted as closed by the
// deletion.
func TestDeleteRoomRacingAClientsOwnClose(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{})
	w, _ := h.Watch("r")
	c, ft := join(t, h, "r", "", false)
	// What Leave does first, before it reaches the room.
	own := departure{CauseClosedByClient, CloseNormal, "bye"}
	c.mu.Lock()
	c.claimDisconnectLocked(own)
	c.mu.Unlock()

	res, err := h.DeleteRoom("r")
	if err != nil || res != (DeleteResult{Removed: 1, Disconnected: 0}) {
		t.Errorf("DeleteRoom = %+v, %v; want 1 removed, 0 disconnected", res, err)
	}
	checkLeave(t, "member already closing", leaves(t, w)[c.ID()], CauseClosedByClient, CloseNormal)
	h.finishDisconnect(c, own, false) // the rest of Leave
	if closed, _, _ := ft.closedWith(); closed {
		t.Error("DeleteRoom closed a connection that was closing on its own")
	}
}
