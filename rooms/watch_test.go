package rooms

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
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

// nextMessage returns the next event of w, which must be a published
// message, without waiting for one that is not there yet.
func nextMessage(t *testing.T, w *Watcher) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, ok, err := w.Next(ctx)
	if !ok || e.Kind != EventMessagePublished {
		t.Fatalf("Next = %+v, %v, %v; want a published message", e, ok, err)
	}
	return e
}

// A watch from a position gets the kept messages after it, with the times
// they were published at, then the live ones: each once, in order.
func TestWatchSinceReplaysThenGoesLive(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{HistorySize: 10})
	start := time.Now()
	seqs := publishN(t, h, "r", 5, 10)
	info, _ := h.GetRoom("r")

	for _, epoch := range []string{"", info.Epoch} {
		w, err := h.WatchSince("r", Position{Seq: seqs[1], Epoch: epoch})
		if err != nil {
			t.Fatalf("WatchSince(%d, %q): %v", seqs[1], epoch, err)
		}
		for _, want := range seqs[2:] {
			e := nextMessage(t, w)
			if e.Message.Seq != want || e.Recipients != 0 || e.Time.Before(start) || !e.Time.Equal(e.Message.Time) {
				t.Fatalf("replayed seq %d at %v (recipients %d), want seq %d at the time it was published (%v)", e.Message.Seq, e.Time, e.Recipients, want, e.Message.Time)
			}
		}
		w.Stop()
	}

	w, err := h.WatchSince("r", Position{Seq: seqs[4]}) // the latest: nothing to replay
	if err != nil {
		t.Fatal(err)
	}
	later := publishN(t, h, "r", 2, 10)
	for _, want := range later {
		if e := nextMessage(t, w); e.Message.Seq != want {
			t.Fatalf("live seq %d, want %d", e.Message.Seq, want)
		}
	}
	w.Stop()
}

// A watch made while messages are being published misses none and doubles
// none between its replay and what follows it live.
func TestWatchSinceIsAtomicWithPublishing(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("r", RoomOptions{HistorySize: 1000})
	const total = 500
	published := make(chan uint64, total)
	go func() {
		defer close(published)
		for range total {
			m := &Message{RoomID: "r", Kind: Text, Payload: []byte("m")}
			if _, err := h.Publish(m); err != nil {
				t.Error(err)
				return
			}
			published <- m.Seq
		}
	}()
	var all []uint64
	for range 50 { // start watching mid-stream
		all = append(all, <-published)
	}
	since := all[len(all)-1]
	w, err := h.WatchSince("r", Position{Seq: since})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for seq := range published {
		all = append(all, seq)
	}
	want := all[slices.Index(all, since)+1:]
	var got []uint64
	for range want {
		got = append(got, nextMessage(t, w).Message.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("watched %v, want %v", got, want)
	}
	select {
	case e := <-w.ch:
		t.Fatalf("an event after the last message: %+v", e)
	default:
	}
}

// A position the history cannot answer for is ErrGap, and costs no watch.
func TestWatchSinceGap(t *testing.T) {
	h := NewHub(Config{MaxWatchers: 1})
	h.CreateRoom("r", RoomOptions{HistorySize: 3})
	seqs := publishN(t, h, "r", 10, 10)
	info, _ := h.GetRoom("r")
	for _, tc := range []struct {
		name  string
		since uint64
		epoch string
		want  string
	}{
		{"trimmed", seqs[5], "", "keeps history back to message"},
		{"past the latest", seqs[9] + 1, "", "has no message"},
		{"another epoch", seqs[8], "other", "restarted its history"},
	} {
		if _, err := h.WatchSince("r", Position{Seq: tc.since, Epoch: tc.epoch}); !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: WatchSince(%d, %q) = %v, want ErrGap saying %q", tc.name, tc.since, tc.epoch, err, tc.want)
		}
	}
	// The oldest position the history reaches still works, and the one
	// watch allowed was never taken by the refusals.
	w, err := h.WatchSince("r", Position{Seq: seqs[6], Epoch: info.Epoch})
	if err != nil {
		t.Fatalf("WatchSince from the oldest kept position: %v", err)
	}
	for _, want := range seqs[7:] {
		if e := nextMessage(t, w); e.Message.Seq != want {
			t.Fatalf("replayed seq %d, want %d", e.Message.Seq, want)
		}
	}
	if _, err := h.WatchSince("nope", Position{}); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("WatchSince of a missing room: %v", err)
	}
}
