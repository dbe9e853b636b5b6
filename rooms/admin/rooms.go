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
// What an implementation must honour whatever it spans:
//   - Every method takes the call's context first: the gRPC call's (for
//     Watch, the whole stream's), which ends when the caller gives up or
//     its deadline passes. An implementation that waits on other nodes
//     bounds every wait by it; a Hub answers from memory and needs none.
//   - A method that answers for every node (GetRoom, ListRooms, DeleteRoom,
//     Clients, KickUser, BanUser, Nodes) also returns a Coverage: the nodes
//     that did not answer before the deadline, which the answer leaves
//     out. Such an answer is partial, not an error; the service passes the
//     Coverage on to the caller. With an error the Coverage is not used:
//     an implementation that fails because nodes did not answer says so in
//     the error.
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
type Rooms interface {
	// CreateRoom makes a room that lives until DeleteRoom; an id in use
	// is ErrRoomExists. HistorySize -1 means the server's default.
	CreateRoom(ctx context.Context, roomID string, opts rooms.RoomOptions) (rooms.RoomInfo, error)
	// GetRoom describes one room, or ErrRoomNotFound.
	GetRoom(ctx context.Context, roomID string) (rooms.RoomInfo, Coverage, error)
	// ListRooms returns up to limit rooms whose ids sort after after.
	ListRooms(ctx context.Context, after string, limit int) (page []rooms.RoomInfo, more bool, cov Coverage)
	// DeleteRoom removes a room and every member from it (raw members are
	// closed, session members told), or is ErrRoomNotFound.
	DeleteRoom(ctx context.Context, roomID string) (rooms.DeleteResult, Coverage, error)

	// Clients returns up to limit members of a room whose client ids sort
	// after after; an unknown room is ErrRoomNotFound.
	Clients(ctx context.Context, roomID, after string, limit int) (page []rooms.ClientInfo, more bool, cov Coverage, err error)
	// KickClient closes one connection with the kicked close code and
	// reason and returns it as it was; an unknown id is ErrClientNotFound.
	KickClient(ctx context.Context, clientID, reason string) (rooms.ClientInfo, error)
	// BanClient kicks as KickClient does and keeps the client's user out of
	// the client's rooms for d; a client without a user id is ErrNoUserID
	// and is left connected.
	BanClient(ctx context.Context, clientID, reason string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error)
	// KickUser removes a user's connections from roomID, or from every
	// room if it is empty, and returns how many it affected (0 is not an
	// error).
	KickUser(ctx context.Context, userID, roomID, reason string) (int, Coverage, error)
	// BanUser keeps userID out of roomID (every room if empty) for d,
	// replacing an earlier ban of the same room, kicks as KickUser does, and
	// returns the ban and how many connections it closed.
	BanUser(ctx context.Context, userID, roomID, reason string, d time.Duration) (rooms.Ban, int, Coverage, error)
	// Unban lifts every ban of a user, or with roomIDs only those from
	// these rooms ("" for the ban from every room), and returns them by
	// room id; none in force is ErrBanNotFound.
	Unban(ctx context.Context, userID string, roomIDs ...string) ([]rooms.Ban, error)
	// Bans returns up to limit bans in force that sort after (afterUser,
	// afterRoom), by user id and then room id.
	Bans(ctx context.Context, afterUser, afterRoom string, limit int) (page []rooms.Ban, more bool)

	// Publish hands m on for delivery to every member of m.RoomID but
	// those in m.ExcludeClientIDs, or is ErrRoomNotFound, and returns its
	// position and how many members it was handed to (a Hub counts its
	// own node's; -1 when delivery is asynchronous).
	Publish(ctx context.Context, m *rooms.Message) (rooms.Published, error)
	// SendToClient queues m for one client; an unknown id is
	// ErrClientNotFound.
	SendToClient(ctx context.Context, clientID string, m *rooms.Message) error

	// Watch streams a room's events from now on, or is ErrRoomNotFound, or
	// ErrLimit when too many watches are open. With since, it first
	// streams the room's messages after since.Seq in the history named by
	// since.Epoch ("" is the room's current one), each with the time it was
	// published, and then the live events, missing and doubling none in
	// between; a position the history cannot answer for is rooms.ErrGap.
	Watch(ctx context.Context, roomID string, since *rooms.Position) (Watch, error)

	// Nodes describes the nodes serving these rooms, by name: one, for a
	// Hub.
	Nodes(ctx context.Context) ([]NodeInfo, Coverage, error)
}

// NodeInfo describes one roomd node.
type NodeInfo struct {
	// Name is the node's name, which its client ids carry.
	Name string
	// PublicURL is the base URL of its public listener, http:// or
	// https:// (WebSocket clients connect with ws:// or wss:// there).
	PublicURL string
	// AdminGRPC and AdminHTTP are the host:port of its admin gRPC server
	// and of its REST gateway.
	AdminGRPC, AdminHTTP string
	// StartedAt is when the node started serving.
	StartedAt time.Time
	// Clients is how many connections it holds.
	Clients int
	// Heartbeat is when the node last said it was alive.
	Heartbeat time.Time
	// Version is the build it runs (BuildVersion).
	Version string
}

// Coverage says which nodes a cluster-wide answer covers.
type Coverage struct {
	// Unreachable names the nodes that did not answer before the
	// deadline; the answer leaves them out.
	Unreachable []string
}

// Partial reports whether some nodes did not answer: the answer is what
// the others said.
func (c Coverage) Partial() bool { return len(c.Unreachable) > 0 }

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

// LocalNode is what HubRooms tells of its node in Nodes beyond what the
// Hub knows itself (its name and its clients): where the node listens,
// since when, and which build it runs. See NodeInfo for the fields.
type LocalNode struct {
	PublicURL, AdminGRPC, AdminHTTP string
	StartedAt                       time.Time
	// Version "" means BuildVersion().
	Version string
}

// HubRooms returns the Rooms of one node: h's, which self describes. It
// adds nothing to h: every answer covers the one node there is (the zero
// Coverage), and ctx is not needed, as a Hub answers from memory.
func HubRooms(h *rooms.Hub, self LocalNode) Rooms {
	if self.Version == "" {
		self.Version = BuildVersion()
	}
	return hubRooms{h, self}
}

// hubRooms is *rooms.Hub as Rooms. Each method is one Hub call, so a change
// of a Hub signature fails to compile here rather than drifting from the
// interface.
type hubRooms struct {
	hub  *rooms.Hub
	self LocalNode
}

func (h hubRooms) CreateRoom(_ context.Context, roomID string, opts rooms.RoomOptions) (rooms.RoomInfo, error) {
	return h.hub.CreateRoom(roomID, opts)
}

func (h hubRooms) GetRoom(_ context.Context, roomID string) (rooms.RoomInfo, Coverage, error) {
	info, err := h.hub.GetRoom(roomID)
	return info, Coverage{}, err
}

func (h hubRooms) ListRooms(_ context.Context, after string, limit int) ([]rooms.RoomInfo, bool, Coverage) {
	page, more := h.hub.ListRooms(after, limit)
	return page, more, Coverage{}
}

func (h hubRooms) DeleteRoom(_ context.Context, roomID string) (rooms.DeleteResult, Coverage, error) {
	res, err := h.hub.DeleteRoom(roomID)
	return res, Coverage{}, err
}

func (h hubRooms) Clients(_ context.Context, roomID, after string, limit int) ([]rooms.ClientInfo, bool, Coverage, error) {
	page, more, err := h.hub.Clients(roomID, after, limit)
	return page, more, Coverage{}, err
}

func (h hubRooms) KickClient(_ context.Context, clientID, reason string) (rooms.ClientInfo, error) {
	return h.hub.KickClient(clientID, reason)
}

func (h hubRooms) BanClient(_ context.Context, clientID, reason string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error) {
	return h.hub.BanClient(clientID, reason, d)
}

func (h hubRooms) KickUser(_ context.Context, userID, roomID, reason string) (int, Coverage, error) {
	n, err := h.hub.KickUser(userID, roomID, reason)
	return n, Coverage{}, err
}

func (h hubRooms) BanUser(_ context.Context, userID, roomID, reason string, d time.Duration) (rooms.Ban, int, Coverage, error) {
	ban, n, err := h.hub.BanUser(userID, roomID, reason, d)
	return ban, n, Coverage{}, err
}

func (h hubRooms) Unban(_ context.Context, userID string, roomIDs ...string) ([]rooms.Ban, error) {
	return h.hub.Unban(userID, roomIDs...)
}

func (h hubRooms) Bans(_ context.Context, afterUser, afterRoom string, limit int) ([]rooms.Ban, bool) {
	return h.hub.Bans(afterUser, afterRoom, limit)
}

func (h hubRooms) Publish(_ context.Context, m *rooms.Message) (rooms.Published, error) {
	return h.hub.Publish(m)
}

func (h hubRooms) SendToClient(_ context.Context, clientID string, m *rooms.Message) error {
	return h.hub.SendToClient(clientID, m)
}

func (h hubRooms) Watch(_ context.Context, roomID string, since *rooms.Position) (Watch, error) {
	var w *rooms.Watcher
	var err error
	if since != nil {
		w, err = h.hub.WatchSince(roomID, *since)
	} else {
		w, err = h.hub.Watch(roomID)
	}
	if err != nil {
		return nil, err // not a nil *Watcher in a non-nil Watch
	}
	return w, nil
}

// Nodes answers with the one node, alive now.
func (h hubRooms) Nodes(context.Context) ([]NodeInfo, Coverage, error) {
	return []NodeInfo{{
		Name:      h.hub.NodeName(),
		PublicURL: h.self.PublicURL,
		AdminGRPC: h.self.AdminGRPC,
		AdminHTTP: h.self.AdminHTTP,
		StartedAt: h.self.StartedAt,
		Clients:   h.hub.ClientCount(),
		Heartbeat: time.Now(),
		Version:   h.self.Version,
	}}, Coverage{}, nil
}
