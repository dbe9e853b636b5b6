package rooms

import (
	"errors"
	"sync"
	"time"
)

// RoomOptions are fixed when a room is made.
type RoomOptions struct {
	// MaxClients is the most members the room admits at once; 0 is unlimited.
	MaxClients int
	// Echo makes a member receive its own messages back, as a plain
	// broadcast server does. Rooms made by a client joining have it on.
	Echo bool
	// Metadata holds free-form labels; the Hub copies it and never changes it.
	Metadata map[string]string
}

// RoomInfo describes a room as the admin API shows it.
type RoomInfo struct {
	RoomID      string
	Options     RoomOptions
	CreatedAt   time.Time
	ClientCount int
	// AutoCreated rooms were made by a client joining and vanish when their
	// last member leaves; the others live until deleted.
	AutoCreated bool
}

// Room is one room of the registry. Its members are kept in a slice so that
// the fan-out walks contiguous memory.
type Room struct {
	hub         *Hub
	id          string
	createdAt   time.Time
	options     RoomOptions
	autoCreated bool

	mu       sync.Mutex
	members  []*Client
	watchers map[*Watcher]struct{}
	closed   bool // removed from the registry; joiners must look again
}

func (r *Room) info() RoomInfo {
	r.mu.Lock()
	n := len(r.members)
	r.mu.Unlock()
	return RoomInfo{RoomID: r.id, Options: r.options, CreatedAt: r.createdAt, ClientCount: n, AutoCreated: r.autoCreated}
}

// addLocked makes c a member. r.mu must be held.
func (r *Room) addLocked(c *Client) {
	c.slot = len(r.members)
	r.members = append(r.members, c)
	r.emitLocked(Event{Kind: EventClientJoined, Client: c.info})
}

// removeLocked takes c out of the member slice. r.mu must be held.
func (r *Room) removeLocked(c *Client) {
	last := len(r.members) - 1
	moved := r.members[last]
	r.members[c.slot] = moved
	moved.slot = c.slot
	r.members[last] = nil
	r.members = r.members[:last]
	if cap(r.members) > 64 && len(r.members) < cap(r.members)/4 {
		r.members = append([]*Client(nil), r.members...)
	}
}

// EventKind says what happened in a room.
type EventKind uint8

const (
	EventClientJoined EventKind = iota + 1
	EventClientLeft
	EventMessagePublished
	EventRoomDeleted
)

// Event is one thing that happened in a room, as WatchRoom streams it.
type Event struct {
	Kind EventKind
	Time time.Time
	// Client joined or left.
	Client ClientInfo
	// CloseCode and Reason say how a client left.
	CloseCode CloseCode
	Reason    string
	// Message was published and handed to Recipients members.
	Message    *Message
	Recipients int
}

// ErrWatcherTooSlow ends a watch whose reader fell behind by more than its
// buffer; the room itself is never slowed down by a watcher.
var ErrWatcherTooSlow = errors.New("watcher fell too far behind the room's events")

// watcherBuffer is how many events a watcher may lag behind.
const watcherBuffer = 1024

// Watcher receives a room's events on C until the room is deleted, the Hub
// closes, the watcher falls too far behind, or Stop is called. C is then
// closed and Err says why.
type Watcher struct {
	C <-chan Event

	ch   chan Event
	room *Room
	err  error // set before ch is closed
}

// Err returns why C was closed: nil after the room was deleted or Stop,
// ErrWatcherTooSlow, or ErrClosed when the server shuts down. Call it only
// after C is closed.
func (w *Watcher) Err() error { return w.err }

// Stop ends the watch and closes C; calling it again does nothing.
func (w *Watcher) Stop() {
	w.room.mu.Lock()
	defer w.room.mu.Unlock()
	w.room.endWatchLocked(w, nil)
}

// endWatchLocked closes w's channel with err. r.mu must be held.
func (r *Room) endWatchLocked(w *Watcher, err error) {
	if _, ok := r.watchers[w]; !ok {
		return
	}
	delete(r.watchers, w)
	w.err = err
	close(w.ch)
}

// emitLocked hands e to every watcher without waiting. r.mu must be held.
func (r *Room) emitLocked(e Event) {
	if len(r.watchers) == 0 {
		return
	}
	e.Time = time.Now()
	for w := range r.watchers {
		select {
		case w.ch <- e:
		default:
			r.endWatchLocked(w, ErrWatcherTooSlow)
		}
	}
}
