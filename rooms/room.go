package rooms

import (
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
	// HistorySize is how many of its last messages the room keeps for
	// session clients resuming after a reconnect; 0 keeps none. The Hub's
	// DefaultHistorySize applies when a room is made with -1 (and to rooms
	// made by joining).
	HistorySize int
	// NoPresence turns presence off, for rooms too big for every member to
	// hear of every other (a broadcast audience): session members are not
	// told who joins or leaves, a join result lists no members (only their
	// count), and Members is refused with ErrNoPresence. Rooms made by
	// joining have presence.
	NoPresence bool
}

// RoomInfo describes a room as the admin API shows it.
type RoomInfo struct {
	RoomID      string
	Options     RoomOptions
	CreatedAt   time.Time
	ClientCount int
	// Seq is the sequence of the room's latest message; Epoch changes
	// whenever its history restarts.
	Seq   uint64
	Epoch string
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
	creators    []string      // the RoomQuota creators it counts against until it goes
	opened      chan struct{} // closed once openRoom is done
	openErr     error         // why the broker refused the room; set before opened is closed

	mu       sync.Mutex
	members  []*member
	roster   []*member // the same members sorted by client id, for listing them a page at a time (roster.go)
	sessions int       // members that are session clients (they hear presence)
	watchers map[*Watcher]struct{}
	closed   bool      // removed from the registry; joiners must look again
	opening  bool      // openRoom is not done; Deliver keeps messages in pending
	pending  []pending // delivered while opening
	epoch    string    // names the room's history, as the broker gave it
	shared   bool      // positions are shared with other rooms: RoomHistory.SharedOrder
	carriers int       // Carry calls not yet released (carry.go)

	history    history // the latest messages, within the bounds of history.go
	lastSeq    uint64  // of the latest message delivered
	trimmedSeq uint64  // of the latest message dropped from history, or not kept
}

// waitOpen waits until openRoom is done with r and returns its error.
func (r *Room) waitOpen() error {
	<-r.opened
	return r.openErr
}

func (r *Room) info() RoomInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RoomInfo{
		RoomID: r.id, Options: r.options, CreatedAt: r.createdAt, ClientCount: len(r.members),
		Seq: r.lastSeq, Epoch: r.epoch, AutoCreated: r.autoCreated,
	}
}

// memberInfo is c's identity as listed in r.
func (r *Room) memberInfo(c *Client) ClientInfo {
	info := c.info
	info.RoomID = r.id
	return info
}

// addLocked makes m a member and tells watchers and session members; it
// returns how many session members it told. r.mu must be held.
func (r *Room) addLocked(m *member) (told int) {
	m.slot = len(r.members)
	r.members = append(r.members, m)
	r.rosterAddLocked(m)
	info := r.memberInfo(m.client)
	if m.client.session {
		r.sessions++
	}
	if a := r.hub.announcer; a != nil {
		// Told in the room's order on every node, this one included,
		// when the event comes back (DeliverPresence).
		a.Announce(PresenceEvent{RoomID: r.id, Joined: true, Client: info, Time: time.Now()})
		return 0
	}
	told = r.presenceLocked(m.client, info, "joined")
	r.emitLocked(Event{Kind: EventClientJoined, Client: info})
	return told
}

// departure is how a member left a room: see Event.
type departure struct {
	cause  LeaveCause
	code   CloseCode // 0: the connection stays open
	reason string
}

// removeLocked takes m out of the member slice and tells watchers and
// session members how it left; it returns how many session members it
// told. r.mu must be held.
func (r *Room) removeLocked(m *member, d departure) (told int) {
	last := len(r.members) - 1
	moved := r.members[last]
	r.members[m.slot] = moved
	moved.slot = m.slot
	r.members[last] = nil
	r.members = r.members[:last]
	m.slot = -1
	if cap(r.members) > 64 && len(r.members) < cap(r.members)/4 {
		r.members = append([]*member(nil), r.members...)
	}
	r.rosterRemoveLocked(m)
	if m.client.session {
		r.sessions--
	}
	info := r.memberInfo(m.client)
	if a := r.hub.announcer; a != nil && !r.closed {
		// A deleted room is deleted on every node, each telling its own.
		a.Announce(PresenceEvent{RoomID: r.id, Client: info, Cause: d.cause, Code: d.code, Reason: d.reason, Time: time.Now()})
		return 0
	}
	told = r.presenceLocked(m.client, info, "left")
	r.emitLocked(Event{Kind: EventClientLeft, Client: info, Cause: d.cause, CloseCode: d.code, Reason: d.reason})
	return told
}

// presenceLocked tells the room's session members, except subject itself,
// that subject joined or left, unless the room has no presence, and returns
// how many it told; like a room message, it drops a member whose queue is
// full as a slow consumer. r.mu must be held.
func (r *Room) presenceLocked(subject *Client, info ClientInfo, event string) (told int) {
	if r.sessions == 0 || r.options.NoPresence {
		return 0
	}
	p := &Message{RoomID: r.id, Kind: Presence, Subject: info, Event: event, Time: time.Now()}
	for _, m := range r.members {
		if m.client.session && m.client != subject {
			r.hub.sendLocked(m.client, p)
			told++
		}
	}
	return told
}

// recordLocked appends m to the room's history, or notes that resumers
// from before m have a gap when it cannot be kept. r.mu must be held.
func (r *Room) recordLocked(m *Message) {
	r.lastSeq = m.Seq
	r.keepHistoryLocked(m)
}

// keepHistoryLocked keeps m in the room's history, or notes that resumers
// from before it have a gap when it cannot be kept. r.mu must be held.
func (r *Room) keepHistoryLocked(m *Message) {
	if !r.keepLocked(m) {
		r.trimmedSeq = m.Seq
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
	// Cause, CloseCode and Reason say how a client left. CloseCode is the
	// code its connection closed with, and 0 when the connection stays open
	// (a session client that left, or was removed from, this room only).
	Cause     LeaveCause
	CloseCode CloseCode
	Reason    string
	// Message was published and handed to Recipients members.
	Message    *Message
	Recipients int
}
