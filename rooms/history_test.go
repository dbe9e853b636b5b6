package rooms

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// resumeFrom joins room as a new session client resuming after since of
// epoch, and returns the sequences replayed to it, or the join's error.
// The client leaves again (an auto-created room it alone was in vanishes).
func resumeFrom(t *testing.T, h *Hub, room string, since uint64, epoch string) ([]uint64, error) {
	t.Helper()
	c, err := h.Connect(ClientInfo{UserID: "resumer"}, &fakeTransport{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Leave(c, CauseClosedByClient, CloseNormal, "")
	if _, err := h.JoinRoom(c, room, JoinOptions{Resume: true, Since: since, Epoch: epoch}); err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, m := range c.Queue().Take(nil) {
		if m.Kind != Presence {
			seqs = append(seqs, m.Seq)
		}
	}
	return seqs, nil
}

// publishN publishes n messages of size bytes to room and returns their
// sequences.
func publishN(t *testing.T, h *Hub, room string, n, size int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		m := &Message{RoomID: room, Kind: Binary, Payload: make([]byte, size)}
		if _, err := h.Publish(m); err != nil {
			t.Fatal(err)
		}
		seqs[i] = m.Seq
	}
	return seqs
}

// checkHistoryBytes checks the Hub's total against what its rooms hold,
// and every room against its bounds.
func checkHistoryBytes(t *testing.T, h *Hub) int64 {
	t.Helper()
	var sum int64
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			r.mu.Lock()
			hist := &r.history
			var entries int64
			for j := range hist.n {
				entries += hist.ring[(hist.head+j)%len(hist.ring)].size
			}
			if want := entries + int64(len(hist.ring))*historySlotBytes; hist.bytes != want {
				t.Errorf("room %s counts %d bytes, holds %d", r.id, hist.bytes, want)
			}
			if hist.bytes > h.maxRoomHistoryBytes {
				t.Errorf("room %s keeps %d bytes, over its bound of %d", r.id, hist.bytes, h.maxRoomHistoryBytes)
			}
			sum += hist.bytes
			r.mu.Unlock()
		}
		s.mu.RUnlock()
	}
	if total := h.historyBytes.Load(); total != sum || total > h.maxHistoryBytes {
		t.Errorf("the Hub counts %d history bytes, its rooms hold %d; the bound is %d", total, sum, h.maxHistoryBytes)
	}
	return sum
}

// A room keeps its latest messages within its byte bound, whatever its
// count allows; a resume from before them is a gap, one from within them
// replays exactly the rest.
func TestHistoryIsBoundedInBytesPerRoom(t *testing.T) {
	const size = 1000
	h := NewHub(Config{MaxRoomHistoryBytes: 10*size + 16*historySlotBytes})
	info, _ := h.CreateRoom("r", RoomOptions{HistorySize: 100})
	seqs := publishN(t, h, "r", 30, size)
	checkHistoryBytes(t, h)

	r := h.lookup("r")
	if r.history.n != 10 {
		t.Fatalf("the room keeps %d messages of %d bytes, want the 10 its byte bound holds", r.history.n, size)
	}
	if _, err := resumeFrom(t, h, "r", seqs[18], info.Epoch); !errors.Is(err, ErrGap) {
		t.Errorf("resume from before the kept messages: %v, want ErrGap", err)
	}
	got, err := resumeFrom(t, h, "r", seqs[19], info.Epoch)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(seqs[20:]) {
		t.Errorf("resume from the last evicted message replayed %v, %v; want %v", got, err, seqs[20:])
	}

	// A message over the room's bound alone is delivered but not kept: it
	// and everything before it are a gap.
	member, _ := join(t, h, "r", "m", false)
	big := publishN(t, h, "r", 1, 20*size)[0]
	if got := member.Queue().Take(nil); len(got) != 1 || got[0].Seq != big {
		t.Errorf("member got %d messages, want the big one", len(got))
	}
	if _, err := resumeFrom(t, h, "r", seqs[29], info.Epoch); !errors.Is(err, ErrGap) {
		t.Errorf("resume from before an unkept message: %v, want ErrGap", err)
	}
	if got, err := resumeFrom(t, h, "r", big, info.Epoch); err != nil || len(got) != 0 {
		t.Errorf("resume from the unkept message itself: %v %v, want nothing to replay", got, err)
	}
	if n := checkHistoryBytes(t, h); n != 0 {
		t.Errorf("after an unkept message the room still holds %d bytes", n)
	}
}

// Once every room together holds the total, a publishing room makes room
// from its own oldest messages, and a room with none keeps nothing (its
// messages are still delivered); bytes come back when a room goes.
func TestHistoryTotalIsSharedAcrossRooms(t *testing.T) {
	const size = 1000
	perRoom := 10*size + 16*historySlotBytes
	h := NewHub(Config{MaxRoomHistoryBytes: perRoom, MaxHistoryBytes: perRoom})
	a, _ := h.CreateRoom("a", RoomOptions{HistorySize: 100})
	b, _ := h.CreateRoom("b", RoomOptions{HistorySize: 100})
	aSeqs := publishN(t, h, "a", 10, size)
	if n := checkHistoryBytes(t, h); n <= perRoom-size {
		t.Fatalf("room a holds %d bytes, want the total of %d nearly spent", n, perRoom)
	}

	member, _ := join(t, h, "b", "m", false)
	bSeqs := publishN(t, h, "b", 3, size)
	if got := member.Queue().Take(nil); len(got) != 3 {
		t.Errorf("room b delivered %d messages, want 3 although it keeps none", len(got))
	}
	if _, err := resumeFrom(t, h, "b", bSeqs[1], b.Epoch); !errors.Is(err, ErrGap) {
		t.Errorf("resume in room b, which could keep nothing: %v, want ErrGap", err)
	}

	// Room a goes on keeping its latest, at its own oldest's expense.
	more := publishN(t, h, "a", 5, size)
	if got, err := resumeFrom(t, h, "a", aSeqs[4], a.Epoch); err != nil || fmt.Sprint(got) != fmt.Sprint(append(aSeqs[5:], more...)) {
		t.Errorf("room a replayed %v, %v; want its latest 10", got, err)
	}
	checkHistoryBytes(t, h)

	if _, err := h.DeleteRoom("a"); err != nil {
		t.Fatal(err)
	}
	if n := checkHistoryBytes(t, h); n != 0 {
		t.Fatalf("room a deleted, yet %d history bytes are counted", n)
	}
	last := publishN(t, h, "b", 2, size)
	if got, err := resumeFrom(t, h, "b", last[0], b.Epoch); err != nil || fmt.Sprint(got) != fmt.Sprint(last[1:]) {
		t.Errorf("room b after room a went: replayed %v, %v; want %v", got, err, last[1:])
	}
}

// Small messages cost their ring slots too: a flood of empty messages is
// bounded by bytes as well as by count, and the ring shrinks again when
// large messages push the small ones out.
func TestHistoryCountsRingSlots(t *testing.T) {
	h := NewHub(Config{MaxRoomHistoryBytes: 64 << 10})
	h.CreateRoom("r", RoomOptions{HistorySize: MaxHistorySize})
	publishN(t, h, "r", 10000, 0)
	r := h.lookup("r")
	if max := int((64 << 10) / historySlotBytes); r.history.n >= max || len(r.history.ring) > max {
		t.Errorf("%d empty messages kept in a ring of %d; the byte bound allows fewer than %d slots", r.history.n, len(r.history.ring), max)
	}
	checkHistoryBytes(t, h)
	publishN(t, h, "r", 12, 7000) // 9 of them and a small ring fit in 64 KiB
	if r.history.n != 9 || len(r.history.ring) > 4*9 {
		t.Errorf("after large messages: %d kept in a ring of %d, want 9 in a ring of at most 36", r.history.n, len(r.history.ring))
	}
	checkHistoryBytes(t, h)
}

// Publishing, joining and leaving in many rooms at once keeps the Hub's
// count equal to what the rooms hold, within both bounds, and zero once
// every auto-created room has vanished.
func TestHistoryAccountingUnderConcurrency(t *testing.T) {
	h := NewHub(Config{MaxRoomHistoryBytes: 8 << 10, MaxHistoryBytes: 40 << 10, DefaultHistorySize: 50})
	const workers, rounds = 4, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				room := fmt.Sprintf("r%d", rnd.IntN(8))
				c, err := h.Join(room, ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true})
				if err != nil {
					t.Error(err)
					return
				}
				for range rnd.IntN(5) {
					h.Publish(&Message{RoomID: room, Kind: Binary, Payload: make([]byte, rnd.IntN(3000))})
				}
				c.Queue().Take(nil)
				h.Leave(c, CauseClosedByClient, CloseNormal, "")
			}
		})
	}
	wg.Wait()
	if n := h.historyBytes.Load(); n != 0 {
		t.Errorf("every room has vanished, yet %d history bytes are counted", n)
	}

	for i := range 8 {
		join(t, h, fmt.Sprintf("r%d", i), "", true)
	}
	for w := range workers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 2))
			for range rounds {
				h.Publish(&Message{RoomID: fmt.Sprintf("r%d", rnd.IntN(8)), Kind: Binary, Payload: make([]byte, rnd.IntN(3000))})
			}
		})
	}
	wg.Wait()
	if n := checkHistoryBytes(t, h); n == 0 {
		t.Error("no room kept any history")
	}
}
