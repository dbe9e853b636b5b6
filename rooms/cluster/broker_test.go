package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
	"roomd/rooms/cluster/natstest"
)

// busNode is one roomd node's core, a Hub carried by the stream broker,
// on its own NATS connection.
type busNode struct {
	hub    *rooms.Hub
	broker *Broker
	calls  *Calls
	nc     *nats.Conn
}

// testPeers is the test's list of live nodes, which it changes as nodes
// start and die.
type testPeers struct {
	mu    sync.Mutex
	names []string
}

func (p *testPeers) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names)
}

func (p *testPeers) set(names ...string) {
	p.mu.Lock()
	p.names = names
	p.mu.Unlock()
}

func newBusNode(t *testing.T, url, name string, peers ...*testPeers) *busNode {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := EnsureStream(ctx, js, StreamConfig{Replicas: 1, HistoryPerRoom: 100, MaxBytes: 64 << 20, MaxMessageBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	epoch, err := StreamEpoch(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	n := &busNode{nc: nc}
	n.hub = rooms.NewHub(rooms.Config{NodeName: name, DefaultHistorySize: 100, NewBroker: func(local rooms.Deliverer) rooms.Broker {
		n.broker = NewBroker(nc, js, stream, epoch, local, slog.New(slog.NewTextHandler(io.Discard, nil)), 5*time.Second)
		return n.broker
	}})
	t.Cleanup(n.broker.Close)
	nc.SetReconnectHandler(func(*nats.Conn) { go n.broker.CatchUp() })
	if len(peers) > 0 {
		n.calls, err = StartCalls(nc, n.hub, peers[0].list, nil, 2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.calls.Stop)
		n.broker.Roster = n.calls.Roster
	}
	return n
}

// quietTransport is a connection that nobody reads from: tests take the
// client's queue themselves.
type quietTransport struct {
	mu     sync.Mutex
	closed rooms.CloseCode
}

func (q *quietTransport) Wake() {}
func (q *quietTransport) Close(code rooms.CloseCode, _ string) {
	q.mu.Lock()
	q.closed = code
	q.mu.Unlock()
}

// member collects what a client receives, in order.
type member struct {
	c   *rooms.Client
	got []*rooms.Message
}

func (n *busNode) join(t *testing.T, room string, opts rooms.JoinOptions) *member {
	t.Helper()
	c, err := n.hub.Connect(rooms.ClientInfo{}, &quietTransport{}, true)
	if err != nil {
		t.Fatal(err)
	}
	opts.AutoCreate = true
	if _, err := n.hub.JoinRoom(c, room, opts); err != nil {
		t.Fatalf("join %s: %v", room, err)
	}
	return &member{c: c}
}

// waitFor takes the member's messages until it has want of them.
func (m *member) waitFor(t *testing.T, want int) []*rooms.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(m.got) < want {
		for _, msg := range m.c.Queue().Take(nil) {
			if msg.Kind == rooms.Text || msg.Kind == rooms.Binary || msg.Kind == rooms.JSON {
				m.got = append(m.got, msg)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("member has %d messages after 15s, want %d", len(m.got), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m.got
}

func seqsOf(msgs []*rooms.Message) []uint64 {
	var out []uint64
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func publish(t *testing.T, n *busNode, room, text string) rooms.Published {
	t.Helper()
	pub, err := n.hub.Publish(&rooms.Message{RoomID: room, Kind: rooms.Text, Payload: []byte(text)})
	if err != nil {
		t.Fatalf("publish %q: %v", text, err)
	}
	return pub
}

// Publishers on three nodes at once: every member on every node gets
// every message once, all in the same order, with growing sequences.
func TestMessagesCrossNodesInOneOrder(t *testing.T) {
	srv := natstest.Start(t)
	nodes := []*busNode{newBusNode(t, srv.URL(), "a"), newBusNode(t, srv.URL(), "b"), newBusNode(t, srv.URL(), "c")}
	var members []*member
	for _, n := range nodes {
		members = append(members, n.join(t, "lobby", rooms.JoinOptions{}), n.join(t, "lobby", rooms.JoinOptions{}))
	}
	const perNode = 50
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for k := range perNode {
				publish(t, n, "lobby", fmt.Sprintf("%d-%d", i, k))
			}
		})
	}
	wg.Wait()
	first := members[0].waitFor(t, 3*perNode)
	for i, m := range members {
		got := m.waitFor(t, 3*perNode)
		if !slices.Equal(seqsOf(got), seqsOf(first)) {
			t.Fatalf("member %d saw another order:\n%v\nvs\n%v", i, seqsOf(got), seqsOf(first))
		}
	}
	if !slices.IsSorted(seqsOf(first)) {
		t.Errorf("sequences do not grow: %v", seqsOf(first))
	}
	seen := map[string]bool{}
	for _, m := range first {
		if seen[string(m.Payload)] {
			t.Errorf("%s delivered twice", m.Payload)
		}
		seen[string(m.Payload)] = true
	}
}

// A member resumes on another node, and on a node that started after the
// messages were sent: it gets exactly what it missed, no gap.
func TestResumeOnAnotherNodeAndAfterARestart(t *testing.T) {
	srv := natstest.Start(t)
	a, b := newBusNode(t, srv.URL(), "a"), newBusNode(t, srv.URL(), "b")
	m := a.join(t, "r", rooms.JoinOptions{})
	b.join(t, "r", rooms.JoinOptions{}) // b carries the room already
	var pubs []rooms.Published
	for i := range 5 {
		pubs = append(pubs, publish(t, a, "r", fmt.Sprint(i)))
	}
	m.waitFor(t, 5)
	since := pubs[1]
	for i := 5; i < 8; i++ {
		pubs = append(pubs, publish(t, b, "r", fmt.Sprint(i)))
	}
	want := seqsOf(nil)
	for _, p := range pubs[2:] {
		want = append(want, p.Seq)
	}
	resumed := b.join(t, "r", rooms.JoinOptions{Resume: true, Since: since.Seq, Epoch: since.Epoch})
	if got := seqsOf(resumed.waitFor(t, len(want))); !slices.Equal(got, want) {
		t.Errorf("resume on the other node got %v, want %v", got, want)
	}
	// A node that starts now loads the room's history from the stream.
	c := newBusNode(t, srv.URL(), "c")
	late := c.join(t, "r", rooms.JoinOptions{Resume: true, Since: since.Seq, Epoch: since.Epoch})
	if got := seqsOf(late.waitFor(t, len(want))); !slices.Equal(got, want) {
		t.Errorf("resume on a new node got %v, want %v", got, want)
	}
	// From before anything the stream keeps of another epoch: a gap.
	gone, _ := c.hub.Connect(rooms.ClientInfo{}, &quietTransport{}, true)
	if _, err := c.hub.JoinRoom(gone, "r", rooms.JoinOptions{Resume: true, Since: since.Seq, Epoch: "other"}); err == nil {
		t.Error("a resume from another epoch was accepted")
	}
}

// NATS restarts: publishing fails clearly while it is down, and once it is
// back delivery across nodes resumes by itself, including what was
// published by a node that reconnected first.
func TestDeliveryResumesAfterNATSRestarts(t *testing.T) {
	srv := natstest.Start(t)
	a, b := newBusNode(t, srv.URL(), "a"), newBusNode(t, srv.URL(), "b")
	onA, onB := a.join(t, "r", rooms.JoinOptions{}), b.join(t, "r", rooms.JoinOptions{})
	publish(t, a, "r", "before")
	onB.waitFor(t, 1)
	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for a.nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := a.hub.Publish(&rooms.Message{RoomID: "r", Kind: rooms.Text, Payload: []byte("lost")}); err == nil {
		t.Fatal("publish with NATS down succeeded")
	} else if !errorsIsUnavailable(err) {
		t.Fatalf("publish with NATS down: %v, want ErrUnavailable", err)
	}
	srv.Start()
	var after rooms.Published
	deadline = time.Now().Add(20 * time.Second)
	for {
		pub, err := a.hub.Publish(&rooms.Message{RoomID: "r", Kind: rooms.Text, Payload: []byte("after")})
		if err == nil {
			after = pub
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing did not come back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range []*member{onA, onB} {
		got := m.waitFor(t, 2)
		if string(got[1].Payload) != "after" || got[1].Seq != after.Seq {
			t.Errorf("after the restart a member got %q/%d, want after/%d", got[1].Payload, got[1].Seq, after.Seq)
		}
	}
}

func errorsIsUnavailable(err error) bool { return errors.Is(err, rooms.ErrUnavailable) }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// A room deleted and made again: a resume from before the deletion is a
// gap on a node that loads the room afresh, not the new room's messages.
func TestDeletionMarkEndsTheHistory(t *testing.T) {
	srv := natstest.Start(t)
	a := newBusNode(t, srv.URL(), "a")
	a.join(t, "r", rooms.JoinOptions{})
	before := publish(t, a, "r", "old")
	if _, err := a.hub.DeleteRoom("r"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := a.broker.MarkDeleted(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	b := newBusNode(t, srv.URL(), "b")
	b.join(t, "r", rooms.JoinOptions{})
	publish(t, b, "r", "new")
	c, _ := b.hub.Connect(rooms.ClientInfo{}, &quietTransport{}, true)
	if _, err := b.hub.JoinRoom(c, "r", rooms.JoinOptions{Resume: true, Since: before.Seq - 1, Epoch: before.Epoch}); !errors.Is(err, rooms.ErrGap) {
		t.Errorf("resume from before the deletion: %v, want ErrGap", err)
	}
}
