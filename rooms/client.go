package rooms

import (
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
	// has already left its room when Close is called.
	Close(code CloseCode, reason string)
}

// ClientInfo describes a connection as the admin API shows it.
type ClientInfo struct {
	ClientID    string
	UserID      string
	RoomID      string
	RemoteAddr  string
	ConnectedAt time.Time
}

// Client is one connection's membership in one room: its identity, its send
// queue and its transport.
type Client struct {
	info      ClientInfo
	room      *Room
	transport Transport
	queue     Queue
	slot      int // index in room.members; guarded by room.mu
	left      atomic.Bool
}

// Info returns the client's identity.
func (c *Client) Info() ClientInfo { return c.info }

// ID returns the server-made client id.
func (c *Client) ID() string { return c.info.ClientID }

// Queue is the client's send queue, drained by its transport.
func (c *Client) Queue() *Queue { return &c.queue }

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
