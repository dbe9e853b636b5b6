package rooms

import (
	"fmt"
	"testing"
	"time"
)

// Stats counts what happened: publishes by source, deliveries (one per
// member a message was queued for), bytes queued, rooms, clients, bans.
func TestStatsCountWhatHappened(t *testing.T) {
	h := NewHub(Config{})
	a, _ := join(t, h, "r", "ann", true)
	join(t, h, "r", "bob", true)
	join(t, h, "other", "cat", true)
	if _, err := h.Publish(&Message{RoomID: "r", Kind: Text, Payload: []byte("from ann"), FromClientID: a.ID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(&Message{RoomID: "r", Kind: Text, Payload: []byte("from the admin API")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(&Message{RoomID: "missing", Kind: Text, Payload: []byte("x")}); err == nil {
		t.Fatal("published to a missing room")
	}
	if _, _, err := h.BanUser("dan", "", "spam", time.Hour); err != nil {
		t.Fatal(err)
	}
	s := h.Stats()
	// Nobody reads the fake transports: both messages sit in ann's and
	// bob's queues, 64 bytes of bookkeeping each on top of the payload.
	want := Stats{Rooms: 2, Clients: 3, Bans: 1, PublishedByClients: 1, PublishedByAdmin: 1, Deliveries: 4,
		QueuedBytes: 2 * (int64(len("from ann")) + 64 + int64(len("from the admin API")) + 64)}
	if s != want {
		t.Errorf("Stats() = %+v,\nwant       %+v", s, want)
	}
	a.Queue().Take(nil)
	if got := h.Stats().QueuedBytes; got != want.QueuedBytes/2 {
		t.Errorf("after ann's writer took her queue: %d bytes queued, want %d", got, want.QueuedBytes/2)
	}
}

// BenchmarkStats is what a scrape of /metrics costs the Hub with 50,000
// idle clients in 500 rooms.
func BenchmarkStats(b *testing.B) {
	h := NewHub(Config{})
	for i := range 50000 {
		if _, err := h.Join(fmt.Sprintf("room-%d", i%500), ClientInfo{UserID: fmt.Sprint(i)}, nopTransport{}, JoinOptions{AutoCreate: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if s := h.Stats(); s.Clients != 50000 {
			b.Fatalf("%d clients", s.Clients)
		}
	}
}
