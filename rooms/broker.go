package rooms

import "sync"

// Deliverer takes ordered messages to the members on this node; the Hub is
// one.
type Deliverer interface {
	Deliver(m *Message) int
}

// Broker orders the messages published to each room and carries them to
// every node that has members there. The in-process MemoryBroker is the only
// one today; a cross-node bus implements the same three methods.
type Broker interface {
	// Publish assigns m its sequence in the room and delivers it. It
	// returns how many members on this node it was handed to when delivery
	// is synchronous, as with MemoryBroker.
	Publish(m *Message) (int, error)
	// Subscribe is called when a room appears on this node; from then on
	// the room's messages must reach the local Deliverer.
	Subscribe(roomID string) error
	// Unsubscribe is called when the room is gone from this node.
	Unsubscribe(roomID string)
}

// MemoryBroker is the single-process Broker: a publish is delivered
// synchronously to the local members, under a per-room lock so that every
// member sees a room's messages in sequence order.
type MemoryBroker struct {
	local Deliverer

	mu     sync.RWMutex
	topics map[string]*memoryTopic
}

type memoryTopic struct {
	mu  sync.Mutex
	seq uint64
}

// NewMemoryBroker returns a broker that delivers to local.
func NewMemoryBroker(local Deliverer) *MemoryBroker {
	return &MemoryBroker{local: local, topics: make(map[string]*memoryTopic)}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(m *Message) (int, error) {
	b.mu.RLock()
	t := b.topics[m.RoomID]
	b.mu.RUnlock()
	if t == nil {
		return 0, nil // the room vanished since the caller looked it up
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	m.Seq = t.seq
	return b.local.Deliver(m), nil
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(roomID string) error {
	b.mu.Lock()
	if b.topics[roomID] == nil {
		b.topics[roomID] = &memoryTopic{}
	}
	b.mu.Unlock()
	return nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(roomID string) {
	b.mu.Lock()
	delete(b.topics, roomID)
	b.mu.Unlock()
}
