package rooms

import "sync"

// Kind says how a message travels on the wire.
type Kind uint8

const (
	Text   Kind = 1 // a UTF-8 text message
	Binary Kind = 2 // an opaque binary message
)

// Message is one message published to a room or sent to one client. It is
// shared by every recipient and must not be changed once published.
type Message struct {
	RoomID  string
	Kind    Kind
	Payload []byte
	// FromClientID is the member that sent it; empty for the admin API.
	FromClientID string
	// ExcludeClientIDs do not receive the message.
	ExcludeClientIDs []string
	// Seq orders the messages of a room. The broker assigns it; it only grows
	// but may skip, so nobody may assume Seq+1 is next.
	Seq uint64

	frameOnce sync.Once
	frame     any
}

// Frame returns encode(m), calling encode only once for all recipients, so a
// transport encodes a room message once and writes the same bytes to every
// member.
func (m *Message) Frame(encode func(*Message) any) any {
	m.frameOnce.Do(func() { m.frame = encode(m) })
	return m.frame
}

// queuedSize is what a message counts against a member's queue bound: its
// payload plus a frame header and bookkeeping, so that a flood of empty
// messages is bounded too.
func (m *Message) queuedSize() int { return len(m.Payload) + 16 }

func (m *Message) excludes(clientID string) bool {
	for _, id := range m.ExcludeClientIDs {
		if id == clientID {
			return true
		}
	}
	return false
}
