package rooms

import (
	"sync"
	"sync/atomic"
	"time"
)

// Transport is the connection behind a Client, implemented by wsedge. The
// Hub calls it with room locks held: neither method may block or call back
// into the Hub synchronously.
type Transport interface {
	// Wake tells the transport that the client's queue went from empty to
	// non-empty.
	Wake()
	// Close starts closing the connection with code and reason. The client
	// has already left every room when Close is called.
	Close(code CloseCode, reason string)
}

// ClientInfo describes a connection as the admin API shows it. RoomID is
// the room it is listed in (empty where no room is concerned).
type ClientInfo struct {
	ClientID    string
	UserID      string
	RoomID      string
	RemoteAddr  string
	ConnectedAt time.Time
}

// Client is one connection: its identity, its send queue and its transport,
// and the rooms it is a member of. A raw client is in exactly one room for
// its whole life; a session client (the client protocol) joins and leaves
// rooms at will, hears presence, and is told rather than closed when one of
// its rooms goes away.
type Client struct {
	info      ClientInfo
	transport Transport
	session   bool
	queue     Queue

	mu           sync.Mutex // a leaf: nothing is locked while it is held
	disconnected bool
	departure    departure   // why, once disconnected: every membership ends with it
	rooms        []*member   // few (a raw client has one): a slice beats a map
	gone         atomic.Bool // mirrors disconnected for lock-free checks
}

// member is a client's membership in one room.
type member struct {
	client *Client
	room   *Room
	slot   int  // index in room.members, -1 once removed; guarded by room.mu
	remote bool // a member on another node, in the roster only (presence.go)
}

// Info returns the client's identity.
func (c *Client) Info() ClientInfo { return c.info }

// ID returns the server-made client id.
func (c *Client) ID() string { return c.info.ClientID }

// Queue is the client's send queue, drained by its transport.
func (c *Client) Queue() *Queue { return &c.queue }

// in returns c's membership of roomID, or nil.
func (c *Client) in(roomID string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memberOfLocked(roomID)
}

// memberOfLocked returns c's membership of roomID, or nil. c.mu must be held.
func (c *Client) memberOfLocked(roomID string) *member {
	for _, m := range c.rooms {
		if m.room.id == roomID {
			return m
		}
	}
	return nil
}

// dropMemberLocked forgets membership m. c.mu must be held.
func (c *Client) dropMemberLocked(m *member) {
	for i, other := range c.rooms {
		if other == m {
			last := len(c.rooms) - 1
			copy(c.rooms[i:], c.rooms[i+1:])
			c.rooms[last] = nil
			c.rooms = c.rooms[:last]
			return
		}
	}
}

// memberships returns c's memberships now.
func (c *Client) memberships() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*member(nil), c.rooms...)
}

// enqueue hands m to the client without waiting. It reports false when the
// client is gone or its queue overflowed; overflowed is true in the second
// case, and the caller must then drop the client (Hub.dropSlow) once it holds
// no room lock.
func (c *Client) enqueue(m *Message) (delivered, overflowed bool) {
	switch c.queue.push(m) {
	case pushedFirst:
		c.transport.Wake()
		return true, false
	case pushed:
		return true, false
	case pushOverflow:
		return false, true
	}
	return false, false
}

// InRoom reports whether c is a member of roomID.
func (c *Client) InRoom(roomID string) bool { return c.in(roomID) != nil }

// RoomCount is how many rooms c is in.
func (c *Client) RoomCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rooms)
}

// RoomIDs lists the rooms c is in now.
func (c *Client) RoomIDs() []string {
	members := c.memberships()
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.room.id
	}
	return ids
}
