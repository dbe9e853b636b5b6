package rooms

import (
	"context"
	"errors"
	"testing"
)

// A watcher whose reader stops is ended as soon as the events it has not
// taken pass WatcherBytes; the room carries on, and what the watcher holds
// never passes the bound.
func TestWatcherThatStopsReadingIsEndedPastItsBound(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{}) // no members: nobody else can fall behind
	w, err := h.Watch("r")
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 60<<10)
	published := 0
	for ; published < 100; published++ {
		select {
		case <-w.Ended():
		default:
			if w.queued > WatcherBytes {
				t.Fatalf("the watcher holds %d bytes, over its bound of %d", w.queued, WatcherBytes)
			}
			h.Publish(&Message{RoomID: "r", Payload: payload})
			continue
		}
		break
	}
	if want := WatcherBytes / len(payload); published < want || published > want+1 {
		t.Errorf("ended after %d messages of 60 KiB, want about %d", published, want)
	}
	if !errors.Is(w.Err(), ErrWatcherTooSlow) {
		t.Errorf("Err %v, want ErrWatcherTooSlow", w.Err())
	}
	// What was queued before the end can still be read, then the watch says why it ended.
	n := 0
	for {
		_, ok, err := w.Next(context.Background())
		if !ok {
			if !errors.Is(err, ErrWatcherTooSlow) {
				t.Errorf("Next at the end: %v, want ErrWatcherTooSlow", err)
			}
			break
		}
		n++
	}
	if n != published-1 {
		t.Errorf("read %d queued events, want the %d before the one that did not fit", n, published-1)
	}
	if _, err := h.Publish(&Message{RoomID: "r", Payload: []byte("on")}); err != nil {
		t.Errorf("the room after its watcher ended: %v", err)
	}
}

// A reader that keeps up is never ended, however much goes through.
func TestWatcherThatKeepsUpIsNeverEnded(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{})
	w, _ := h.Watch("r")
	payload := make([]byte, 60<<10)
	for range 100 {
		h.Publish(&Message{RoomID: "r", Payload: payload})
		if _, ok, err := w.Next(context.Background()); !ok {
			t.Fatalf("a reader that keeps up was ended: %v", err)
		}
	}
}

func TestWatchesAreCapped(t *testing.T) {
	h := NewHub(Config{MaxWatchers: 2})
	join(t, h, "r", "", true)
	a, _ := h.Watch("r")
	if _, err := h.Watch("r"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Watch("r"); !errors.Is(err, ErrLimit) || err.Error() != "2 room watches are open, the most allowed at once" {
		t.Fatalf("third watch: %v, want ErrLimit naming the limit", err)
	}
	a.Stop()
	if _, err := h.Watch("r"); err != nil {
		t.Errorf("a watch after one stopped: %v", err)
	}
	if _, err := h.Watch("nope"); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("watch of a missing room: %v", err)
	}
	if n := h.watchers.Load(); n != 2 {
		t.Errorf("%d watches counted, want 2 (a refused one counts none)", n)
	}
}
