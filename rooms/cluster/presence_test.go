package cluster

import (
	"slices"
	"testing"
	"time"

	"roomd/rooms"
	"roomd/rooms/cluster/natstest"
)

// presenceOf takes a session member's presence frames as "joined X" and
// "left X", and its messages as "msg N", in the order it got them.
func (m *member) events() []string {
	var out []string
	for _, msg := range m.c.Queue().Take(nil) {
		switch msg.Kind {
		case rooms.Presence:
			out = append(out, msg.Event+" "+msg.Subject.ClientID)
		case rooms.Text:
			out = append(out, "msg "+string(msg.Payload))
		}
	}
	return out
}

func waitEvents(t *testing.T, m *member, want []string) {
	t.Helper()
	if got := takeEvents(t, m, len(want)); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// takeEvents waits until m has n events, or 15 s, and returns them.
func takeEvents(t *testing.T, m *member, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, m.events()...)
		time.Sleep(5 * time.Millisecond)
	}
	return got
}

// Members on two nodes: each hears of the other's join and leave once, in
// the room's order with its messages; a join counts and lists the members
// of every node; a node that dies has its members removed everywhere,
// each once, as dropped.
func TestPresenceSpansNodes(t *testing.T) {
	srv := natstest.Start(t)
	peers := &testPeers{}
	peers.set("a", "b", "c")
	a, b, c := newBusNode(t, srv.URL(), "a", peers), newBusNode(t, srv.URL(), "b", peers), newBusNode(t, srv.URL(), "c", peers)
	onA := a.join(t, "r", rooms.JoinOptions{})
	onB := b.join(t, "r", rooms.JoinOptions{})
	waitEvents(t, onA, []string{"joined " + onB.c.ID()})
	publish(t, a, "r", "1")
	waitEvents(t, onB, []string{"msg 1"})
	waitEvents(t, onA, []string{"msg 1"})

	// A third member on a third node, which starts carrying the room
	// now: its join lists both others, and counts three.
	cc, _ := c.hub.Connect(rooms.ClientInfo{}, &quietTransport{}, true)
	res, err := c.hub.JoinRoom(cc, "r", rooms.JoinOptions{AutoCreate: true, ListMembers: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range res.Members {
		ids = append(ids, m.ClientID)
	}
	want := []string{onA.c.ID(), onB.c.ID(), cc.ID()}
	slices.Sort(want)
	if res.MemberCount != 3 || !slices.Equal(ids, want) {
		t.Errorf("join on the third node: count %d members %v, want 3 %v", res.MemberCount, ids, want)
	}
	onC := &member{c: cc}
	waitEvents(t, onA, []string{"joined " + cc.ID()})
	waitEvents(t, onB, []string{"joined " + cc.ID()})

	// b leaves the room as c publishes: the others hear of both once,
	// in the same order (the leave takes its place in the room's order
	// when it reaches the stream).
	if _, err := b.hub.LeaveRoom(onB.c, "r"); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "r", "2")
	gotA, gotC := takeEvents(t, onA, 2), takeEvents(t, onC, 2)
	if !slices.Equal(gotA, gotC) || !slices.Contains(gotA, "left "+onB.c.ID()) || !slices.Contains(gotA, "msg 2") {
		t.Errorf("a got %q, c got %q: want the leave and the message once each, in one order", gotA, gotC)
	}

	// c dies without a word: a and its watchers hear of c's member once.
	w, err := a.hub.Watch("r")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	peers.set("a", "b")
	for range 2 { // told of the death twice, as a registry may: still once
		a.hub.PurgeNode("c")
	}
	waitEvents(t, onA, []string{"left " + cc.ID()})
	ev := <-watchEvents(w)
	if ev.Kind != rooms.EventClientLeft || ev.Client.ClientID != cc.ID() || ev.CloseCode != rooms.CloseAbnormal {
		t.Errorf("watcher got %+v, want c's member left with 1006", ev)
	}
	page, _, _ := a.hub.Clients("r", "", 10)
	if len(page) != 1 || page[0].ClientID != onA.c.ID() {
		t.Errorf("after c died, a lists %v", page)
	}
}

func watchEvents(w *rooms.Watcher) <-chan rooms.Event {
	ch := make(chan rooms.Event, 1)
	go func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		e, _, _ := w.Next(ctx)
		ch <- e
	}()
	return ch
}

// A node with no member in a room carries it for a watcher: the watcher
// sees the room's messages and presence from the other node, and its
// watch ends when the room's last member, elsewhere, leaves.
func TestCarriedRoomIsWatchedFromAnotherNode(t *testing.T) {
	srv := natstest.Start(t)
	peers := &testPeers{}
	peers.set("a", "b")
	a, b := newBusNode(t, srv.URL(), "a", peers), newBusNode(t, srv.URL(), "b", peers)
	onA := a.join(t, "r", rooms.JoinOptions{})
	release, err := b.hub.Carry("r")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	w, err := b.hub.Watch("r")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	pub := publish(t, a, "r", "hello")
	e := <-watchEvents(w)
	if e.Kind != rooms.EventMessagePublished || string(e.Message.Payload) != "hello" || e.Message.Seq != pub.Seq {
		t.Fatalf("watcher on b got %+v, want a's message %d", e, pub.Seq)
	}
	if _, err := a.hub.LeaveRoom(onA.c, "r"); err != nil {
		t.Fatal(err)
	}
	left := <-watchEvents(w)
	if left.Kind != rooms.EventClientLeft || left.Client.ClientID != onA.c.ID() {
		t.Fatalf("watcher on b got %+v, want a's member leaving", left)
	}
	deleted := <-watchEvents(w)
	if deleted.Kind != rooms.EventRoomDeleted {
		t.Fatalf("watcher on b got %+v, want the room gone with its last member", deleted)
	}
	select {
	case <-w.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end")
	}
}

// Two nodes whose first members join one room at the same moment each ask
// the other for its members while both are opening the room: neither
// waits for the other (no 2 s call timeout), and each then lists both.
func TestTwoNodesOpenOneRoomAtOnce(t *testing.T) {
	srv := natstest.Start(t)
	peers := &testPeers{}
	peers.set("a", "b")
	a, b := newBusNode(t, srv.URL(), "a", peers), newBusNode(t, srv.URL(), "b", peers)
	start := time.Now()
	done := make(chan *member, 2)
	for _, n := range []*busNode{a, b} {
		go func() { done <- n.join(t, "both", rooms.JoinOptions{}) }()
	}
	<-done
	<-done
	if took := time.Since(start); took > time.Second {
		t.Errorf("two first joins at once took %v", took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range []*busNode{a, b} {
		for {
			page, _, _ := n.hub.Clients("both", "", 10)
			if len(page) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s lists %v", n.hub.NodeName(), page)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
