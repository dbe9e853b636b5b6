package rooms

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// gatedBroker is a broker whose Subscribe waits until the test lets it go,
// as a broker on the network does, and then answers with a history the
// test chose.
type gatedBroker struct {
	*MemoryBroker
	release chan RoomHistory
	refuse  error
	started chan string
}

func (b *gatedBroker) Subscribe(roomID string) (RoomHistory, error) {
	b.started <- roomID
	hist := <-b.release
	if b.refuse != nil {
		return RoomHistory{}, b.refuse
	}
	b.MemoryBroker.Subscribe(roomID)
	return hist, nil
}

func newGatedHub() (*Hub, *gatedBroker) {
	var gb *gatedBroker
	h := NewHub(Config{DefaultHistorySize: 100, NewBroker: func(local Deliverer) Broker {
		gb = &gatedBroker{MemoryBroker: NewMemoryBroker(local), release: make(chan RoomHistory), started: make(chan string, 1)}
		return gb
	}})
	return h, gb
}

// A room starts from the history its broker holds: a member that resumes
// from inside it gets the rest, with the broker's epoch, and what was
// delivered while the room was opening follows that history, once.
func TestRoomStartsFromTheBrokersHistory(t *testing.T) {
	h, gb := newGatedHub()
	joined := make(chan error, 1)
	var c *Client
	go func() {
		var err error
		c, err = h.Connect(ClientInfo{}, &fakeTransport{}, true)
		if err == nil {
			_, err = h.JoinRoom(c, "r", JoinOptions{AutoCreate: true, Resume: true, Since: 20, Epoch: "E1"})
		}
		joined <- err
	}()
	<-gb.started
	// Delivered while the room opens: one the history already holds, one after it.
	h.Deliver(&Message{RoomID: "r", Kind: Text, Payload: []byte("30"), Seq: 30})
	h.Deliver(&Message{RoomID: "r", Kind: Text, Payload: []byte("31"), Seq: 31})
	select {
	case err := <-joined:
		t.Fatalf("the join returned (%v) before the room was open", err)
	default:
	}
	gb.release <- RoomHistory{Epoch: "E1", Seq: 30, Trimmed: 9, Messages: []*Message{
		{RoomID: "r", Kind: Text, Payload: []byte("10"), Seq: 10},
		{RoomID: "r", Kind: Text, Payload: []byte("20"), Seq: 20},
		{RoomID: "r", Kind: Text, Payload: []byte("30"), Seq: 30},
	}}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(payloads(c)); got != "[30 31]" {
		t.Errorf("the resumer got %s, want [30 31]", got)
	}
	info, _ := h.GetRoom("r")
	if info.Seq != 31 || info.Epoch != "E1" {
		t.Errorf("room at %d/%q, want 31/E1", info.Seq, info.Epoch)
	}
	// A resume from before what the broker still holds is a gap.
	c2, _ := h.Connect(ClientInfo{}, &fakeTransport{}, true)
	if _, err := h.JoinRoom(c2, "r", JoinOptions{Resume: true, Since: 5, Epoch: "E1"}); !errors.Is(err, ErrGap) {
		t.Errorf("resume from 5 with history trimmed at 9: %v, want ErrGap", err)
	}
}

// A room the broker refuses is not made: the joiner hears why, and the
// registry does not keep it.
func TestRoomTheBrokerRefusesIsNotMade(t *testing.T) {
	h, gb := newGatedHub()
	gb.refuse = errors.New("bus unreachable")
	done := make(chan error, 1)
	go func() {
		_, err := h.Join("r", ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true})
		done <- err
	}()
	<-gb.started
	gb.release <- RoomHistory{}
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, gb.refuse) {
			t.Fatalf("join: %v, want the broker's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("join did not return")
	}
	if _, err := h.GetRoom("r"); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("GetRoom after a refused open: %v, want ErrRoomNotFound", err)
	}
	if n := h.roomCount.Load(); n != 0 {
		t.Errorf("room count %d, want 0", n)
	}
}

// A room made again before the old one's Unsubscribe keeps its order but
// tells resumers that the old history is gone.
func TestMemoryBrokerCountsOverlappingSubscriptions(t *testing.T) {
	b := NewMemoryBroker(NewHub(Config{}))
	first, _ := b.Subscribe("r")
	b.Publish(&Message{RoomID: "r"})
	second, _ := b.Subscribe("r")
	b.Unsubscribe("r")
	pub, _ := b.Publish(&Message{RoomID: "r"})
	if second.Epoch != first.Epoch || second.Seq != 1 || second.Trimmed != 1 || pub.Seq != 2 {
		t.Errorf("overlap: first %+v, second %+v, next publish %+v", first, second, pub)
	}
	b.Unsubscribe("r")
	third, _ := b.Subscribe("r")
	if third.Epoch == first.Epoch || third.Seq != 0 {
		t.Errorf("a room made afresh kept its old history: %+v", third)
	}
}
