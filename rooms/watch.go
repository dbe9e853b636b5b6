package rooms

import (
	"context"
	"errors"
	"time"
)

// ErrWatcherTooSlow ends a watch whose reader fell behind by more than its
// bound; the room itself is never slowed down by a watcher.
var ErrWatcherTooSlow = errors.New("watcher fell too far behind the room's events")

// A watcher may lag behind its room by at most watcherEvents events and
// WatcherBytes bytes of them (payloads, ids and reasons); a message is at
// most a few tens of KiB, so the byte bound is the one that bites when the
// reader stalls, and it is what one stalled watcher can make the server
// hold.
const (
	watcherEvents = 1024
	WatcherBytes  = 1 << 20
)

// DefaultMaxWatchers bounds the watches open at once when Config leaves
// MaxWatchers 0.
const DefaultMaxWatchers = 100

// Watcher receives a room's events until the room is deleted, the Hub
// closes, the watcher falls too far behind, or Stop is called.
type Watcher struct {
	ch     chan Event
	ended  chan struct{} // closed with ch
	room   *Room
	queued int64 // bytes of the events in ch; under room.mu, or by Next after a receive
	err    error // set before ch is closed

	// replay holds the messages WatchSince found in the room's history,
	// oldest first, which Next returns before anything in ch. Only Next
	// touches it once the watch is made. They are outside the bound on ch:
	// they share their payloads with the history, and there are no more of
	// them than the history held.
	replay []*Message
}

// eventBytes is what an event costs a watcher's bound: its payload and
// strings, plus a fixed amount for the rest.
func eventBytes(e Event) int64 {
	n := 64 + len(e.Client.ClientID) + len(e.Client.UserID) + len(e.Client.RemoteAddr) + len(e.Reason)
	if e.Message != nil {
		n += len(e.Message.Payload)
	}
	return int64(n)
}

// Next returns the next event, waiting until there is one. It returns
// ctx's error when ctx ends first, and Err's (nil for a deleted room or
// Stop) with ok false once the watch has ended and its events are read.
// One goroutine at a time may call it.
func (w *Watcher) Next(ctx context.Context) (e Event, ok bool, err error) {
	if len(w.replay) > 0 {
		if err := ctx.Err(); err != nil {
			return Event{}, false, err
		}
		m := w.replay[0]
		w.replay[0], w.replay = nil, w.replay[1:]
		// Its own time, not the watch's: it happened before the watch began.
		return Event{Kind: EventMessagePublished, Time: m.Time, Message: m}, true, nil
	}
	select {
	case e, ok = <-w.ch:
	case <-ctx.Done():
		return Event{}, false, ctx.Err()
	}
	if !ok {
		return Event{}, false, w.err
	}
	w.room.mu.Lock()
	w.queued -= eventBytes(e)
	w.room.mu.Unlock()
	return e, true, nil
}

// Ended is closed once the watch has ended; events may still wait for Next.
func (w *Watcher) Ended() <-chan struct{} { return w.ended }

// Err returns why the watch ended: nil after the room was deleted or Stop,
// ErrWatcherTooSlow, or ErrClosed when the server shuts down. Call it only
// after Ended is closed.
func (w *Watcher) Err() error { return w.err }

// Stop ends the watch; calling it again does nothing.
func (w *Watcher) Stop() {
	w.room.mu.Lock()
	defer w.room.mu.Unlock()
	w.room.endWatchLocked(w, nil)
}

// Watch streams the room's events from now on. Past MaxWatchers open
// watches it is ErrLimit.
func (h *Hub) Watch(roomID string) (*Watcher, error) { return h.watch(roomID, nil) }

// WatchSince is Watch from a position in the room's history: the watcher
// first gets the messages after since.Seq in the history named by
// since.Epoch ("" is the room's current one), as EventMessagePublished
// events with their own time and no Recipients, and then the room's events
// from now on. The replay is read and the watcher registered under the
// room's lock, as a resuming JoinRoom's replay is, so no message is missed
// or seen twice in between. A position the history cannot answer for (an
// older epoch, a message no longer kept, one the room has not reached) is
// ErrGap.
func (h *Hub) WatchSince(roomID string, since Position) (*Watcher, error) {
	return h.watch(roomID, &since)
}

func (h *Hub) watch(roomID string, since *Position) (*Watcher, error) {
	r, err := h.room(roomID)
	if err != nil {
		return nil, err
	}
	if n := h.watchers.Add(1); n > int64(h.maxWatchers) {
		h.watchers.Add(-1)
		return nil, errorf(ErrLimit, "%d room watches are open, the most allowed at once", h.maxWatchers)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		h.watchers.Add(-1)
		return nil, errorf(ErrRoomNotFound, "room %q not found", roomID)
	}
	w := &Watcher{ch: make(chan Event, watcherEvents), ended: make(chan struct{}), room: r}
	if since != nil {
		epoch := since.Epoch
		if epoch == "" {
			epoch = r.epoch
		}
		if w.replay, err = r.replayLocked(since.Seq, epoch); err != nil {
			h.watchers.Add(-1)
			return nil, err
		}
	}
	if r.watchers == nil {
		r.watchers = make(map[*Watcher]struct{})
	}
	r.watchers[w] = struct{}{}
	return w, nil
}

// endWatchLocked ends w with err. r.mu must be held.
func (r *Room) endWatchLocked(w *Watcher, err error) {
	if _, ok := r.watchers[w]; !ok {
		return
	}
	delete(r.watchers, w)
	r.hub.watchers.Add(-1)
	w.err = err
	close(w.ch)
	close(w.ended)
}

// endWatchesLocked ends every watch of r with err. r.mu must be held.
func (r *Room) endWatchesLocked(err error) {
	for w := range r.watchers {
		r.endWatchLocked(w, err)
	}
}

// emitLocked hands e to every watcher without waiting; a watcher that is
// already as far behind as it may be is ended instead. r.mu must be held.
func (r *Room) emitLocked(e Event) {
	if len(r.watchers) == 0 {
		return
	}
	e.Time = time.Now()
	size := eventBytes(e)
	for w := range r.watchers {
		if w.queued+size > WatcherBytes || len(w.ch) == cap(w.ch) {
			r.endWatchLocked(w, ErrWatcherTooSlow)
			continue
		}
		w.queued += size
		w.ch <- e
	}
}
