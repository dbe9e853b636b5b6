package rooms

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// roomsMadeBy is how many rooms creator has made that still exist.
func (h *Hub) roomsMadeBy(creator string) int {
	s := &h.creators[h.shardIndex(creator)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.made[creator]
}

func TestRoomQuota(t *testing.T) {
	h := NewHub(Config{})
	ip := []RoomQuota{{Creator: "address a", Max: 2}}
	both := []RoomQuota{{Creator: "address a", Max: 2}, {Creator: "user u", Max: 5}}
	joinAs := func(room string, quotas []RoomQuota) (*Client, error) {
		return h.Join(room, ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true, Quotas: quotas})
	}
	r1, err := joinAs("r1", ip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joinAs("r2", both); err != nil {
		t.Fatal(err)
	}
	_, err = joinAs("r3", both)
	if !errors.Is(err, ErrRoomQuota) || !errors.Is(err, ErrLimit) {
		t.Fatalf("third room: %v, want ErrRoomQuota (an ErrLimit)", err)
	}
	if _, gone := h.GetRoom("r3"); !errors.Is(gone, ErrRoomNotFound) {
		t.Errorf("the refused room exists: %v", gone)
	}
	if n := h.roomsMadeBy("user u"); n != 1 {
		t.Errorf("user u counts %d rooms after a refusal its address caused, want 1", n)
	}
	r1b, err := joinAs("r1", ip)
	if err != nil {
		t.Fatalf("joining a room that exists: %v", err)
	}
	if _, err := joinAs("r3", []RoomQuota{{Creator: "address b", Max: 2}}); err != nil {
		t.Errorf("another address: %v", err)
	}
	h.CreateRoom("admin-made", RoomOptions{})

	// r1 has two members; it counts until the last leaves.
	h.Leave(r1, CauseClosedByClient, CloseNormal, "")
	if _, err := joinAs("r4", ip); !errors.Is(err, ErrRoomQuota) {
		t.Fatalf("with r1 still open: %v, want ErrRoomQuota", err)
	}
	h.Leave(r1b, CauseClosedByClient, CloseNormal, "")
	if _, err := joinAs("r4", ip); err != nil {
		t.Fatalf("after r1 vanished: %v", err)
	}
	if _, err := h.DeleteRoom("r4"); err != nil {
		t.Fatal(err)
	}
	if n := h.roomsMadeBy("address a"); n != 1 {
		t.Errorf("address a counts %d rooms, want 1 (r2) after r1 vanished and r4 was deleted", n)
	}
}

// Making and leaving rooms from many goroutines at once leaves no count
// behind once every room has vanished, and never lets a creator past its
// quota.
func TestRoomQuotaUnderConcurrency(t *testing.T) {
	h := NewHub(Config{})
	quota := []RoomQuota{{Creator: "address a", Max: 5}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				c, err := h.Join(fmt.Sprintf("r%d", (w*7+i)%12), ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true, Quotas: quota})
				if errors.Is(err, ErrRoomQuota) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := h.roomsMadeBy("address a"); n > 5 {
					t.Errorf("address a counts %d rooms, over its quota of 5", n)
				}
				h.Leave(c, CauseClosedByClient, CloseNormal, "")
			}
		})
	}
	wg.Wait()
	if n := h.roomsMadeBy("address a"); n != 0 {
		t.Errorf("every room has vanished, yet address a counts %d", n)
	}
}
