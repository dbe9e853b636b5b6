package rooms

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckRoomOptionsRefusesWhatCreateRoomRefuses(t *testing.T) {
	for i, tc := range []struct {
		room string
		opts RoomOptions
	}{
		{"ok", RoomOptions{}},
		{"a.b:c", RoomOptions{MaxClients: 3, HistorySize: -1}},
		{"", RoomOptions{}},
		{"..", RoomOptions{}},
		{"a b", RoomOptions{}},
		{"neg", RoomOptions{MaxClients: -1}},
		{"big", RoomOptions{HistorySize: MaxHistorySize + 1}},
		{"max", RoomOptions{HistorySize: MaxHistorySize}},
	} {
		checked := CheckRoomOptions(tc.room, tc.opts)
		_, created := NewHub(Config{}).CreateRoom(tc.room, tc.opts)
		if (checked == nil) != (created == nil) || checked != nil && checked.Error() != created.Error() {
			t.Errorf("case %d (%q): CheckRoomOptions says %v, CreateRoom %v", i, tc.room, checked, created)
		}
	}
}

func TestMirrorRoomMakesTheRoomOnce(t *testing.T) {
	h := NewHub(Config{DefaultHistorySize: 7})
	at := time.Date(2026, 5, 1, 12, 0, 0, 123, time.UTC)
	opts := RoomOptions{MaxClients: 1, Echo: true, Metadata: map[string]string{"k": "v"}, HistorySize: -1, NoPresence: true}
	info, err := h.MirrorRoom("m", opts, at)
	if err != nil {
		t.Fatal(err)
	}
	if info.AutoCreated || !info.CreatedAt.Equal(at) || info.Options.MaxClients != 1 || !info.Options.NoPresence ||
		info.Options.HistorySize != 7 || info.Options.Metadata["k"] != "v" {
		t.Fatalf("mirrored room = %+v", info)
	}
	_, ft := join(t, h, "m", "ann", false)
	// The same room again, as a store's watcher reports what its writer
	// already made: nothing changes, the member stays.
	if _, err := h.MirrorRoom("m", opts, at); err != nil {
		t.Fatal(err)
	}
	if closed, _, _ := ft.closedWith(); closed {
		t.Fatal("mirroring the same room again closed its member")
	}
	if _, err := h.Join("m", ClientInfo{}, &fakeTransport{}, JoinOptions{}); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("second member of a room of 1: %v, want ErrRoomFull", err)
	}
	if _, err := h.MirrorRoom("a b", opts, at); !errors.Is(err, ErrInvalidRoomID) {
		t.Fatalf("invalid id: %v", err)
	}
}

func TestMirrorRoomTakesOverAnAutoCreatedRoom(t *testing.T) {
	h := NewHub(Config{DefaultHistorySize: 10})
	quota := []RoomQuota{{Creator: "address 192.0.2.1", Max: 1}}
	c, err := h.Join("r", ClientInfo{UserID: "ann"}, &fakeTransport{}, JoinOptions{AutoCreate: true, Quotas: quota})
	if err != nil {
		t.Fatal(err)
	}
	seqs := publishN(t, h, "r", 5, 10)
	at := time.Now().Add(-time.Minute)
	info, err := h.MirrorRoom("r", RoomOptions{MaxClients: 2, HistorySize: 2}, at)
	if err != nil {
		t.Fatal(err)
	}
	if info.AutoCreated || info.ClientCount != 1 || !info.CreatedAt.Equal(at) || info.Options.MaxClients != 2 {
		t.Fatalf("room after mirroring = %+v", info)
	}
	if !c.InRoom("r") {
		t.Fatal("the member of the auto-created room was dropped")
	}
	// The new options hold: two messages of history, two members at most.
	if _, err := resumeFrom(t, h, "r", seqs[1], info.Epoch); !errors.Is(err, ErrGap) {
		t.Fatalf("resume from before the last two messages: %v, want ErrGap", err)
	}
	if got, err := resumeFrom(t, h, "r", seqs[3], info.Epoch); err != nil || len(got) != 1 || got[0] != seqs[4] {
		t.Fatalf("resume within the last two messages: %v, %v", got, err)
	}
	second, err := h.Join("r", ClientInfo{}, &fakeTransport{}, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Join("r", ClientInfo{}, &fakeTransport{}, JoinOptions{}); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("join over MaxClients: %v, want ErrRoomFull", err)
	}
	h.Leave(second, CauseClosedByClient, CloseNormal, "")
	// The room no longer counts against the quota of the join that made it,
	// and no longer vanishes with its last member.
	if _, err := h.Join("other", ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true, Quotas: quota}); err != nil {
		t.Fatalf("the creator's quota is still spent: %v", err)
	}
	h.Leave(c, CauseClosedByClient, CloseNormal, "")
	if got, err := h.GetRoom("r"); err != nil || got.AutoCreated {
		t.Fatalf("room after its last member left: %+v, %v", got, err)
	}
}

func TestMirrorRoomReplacesARoomMadeAgain(t *testing.T) {
	h := NewHub(Config{})
	first := time.Now().Add(-time.Hour)
	if _, err := h.MirrorRoom("r", RoomOptions{}, first); err != nil {
		t.Fatal(err)
	}
	_, ft := join(t, h, "r", "ann", false)
	second := first.Add(time.Minute)
	info, err := h.MirrorRoom("r", RoomOptions{Echo: true}, second)
	if err != nil {
		t.Fatal(err)
	}
	if !info.CreatedAt.Equal(second) || !info.Options.Echo || info.ClientCount != 0 {
		t.Fatalf("room made again = %+v", info)
	}
	if closed, code, _ := ft.closedWith(); !closed || code != CloseRoomDeleted {
		t.Fatalf("member of the deleted room: closed %v code %v, want %v", closed, code, CloseRoomDeleted)
	}
}

// Members join and leave an auto-created room as fast as they can while it
// is mirrored: whatever the interleaving, the room ends up made, and stays
// once everyone has left.
func TestMirrorRoomRacingJoinsAndLeaves(t *testing.T) {
	// A leave that saw the auto-created room empty calls removeIfEmpty
	// after dropping the room's lock; if MirrorRoom makes the room its own
	// in between, removeIfEmpty must see that it is no longer
	// auto-created and keep it.
	for round := range 50 {
		h := NewHub(Config{})
		room := fmt.Sprintf("race-%d", round)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := h.Join(room, ClientInfo{}, &fakeTransport{}, JoinOptions{AutoCreate: true})
					if err != nil {
						t.Error(err)
						return
					}
					h.Leave(c, CauseClosedByClient, CloseNormal, "")
				}
			})
		}
		for {
			if _, err := h.GetRoom(room); err == nil {
				break // made by a join: mirror it while they go on
			}
			runtime.Gosched()
		}
		info, err := h.MirrorRoom(room, RoomOptions{}, time.Now())
		close(stop)
		wg.Wait()
		if err != nil || info.AutoCreated {
			t.Fatalf("round %d: MirrorRoom = %+v, %v", round, info, err)
		}
		if got, err := h.GetRoom(room); err != nil || got.AutoCreated || got.ClientCount != 0 {
			t.Fatalf("round %d: room once everyone left = %+v, %v", round, got, err)
		}
	}
}

func TestApplyBanKicksAndRefusesLiftBanLets(t *testing.T) {
	h := NewHub(Config{})
	_, rawT := join(t, h, "lobby", "ann", true)
	_, elsewhereT := join(t, h, "garden", "ann", true)
	now := time.Now()
	kicked, err := h.ApplyBan(Ban{UserID: "ann", RoomID: "lobby", Reason: "spam", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil || kicked != 1 {
		t.Fatalf("ApplyBan = %d, %v; want 1 kicked", kicked, err)
	}
	if closed, code, reason := rawT.closedWith(); !closed || code != CloseKicked || reason != "spam" {
		t.Fatalf("banned member: closed %v code %v reason %q", closed, code, reason)
	}
	if closed, _, _ := elsewhereT.closedWith(); closed {
		t.Fatal("a ban from one room closed the user's connection to another")
	}
	expectBanned(t, h, "lobby", "ann", "spam")
	if !h.LiftBan("ann", "lobby") {
		t.Fatal("LiftBan found no ban")
	}
	if h.LiftBan("ann", "lobby") {
		t.Fatal("LiftBan found the ban twice")
	}
	join(t, h, "lobby", "ann", true)

	// A ban that has expired by the time it arrives is not applied.
	if kicked, err := h.ApplyBan(Ban{UserID: "ann", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Second)}); err != nil || kicked != 0 {
		t.Fatalf("expired ban = %d, %v", kicked, err)
	}
	join(t, h, "lobby2", "ann", true)
	if _, err := h.ApplyBan(Ban{UserID: "ann", RoomID: "a b", ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, ErrInvalidRoomID) {
		t.Fatalf("ban from an invalid room id: %v", err)
	}
	if _, err := h.ApplyBan(Ban{RoomID: "r", ExpiresAt: now.Add(time.Hour)}); err == nil || !strings.Contains(err.Error(), "user_id") {
		t.Fatalf("ban without a user: %v", err)
	}
}
