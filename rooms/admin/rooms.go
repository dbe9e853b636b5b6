package admin

import (
	"context"
	"time"

	"roomd/rooms"
)

// Rooms is what the admin service needs of the rooms it serves: exactly the
// operations its calls make, and nothing it could do around them. One
// node's *rooms.Hub is one implementation (HubRooms); a cluster-wide one
// (scatter-gather queries, commands routed to the node that owns the
// client) is meant to be another.
//
// The contract below is today's, which a single Hub defines: where the
// cluster's answers will be node-local and where cluster-wide is not
// decided here. What an implementation must honour whatever it spans:
//   - Errors are the rooms sentinels (rooms.ErrRoomNotFound, ErrLimit, ...),
//     wrapped or not: the service maps them with errors.Is through the
//     errcode table, and anything else becomes INTERNAL. The error's text
//     reaches the caller as the status message.
//   - Input has passed the service's checks (limits.go) but not the Hub's;
//     ids and options are checked by the implementation and refused with
//     ErrInvalidRoomID or ErrInvalidArgument.
//   - Pages are in id order and start strictly after the given id (ban
//     pages after the (user id, room id) pair); more says whether another
//     page follows. Page tokens are built from the last item's ids, so the
//     order must be stable across calls.
//   - No method takes a context (a Hub answers from memory): an
//     implementation that must wait on other nodes bounds that wait itself,
//     as there is no call deadline to pass down yet.
type Rooms interface {
	// CreateRoom makes a room that lives until DeleteRoom; an id in use
	// is ErrRoomExists. HistorySize -1 means the server's default.
	CreateRoom(roomID string, opts rooms.RoomOptions) (rooms.RoomInfo, error)
	// GetRoom describes one room, or ErrRoomNotFound.
	GetRoom(roomID string) (rooms.RoomInfo, error)
	// ListRooms returns up to limit rooms whose ids sort after after.
	ListRooms(after string, limit int) (page []rooms.RoomInfo, more bool)
	// DeleteRoom removes a room and every member from it (raw members are
	// closed, session members told), or is ErrRoomNotFound.
	DeleteRoom(roomID string) (rooms.DeleteResult, error)

	// Clients returns up to limit members of a room whose client ids sort
	// after after; an unknown room is ErrRoomNotFound.
	Clients(roomID, after string, limit int) (page []rooms.ClientInfo, more bool, err error)
	// KickClient closes one connection with the kicked close code and
	// reason and returns it as it was; an unknown id is ErrClientNotFound.
	KickClient(clientID, reason string) (rooms.ClientInfo, error)
	// BanClient kicks as KickClient does and keeps the client's user out of
	// the client's rooms for d; a client without a user id is ErrNoUserID
	// and is left connected.
	BanClient(clientID, reason string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error)
	// KickUser removes a user's connections from roomID, or from every
	// room if it is empty, and returns how many it affected (0 is not an
	// error).
	KickUser(userID, roomID, reason string) (int, error)
	// BanUser keeps userID out of roomID (every room if empty) for d,
	// replacing an earlier ban of the same room, kicks as KickUser does, and
	// returns the ban and how many connections it closed.
	BanUser(userID, roomID, reason string, d time.Duration) (rooms.Ban, int, error)
	// Unban lifts every ban of a user and returns them by room id; a user
	// with none in force is ErrBanNotFound.
	Unban(userID string) ([]rooms.Ban, error)
	// Bans returns up to limit bans in force that sort after (afterUser,
	// afterRoom), by user id and then room id.
	Bans(afterUser, afterRoom string, limit int) (page []rooms.Ban, more bool)

	// Publish hands m on for delivery to every member of m.RoomID but
	// those in m.ExcludeClientIDs, or is ErrRoomNotFound, and returns its
	// position and how many members it was handed to (a Hub counts its
	// own node's; -1 when delivery is asynchronous).
	Publish(m *rooms.Message) (rooms.Published, error)
	// SendToClient queues m for one client; an unknown id is
	// ErrClientNotFound.
	SendToClient(clientID string, m *rooms.Message) error

	// Watch streams a room's events from now on, or is ErrRoomNotFound, or
	// ErrLimit when too many watches are open.
	Watch(roomID string) (Watch, error)
}

// Watch is one open watch of a room's events; *rooms.Watcher is one.
type Watch interface {
	// Next returns the next event, waiting for one. It returns ctx's
	// error if ctx ends first, and, with ok false, Err's once the watch
	// has ended and its events have been read.
	Next(ctx context.Context) (e rooms.Event, ok bool, err error)
	// Ended is closed once the watch has ended; events may still wait for
	// Next.
	Ended() <-chan struct{}
	// Err says why the watch ended, once Ended is closed: nil for a
	// deleted room or Stop, rooms.ErrWatcherTooSlow when the reader fell
	// behind (the service ends the call at once then, without waiting for
	// the events still queued), rooms.ErrClosed when the server stops.
	Err() error
	// Stop ends the watch and frees what it holds; calling it again does
	// nothing.
	Stop()
}

var _ Watch = (*rooms.Watcher)(nil)

// HubRooms returns the Rooms of one node: h's. It adds nothing to h; only
// Watch is wrapped, to return the Watch interface.
func HubRooms(h *rooms.Hub) Rooms { return hubRooms{h} }

// hubRooms is *rooms.Hub as Rooms. Embedding the Hub makes every method
// but Watch the Hub's own, so a change of a Hub signature fails to compile
// here rather than drifting from the interface.
type hubRooms struct{ *rooms.Hub }

func (h hubRooms) Watch(roomID string) (Watch, error) {
	w, err := h.Hub.Watch(roomID)
	if err != nil {
		return nil, err // not a nil *Watcher in a non-nil Watch
	}
	return w, nil
}
