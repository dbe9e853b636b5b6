package rooms

import (
	"sync"
	"time"
)

// Kind says what a message is and how a transport writes it.
type Kind uint8

const (
	// Room messages: published, ordered, kept in history.
	Text   Kind = 1 // UTF-8 text
	Binary Kind = 2 // opaque bytes
	JSON   Kind = 3 // a JSON value (from the client protocol's publish)

	// Messages for one client, never published.
	Frame    Kind = 4 // a frame its own transport encoded (acks, errors, welcome)
	Presence Kind = 5 // Subject joined or left RoomID (for session clients)
	Notice   Kind = 6 // Event "kicked" or "room_deleted" for RoomID (for session clients)
)

// Message is one message published to a room or sent to one client. It is
// shared by every recipient and must not be changed once handed to the Hub.
type Message struct {
	RoomID  string
	Kind    Kind
	Payload []byte
	// FromClientID and FromUserID name the member that sent it; both are
	// empty for the admin API.
	FromClientID string
	FromUserID   string
	// ExcludeClientIDs do not receive the message.
	ExcludeClientIDs []string
	// Seq orders the messages of a room. The broker assigns it; it only grows
	// but may skip, so nobody may assume Seq+1 is next.
	Seq uint64
	// Time is when the server accepted it.
	Time time.Time

	// Presence and Notice details.
	Subject ClientInfo
	Event   string // "joined", "left"; "kicked", "room_deleted"
	Reason  string

	frames [FrameFormats]frameCache
}

// FrameFormats is how many wire encodings a message may be cached in (raw
// relay and the client protocol).
const FrameFormats = 2

type frameCache struct {
	once  sync.Once
	frame any
}

// Frame returns encode(m) for the given wire format (0 to FrameFormats-1),
// calling encode once for all recipients that use that format, so a room
// message is encoded once and the same bytes are written to every member.
func (m *Message) Frame(format int, encode func(*Message) any) any {
	c := &m.frames[format]
	c.once.Do(func() { c.frame = encode(m) })
	return c.frame
}

// queuedSize is what a message counts against a member's queue bound: its
// payload plus a frame header and bookkeeping, so that a flood of empty
// messages is bounded too.
func (m *Message) queuedSize() int { return len(m.Payload) + 64 }

func (m *Message) excludes(clientID string) bool {
	for _, id := range m.ExcludeClientIDs {
		if id == clientID {
			return true
		}
	}
	return false
}
